// ExpertCacheImpl: the implementation behind ExpertCache::Create (io/expert_cache.h). Internal to
// io/: expert_cache.cc holds the public operations (Prefetch, Acquire, AcquireAny, Release,
// Clear), expert_cache_slots.cc the slot bookkeeping, the loads and the completion thread.
//
// Slot life: kFree -> kLoading (reads submitted) -> kLoaded (all reads in, not yet verified)
// -> kVerifying (its first user hashes it) -> kReady (checksum good) or kFailed (I/O error, short
// read or bad checksum; the bytes are never handed out). Without a checksum (GGUF) or with
// verification off, kLoading goes straight to kReady. The user that claims a loaded expert verifies
// it, not the completion thread: hashing there (~1 ms per 2 MB on a loaded 2-core machine) kept the
// one thread that refills the device queue busy, and queued reads waited behind it; on the user's
// thread it runs in parallel with the reads still in flight, and an expert prefetched but never
// used is never hashed.
//
// An unpinned, settled (ready or failed) slot is evictable, in one of two places:
//   unused_: loaded ahead of its use (Prefetch, AcquireAny) and not used yet, oldest first;
//   policy_: used at least once (LRU or LFU order).
// Victims come from the policy first and from unused_ only when the policy has none: a prefetch
// announces a use that is about to happen, so evicting it first would throw away a read that must
// then be made again (at a 100% miss rate with LRU alone, a prefetched expert that completed early
// was the least recently used and got evicted before its turn). A failed unused read stays mapped
// so that its use reports the error instead of silently reading again; a failed used slot is freed
// by the last use that saw the error (the next Acquire reads again).
//
// Locking: one mutex (mu_) over all slot state and counters. Reads are prepared under it but
// submitted without it (SubmitLoads): an io_uring_submit can take a while when the device queue is
// full, and holding mu_ through it stalled the completion thread. Verification hashes without mu_
// too: the slot is kVerifying and pinned, so nobody else touches its bytes until it is published.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "io/eviction_policy.h"
#include "io/expert_cache.h"
#include "io/expert_read_plan.h"
#include "io/read_buffers.h"

namespace sluice {

// Tag of a read: slot * 4 + read index (an expert has at most 3 reads).
inline constexpr uint64_t kReadsPerTag = 4;
// AcquireAny takes at most this many candidates (a layer's experts per token: 8..16 in practice).
inline constexpr size_t kMaxAcquireAny = 64;
// Prefetch prepares and submits experts in batches of this many (one io_uring_enter per batch).
inline constexpr size_t kPrefetchBatch = 16;

struct CacheSlot {
  enum State : uint8_t { kFree, kLoading, kLoaded, kVerifying, kReady, kFailed };
  // Reads or a verification are under way: wait, do not evict.
  bool busy() const { return state == kLoading || state == kVerifying; }
  State state = kFree;
  bool unclaimed = false;  // loaded for a use that has not Acquired yet (counts its miss)
  bool dropped = false;    // unclaimed and Drop()ped while loading: freed when its reads are in
  int layer = -1, expert = -1, key = -1;
  int pins = 0;        // Acquire holders plus Acquire/AcquireAny waiters
  int reads_left = 0;  // of the current load
  int read_error = 0;  // first errno of the current load
  uint64_t short_got = 0, short_needed = 0, short_offset = 0;  // first short read, if any
  ExpertReadPlan plan;
  Status error;  // kFailed
};

class ExpertCacheImpl final : public ExpertCache {
 public:
  ExpertCacheImpl(const ModelFile& model, IoBackend* io, const ExpertCacheOptions& options)
      : model_(model), io_(io), options_(options) {}
  ~ExpertCacheImpl() override;

  Status Init();
  void Prefetch(int layer, std::span<const int> experts) override;
  Result<ExpertRef> Acquire(int layer, int expert) override;
  Result<ExpertRef> AcquireAny(int layer, std::span<const int> experts, int* index) override;
  void Drop(int layer, std::span<const int> experts) override;
  bool Contains(int layer, int expert) const override;
  void Release(ExpertRef& ref) override;
  uint64_t slot_bytes() const override { return slot_bytes_; }
  int slot_count() const override { return static_cast<int>(slots_.size()); }
  uint64_t allocated_bytes() const override { return memory_.size(); }
  uint8_t* slot_data(int s) const {
    return memory_.data() + static_cast<uint64_t>(s) * slot_bytes_;
  }
  ExpertCacheCounters counters() const override;
  uint64_t reads_in_flight() const override;
  void ResetCounters() override;
  void Clear() override;

 private:
  using Slot = CacheSlot;

  int Key(int layer, int expert) const;  // CHECK-fails on a layer/expert out of range
  int AllocateSlotLocked();              // a free slot or an evicted one; -1 if none evictable
  // Maps `key` to slot s in kLoading and writes its reads to `out` (returns how many); the caller
  // submits them with SubmitLoads after releasing mu_.
  int PrepareLoadLocked(int s, int layer, int expert, int key, IoRequest* out);
  // Submits prepared reads without mu_; on failure fails their slots (and takes mu_ to do so).
  void SubmitLoads(std::span<const IoRequest> requests);
  void FailLoadLocked(int s, Status error);
  void FreeSlotLocked(int s);
  void PinLocked(int s);    // takes a settled slot out of unused_ / policy_
  void UnpinLocked(int s);  // the last unpin of a settled slot makes it evictable (ParkLocked)
  void ParkLocked(int s);
  bool UnpinnedLoadExistsLocked() const;
  void CountUseLocked(Slot& slot);  // one hit or miss for this use of the slot
  // The slot is settled and pinned for this use: verifies it if loaded (releasing mu_ while it
  // hashes), then returns its ref, or its error (unpinned).
  Result<ExpertRef> TakeLocked(std::unique_lock<std::mutex>& lock, int s);
  void AddWaitLocked(std::chrono::steady_clock::time_point start);
  // Keep counters_.busy_ns: call before reads_in_flight changes (from 0) and after (to 0).
  void StartBusyLocked();
  void EndBusyLocked();
  uint64_t BusyStretchNsLocked() const;  // since busy_since_
  Status AllPinnedError(int layer, int expert) const;
  void CompletionLoop();
  void FinishLoadLocked(int s);  // all reads of slot s are in
  Status VerifyUnlocked(int s);  // hashes a kVerifying slot (mu_ not held)
  ExpertRef RefFor(int s);

  const ModelFile& model_;
  IoBackend* io_;
  const ExpertCacheOptions options_;
  uint64_t slot_bytes_ = 0;
  ReadBuffers memory_;                // slot_count x slot_bytes, 2 MiB aligned, THP-advised
  std::vector<int> layer_first_key_;  // block index -> key of expert 0, or -1
  std::vector<int> layer_n_expert_;

  mutable std::mutex mu_;
  std::condition_variable cv_;  // a load finished or a slot became evictable
  std::vector<Slot> slots_;
  std::vector<int> slot_of_;  // key -> slot or -1
  std::vector<int> free_slots_;
  std::unique_ptr<EvictionPolicy> policy_;
  SlotList unused_{0};
  ExpertCacheCounters counters_;
  std::chrono::steady_clock::time_point busy_since_;  // valid while reads_in_flight > 0
  bool stopping_ = false;
  std::thread completion_thread_;
};

}  // namespace sluice
