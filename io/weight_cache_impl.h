// WeightCacheImpl: the implementation behind WeightCache::Create (io/weight_cache.h). Internal to
// io/: weight_cache.cc holds the public operations (Prefetch, Acquire, AcquireAny, Release,
// Clear), weight_cache_slots.cc the size classes, the slot bookkeeping, the loads and the
// completion thread.
//
// Slot life: kFree -> kLoading (reads submitted) -> kLoaded (all reads in, not yet verified)
// -> kVerifying (its first user hashes it) -> kReady (checksum good) or kFailed (I/O error, short
// read or bad checksum; the bytes are never handed out). Without a checksum (GGUF) or with
// verification off, kLoading goes straight to kReady. The user that claims a loaded block verifies
// it, not the completion thread: hashing there (~1 ms per 2 MB on a loaded 2-core machine) kept the
// one thread that refills the device queue busy, and queued reads waited behind it; on the user's
// thread it runs in parallel with the reads still in flight, and a block prefetched but never
// used is never hashed.
//
// An unpinned, settled (ready or failed) slot is evictable, in one of two places of its class:
//   unused: loaded ahead of its use (Prefetch, AcquireAny) and not used yet, oldest first;
//   policy: used at least once (LRU or LFU order).
// Victims come from the policy first and from unused only when the policy has none: a prefetch
// announces a use that is about to happen, so evicting it first would throw away a read that must
// then be made again (at a 100% miss rate with LRU alone, a prefetched block that completed early
// was the least recently used and got evicted before its turn). A failed unused read stays mapped
// so that its use reports the error instead of silently reading again; a failed used slot is freed
// by the last use that saw the error (the next Acquire reads again). A kept block (ordered mode)
// that was used is in neither place: it stays resident.
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

#include "io/block_read_plan.h"
#include "io/eviction_policy.h"
#include "io/read_buffers.h"
#include "io/weight_cache.h"

namespace sluice {

// Tag of a read: slot * kReadsPerTag + read index (a block has at most kMaxBlockParts reads).
inline constexpr uint64_t kReadsPerTag = kMaxBlockParts;
// Prefetch prepares and submits blocks in batches of this many (one io_uring_enter per batch).
inline constexpr size_t kPrefetchBatch = 16;

struct CacheSlot {
  enum State : uint8_t { kFree, kLoading, kLoaded, kVerifying, kReady, kFailed };
  // Reads or a verification are under way: wait, do not evict.
  bool busy() const { return state == kLoading || state == kVerifying; }
  State state = kFree;
  bool unclaimed = false;  // loaded for a use that has not Acquired yet (counts its miss)
  bool dropped = false;    // unclaimed and Drop()ped while loading: freed when its reads are in
  bool kept = false;       // ordered mode: resident for good once used
  int64_t key = -1;        // block id, -1 when free
  int pins = 0;            // Acquire holders plus Acquire/AcquireAny waiters
  int reads_left = 0;      // of the current load
  int read_error = 0;      // first errno of the current load
  uint64_t short_got = 0, short_needed = 0, short_offset = 0;  // first short read, if any
  BlockReadPlan plan;
  Status error;  // kFailed
};

// Slots of one size; eviction never crosses classes.
struct SizeClass {
  uint64_t slot_bytes = 0;
  uint64_t n_blocks = 0;     // blocks of the table in this class
  uint64_t block_bytes = 0;  // their bytes (BlockReadPlan::data_bytes)
  int first_slot = 0, slot_count = 0;
  std::vector<int> free_slots;
  std::unique_ptr<EvictionPolicy> policy;
  SlotList unused{0};
};

class WeightCacheImpl final : public WeightCache {
 public:
  WeightCacheImpl(const WeightBlockTable& table, IoBackend* io, const WeightCacheOptions& options)
      : table_(table), io_(io), options_(options) {}
  ~WeightCacheImpl() override;

  Status Init();
  void Prefetch(std::span<const uint32_t> ids) override;
  Result<WeightRef> Acquire(uint32_t id) override;
  Result<WeightRef> AcquireAny(std::span<const uint32_t> ids, int* index) override;
  void Drop(std::span<const uint32_t> ids) override;
  bool Contains(uint32_t id) const override;
  void Release(WeightRef& ref) override;
  uint64_t slot_bytes() const override { return max_slot_bytes_; }
  int slot_count() const override { return static_cast<int>(slots_.size()); }
  uint64_t allocated_bytes() const override { return memory_.size(); }
  double padding_fraction() const override { return padding_fraction_; }
  int size_class_count() const override { return static_cast<int>(classes_.size()); }
  uint8_t* slot_data(int s) const { return memory_.data() + slot_offset_[s]; }
  WeightCacheCounters counters() const override;
  uint64_t reads_in_flight() const override;
  void WaitIdle() const override;
  void ResetCounters() override;
  void Clear() override;

 private:
  using Slot = CacheSlot;

  // Init's steps: plan every block and sort them into classes; give each class its slots.
  Status PlanClasses(std::vector<uint64_t>* block_slot_bytes);
  Status SizeClasses();
  void CheckId(uint32_t id) const;  // CHECK-fails on an id out of range
  SizeClass& ClassOf(uint32_t id) { return classes_[class_of_[id]]; }
  int AllocateSlotLocked(SizeClass& c);  // a free slot or an evicted one; -1 if none evictable
  // Maps block `id` to slot s in kLoading and writes its reads to `out` (returns how many); the
  // caller submits them with SubmitLoads after releasing mu_.
  int PrepareLoadLocked(int s, uint32_t id, IoRequest* out);
  // Submits prepared reads without mu_; on failure fails their slots (and takes mu_ to do so).
  void SubmitLoads(std::span<const IoRequest> requests);
  void FailLoadLocked(int s, Status error);
  void FreeSlotLocked(int s);
  void PinLocked(int s);    // takes a settled slot out of its class's unused / policy
  void UnpinLocked(int s);  // the last unpin of a settled slot makes it evictable (ParkLocked)
  void ParkLocked(int s);
  bool UnpinnedLoadExistsLocked(const SizeClass& c) const;
  void CountUseLocked(Slot& slot);  // one hit or miss for this use of the slot
  // The slot is settled and pinned for this use: verifies it if loaded (releasing mu_ while it
  // hashes), then returns its ref, or its error (unpinned).
  Result<WeightRef> TakeLocked(std::unique_lock<std::mutex>& lock, int s);
  void AddWaitLocked(std::chrono::steady_clock::time_point start);
  // Keep counters_.busy_ns: call before reads_in_flight changes (from 0) and after (to 0).
  void StartBusyLocked();
  void EndBusyLocked();
  uint64_t BusyStretchNsLocked() const;  // since busy_since_
  Status AllPinnedError(uint32_t id) const;
  // "<file>: <block description>" for messages.
  std::string Where(const Slot& slot) const;
  void CompletionLoop();
  void FinishLoadLocked(int s);  // all reads of slot s are in
  Status VerifyUnlocked(int s);  // hashes a kVerifying slot (mu_ not held)
  WeightRef RefFor(int s);

  const WeightBlockTable& table_;
  IoBackend* io_;
  const WeightCacheOptions options_;
  uint64_t max_slot_bytes_ = 0;
  double padding_fraction_ = 0;
  ReadBuffers memory_;                 // every slot, 2 MiB aligned, THP-advised
  std::vector<uint64_t> slot_offset_;  // slot -> byte offset in memory_
  std::vector<uint8_t> class_of_;      // block id -> size class
  std::vector<uint8_t> keep_;          // block id -> kept resident (ordered mode)

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;  // a load finished or a slot became evictable
  std::vector<SizeClass> classes_;
  std::vector<Slot> slots_;
  std::vector<int> slot_class_;  // slot -> size class
  std::vector<int> slot_of_;     // block id -> slot or -1
  WeightCacheCounters counters_;
  std::chrono::steady_clock::time_point busy_since_;  // valid while reads_in_flight > 0
  bool stopping_ = false;
  std::thread completion_thread_;
};

}  // namespace sluice
