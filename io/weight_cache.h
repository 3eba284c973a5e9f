// WeightCache: a fixed-byte-budget cache of weight blocks (io/weight_block.h) read from storage.
// It knows blocks by number and byte ranges only: what a block is, and which ones a step needs,
// is the model code's business (docs/architecture.md names the views over it).
//
// All slots are allocated once in Create() (4 KiB aligned, NUMA-local where libnuma sees more than
// one node, optionally mlocked); nothing is allocated per use. Reads go through an IoBackend
// (io_uring with O_DIRECT, or a pread worker pool). Each block is verified against its xxh3-64
// after it is read and before anyone uses it, when the file carries checksums (the archive does,
// GGUF does not): by the first Acquire/AcquireAny of it, on the caller's thread, so hashing runs in
// parallel with the reads still in flight and a prefetched block never used is never hashed.
// Slots live in one THP-advised 2 MiB-aligned region (io/read_buffers.h: ~2x the O_DIRECT
// bandwidth of scattered 4 KiB pages on a virtio disk).
//
// Use:
//   cache.Prefetch(ids);                               // start reads for the misses, never blocks
//   for (uint32_t id : ids) {
//     ASSIGN_OR_RETURN(WeightRef b, cache.Acquire(id));  // waits for this block only
//     ... compute with b.part(0) ...
//     cache.Release(b);                                 // unpin: evictable again
//   }
// To consume in arrival order (no head-of-line blocking behind one slow read), use AcquireAny.
// Pinned blocks are never evicted; blocks prefetched but not yet used are evicted only when no
// used block is evictable. If no slot is evictable when a miss needs one, Prefetch skips it;
// Acquire waits while an unpinned load is in flight (it becomes evictable when done) and returns
// ResourceExhausted only when every slot is pinned (the budget was below the minimum).
//
// Slots of mixed sizes: blocks are grouped into size classes (a class holds sizes within 20% of
// its largest, which sizes its slots; blocks all of one size make one class and no padding).
// Each class gets its minimum slots first, then the rest of the budget in proportion to the bytes
// of its blocks; eviction happens within a class. padding_fraction() says what the classes cost.
//
// Ordered mode (options.schedule): for models that read their blocks in the same order every
// step (diffusion), LRU is the worst policy (each block is evicted just before it is needed
// again). Given the schedule, the cache keeps the blocks that come first in it resident for good
// (as many as fit beside `stream_slots` slots per class) and streams the rest through the other
// slots; the caller reads ahead along the schedule with Prefetch.
//
// Thread-safety: every method may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/io_backend.h"
#include "io/weight_block.h"

namespace sluice {

enum class EvictionPolicyKind {
  kLru,       // least recently used
  kLfuDecay,  // frequency-aware: score = hits with exponential decay + recency tie-break
};
Result<EvictionPolicyKind> ParseEvictionPolicy(std::string_view name);  // "lru" | "lfu"

struct WeightCacheOptions {
  uint64_t budget_bytes = 0;    // total bytes of all slots
  int min_resident_blocks = 1;  // blocks the caller holds pinned at once; each size class gets
                                // this many slots (or all its blocks), and a budget below that
                                // is refused, naming the minimum
  EvictionPolicyKind policy = EvictionPolicyKind::kLru;
  bool lock_memory = false;      // mlock the slots
  bool verify_checksums = true;  // xxh3 every read when the block has a checksum
  double lfu_half_life = 0;      // kLfuDecay: uses after which a use weighs half;
                                 // 0 = 4 x slot_count
  // Ordered mode: the order in which one step uses the blocks (empty: off). Blocks first in it
  // are kept resident as far as the budget allows, keeping stream_slots slots per class free
  // for the rest.
  std::vector<uint32_t> schedule = {};
  int stream_slots = 2;
};

// Each Acquire counts as exactly one hit or one miss, so hits / (hits + misses) is the hit rate
// per block use: a miss when its bytes had to be read for it (by the Acquire itself or by the
// Prefetch that announced it), a hit when they were resident or already being read for an earlier
// use. A prefetched block that is never acquired counts in prefetch_reads only.
struct WeightCacheCounters {
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

  // Field by field: what happened between `before` and this (reads_in_flight stays "now").
  WeightCacheCounters operator-(const WeightCacheCounters& before) const;
};

// A pinned block. Valid until Release(); the pointers point into the cache slot.
class WeightRef {
 public:
  WeightRef() = default;
  const uint8_t* part(int i) const { return part_[i]; }
  uint32_t id() const { return id_; }
  bool valid() const { return slot_ >= 0; }

 private:
  friend class WeightCacheImpl;
  const uint8_t* part_[kMaxBlockParts] = {};
  uint32_t id_ = 0;
  int slot_ = -1;
};

class WeightCache {
 public:
  // Plans every block's reads (an error names the block), groups them into size classes and
  // allocates the slots. Errors: budget below the minimum (the message names the minimum in
  // bytes and the largest block), allocation failure. `table` and `io` must outlive the cache.
  static Result<std::unique_ptr<WeightCache>> Create(const WeightBlockTable& table, IoBackend* io,
                                                     const WeightCacheOptions& options);
  virtual ~WeightCache() = default;

  // CHECK-fails on an id >= table.n_blocks() (programmer error) in every method.
  virtual void Prefetch(std::span<const uint32_t> ids) = 0;
  virtual Result<WeightRef> Acquire(uint32_t id) = 0;
  // Waits for whichever of `ids` is ready first (starting reads for the misses, as Prefetch),
  // pins it and returns it; *index is its position in `ids`. Counts one hit or miss, like
  // Acquire. An error names the block (and sets *index). At most kMaxAcquireAny ids per call.
  static constexpr size_t kMaxAcquireAny = 64;
  virtual Result<WeightRef> AcquireAny(std::span<const uint32_t> ids, int* index) = 0;
  // A prefetch that guessed wrong: frees each of `ids` that was loaded ahead and is still unused
  // and unpinned, at once when its reads are in, else as soon as they are. Blocks in use or used
  // before are left alone. Each freed one counts in prefetch_wasted.
  virtual void Drop(std::span<const uint32_t> ids) = 0;
  // Whether the block is resident or being read (a snapshot: it may change right after).
  virtual bool Contains(uint32_t id) const = 0;
  // counters().reads_in_flight without copying the counters.
  virtual uint64_t reads_in_flight() const = 0;
  // Blocks until no read is in flight (prefetches nobody acquired included): benchmarks settle
  // the cache between rounds, tests wait on it instead of polling.
  virtual void WaitIdle() const = 0;
  virtual void Release(WeightRef& ref) = 0;

  // The largest slot (the largest block's aligned reads).
  virtual uint64_t slot_bytes() const = 0;
  virtual int slot_count() const = 0;
  // Bytes actually allocated for slots (never above options.budget_bytes).
  virtual uint64_t allocated_bytes() const = 0;
  // Share of the slot bytes that size classes pad: 1 - sum(block bytes) / sum(slot bytes they
  // occupy), over every block of the table (0 when all blocks are one size).
  virtual double padding_fraction() const = 0;
  virtual int size_class_count() const = 0;
  virtual WeightCacheCounters counters() const = 0;
  virtual void ResetCounters() = 0;
  // Drops every unpinned block (benchmarks use it to force misses).
  virtual void Clear() = 0;
};

}  // namespace sluice
