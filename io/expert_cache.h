// ExpertCache: a fixed-byte-budget cache of routed experts read from storage.
//
// All slots are allocated once in Create() (4 KiB aligned, NUMA-local where libnuma sees more than
// one node, optionally mlocked); nothing is allocated per token. Reads go through an IoBackend
// (io_uring with O_DIRECT, or a pread worker pool). Each expert is verified against its xxh3-64
// after it is read and before anyone uses it, when the file carries checksums (the archive does,
// GGUF does not): by the first Acquire/AcquireAny of it, on the caller's thread, so hashing runs in
// parallel with the reads still in flight and a prefetched expert never used is never hashed.
// Slots live in one THP-advised 2 MiB-aligned region (io/read_buffers.h: ~2x the O_DIRECT
// bandwidth of scattered 4 KiB pages on a virtio disk).
//
// Use (one layer of one token):
//   cache.Prefetch(layer, ids);                       // start reads for the misses, never blocks
//   for (int id : ids) {
//     ASSIGN_OR_RETURN(ExpertRef e, cache.Acquire(layer, id));  // waits for this expert only
//     ... compute with e.matrix(ExpertMatrix::kGate) ...
//     cache.Release(e);                               // unpin: evictable again
//   }
// To consume in arrival order (no head-of-line blocking behind one slow read), use AcquireAny on
// the layer's ids instead of Acquire in a fixed order.
// Pinned experts are never evicted; experts prefetched but not yet used are evicted only when no
// used expert is evictable. If no slot is evictable when a miss needs one, Prefetch skips
// it; Acquire waits while an unpinned load is in flight (it becomes evictable when done) and
// returns ResourceExhausted only when every slot is pinned (the budget was below the minimum).
//
// Slot layout: one read per run of matrices that are contiguous in the file, aligned outward to
// 4 KiB (an archive expert: one read of the whole block; a GGUF expert: three reads, one per
// *_exps tensor slice), placed back to back in the slot (io/expert_read_plan.h).
//
// Thread-safety: every method may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "core/base/status.h"
#include "io/io_backend.h"
#include "io/model_file.h"

namespace sluice {

enum class EvictionPolicyKind {
  kLru,       // least recently used
  kLfuDecay,  // frequency-aware: score = hits with exponential decay + recency tie-break
};
Result<EvictionPolicyKind> ParseEvictionPolicy(std::string_view name);  // "lru" | "lfu"

struct ExpertCacheOptions {
  uint64_t budget_bytes = 0;     // total bytes of all slots (slot count = budget / slot size)
  int min_resident_experts = 1;  // experts one layer needs at once (experts used per token);
                                 // a budget below min_resident_experts slots is refused
  EvictionPolicyKind policy = EvictionPolicyKind::kLru;
  bool lock_memory = false;      // mlock the slots
  bool verify_checksums = true;  // xxh3 every read when the file has checksums
  double lfu_half_life = 0;      // kLfuDecay: uses after which a use weighs half;
                                 // 0 = 4 x slot_count
};

// Each Acquire counts as exactly one hit or one miss, so hits / (hits + misses) is the hit rate
// per expert use: a miss when its bytes had to be read for it (by the Acquire itself or by the
// Prefetch that announced it), a hit when they were resident or already being read for an earlier
// use. A prefetched expert that is never acquired counts in prefetch_reads only.
struct ExpertCacheCounters {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t bytes_read = 0;  // bytes transferred from storage (aligned reads, padding included)
  uint64_t reads_completed = 0;
  uint64_t reads_in_flight = 0;  // now
  uint64_t io_wait_ns = 0;       // time Acquire spent blocked waiting for reads
  uint64_t busy_ns = 0;          // time with at least one read in flight (submitted, not yet
                                 // complete): the device's share of the wall clock we kept busy
  uint64_t checksum_failures = 0;
  uint64_t read_errors = 0;       // loads failed by an I/O error or a short read
  uint64_t prefetch_reads = 0;    // loads started ahead of their use (Prefetch, AcquireAny)
  uint64_t prefetch_skipped = 0;  // Prefetch found no evictable slot for a miss
  uint64_t prefetch_wasted = 0;   // loaded ahead of use, evicted before any use
  uint64_t evictions = 0;
};

// A pinned expert. Valid until Release(); the pointers point into the cache slot.
class ExpertRef {
 public:
  ExpertRef() = default;
  const uint8_t* matrix(ExpertMatrix m) const { return matrix_[static_cast<int>(m)]; }
  int layer() const { return layer_; }
  int expert() const { return expert_; }
  bool valid() const { return slot_ >= 0; }

 private:
  friend class ExpertCache;
  const uint8_t* matrix_[3] = {nullptr, nullptr, nullptr};
  int layer_ = -1, expert_ = -1, slot_ = -1;
};

class ExpertCache {
 public:
  // Sizes one slot as the largest expert of `model` (each matrix's read aligned outward to 4 KiB)
  // and allocates budget / slot bytes slots. Errors: budget below the minimum (the message names
  // the minimum in bytes), allocation failure.
  static Result<std::unique_ptr<ExpertCache>> Create(const ModelFile& model, IoBackend* io,
                                                     const ExpertCacheOptions& options);
  virtual ~ExpertCache() = default;

  virtual void Prefetch(int layer, std::span<const int> experts) = 0;
  virtual Result<ExpertRef> Acquire(int layer, int expert) = 0;
  // Waits for whichever of `experts` is ready first (starting reads for the misses, as Prefetch),
  // pins it and returns it; *index is its position in `experts`. Lets a caller consume reads in
  // completion order, so one slow read does not idle the others' queue slots (head-of-line
  // blocking). Counts one hit or miss, like Acquire. An error names the expert (and sets *index).
  // At most 64 experts per call.
  virtual Result<ExpertRef> AcquireAny(int layer, std::span<const int> experts, int* index) = 0;
  // A prefetch that guessed wrong (the engine prefetches the next layer's predicted experts):
  // frees each of `experts` that was loaded ahead and is still unused and unpinned, at once when
  // its reads are in, else as soon as they are. Without it a wrong guess would sit in the
  // protected prefetched-not-yet-used set and crowd out experts that are used. Experts in use or
  // used before are left alone. Each freed one counts in prefetch_wasted.
  virtual void Drop(int layer, std::span<const int> experts) = 0;
  // Whether the expert is resident or being read (a snapshot: it may change right after).
  virtual bool Contains(int layer, int expert) const = 0;
  // counters().reads_in_flight without copying the counters (the engine asks once per expert).
  virtual uint64_t reads_in_flight() const = 0;
  virtual void Release(ExpertRef& ref) = 0;

  virtual uint64_t slot_bytes() const = 0;
  virtual int slot_count() const = 0;
  // Bytes actually allocated for slots (never above options.budget_bytes).
  virtual uint64_t allocated_bytes() const = 0;
  virtual ExpertCacheCounters counters() const = 0;
  virtual void ResetCounters() = 0;
  // Drops every unpinned expert (benchmarks use it to force misses).
  virtual void Clear() = 0;

 protected:
  // For implementations: ExpertRef's fields are private to this class.
  static ExpertRef MakeRef(int layer, int expert, int slot, const uint8_t* const matrices[3]) {
    ExpertRef r;
    r.layer_ = layer;
    r.expert_ = expert;
    r.slot_ = slot;
    for (int i = 0; i < 3; ++i) r.matrix_[i] = matrices[i];
    return r;
  }
  static int RefSlot(const ExpertRef& ref) { return ref.slot_; }
  static void InvalidateRef(ExpertRef& ref) { ref = ExpertRef(); }
};

}  // namespace sluice
