// ExpertCache implementation: fixed slots, one mutex, one completion thread.
//
// Slot life: kFree -> kLoading (reads submitted) -> kReady (all reads in, checksum good) or
// kFailed (I/O error, short read or bad checksum; the bytes are never handed out).
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
// The completion thread reaps the backend, and when an expert's last read is in, hashes it outside
// the mutex (the slot is kLoading, so nobody else touches its bytes), then publishes the result and
// wakes the waiters.
#include "io/expert_cache.h"

#include <xxhash.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/base/aligned_buffer.h"
#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "io/eviction_policy.h"
#include "io/expert_read_plan.h"

namespace sluice {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Tag of a read: slot * 4 + read index (an expert has at most 3 reads).
constexpr uint64_t kReadsPerTag = 4;
// AcquireAny takes at most this many candidates (a layer's experts per token: 8..16 in practice).
constexpr size_t kMaxAcquireAny = 64;

struct Slot {
  enum State : uint8_t { kFree, kLoading, kReady, kFailed };
  State state = kFree;
  bool unclaimed = false;  // loaded for a use that has not Acquired yet (counts its miss)
  int layer = -1, expert = -1, key = -1;
  int pins = 0;        // Acquire holders plus Acquire waiters
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
  void Release(ExpertRef& ref) override;
  uint64_t slot_bytes() const override { return slot_bytes_; }
  int slot_count() const override { return static_cast<int>(slots_.size()); }
  uint64_t allocated_bytes() const override { return memory_.size(); }
  ExpertCacheCounters counters() const override;
  void ResetCounters() override;
  void Clear() override;

 private:
  int Key(int layer, int expert) const;
  int AllocateSlotLocked();
  Status StartLoadLocked(int s, int layer, int expert, int key);
  void FreeSlotLocked(int s);
  void PinLocked(int s);    // takes a settled slot out of unused_ / policy_
  void UnpinLocked(int s);  // the last unpin of a settled slot makes it evictable (ParkLocked)
  void ParkLocked(int s);
  bool UnpinnedLoadExistsLocked() const;
  void CountUseLocked(Slot& slot);  // one hit or miss for this use of the slot
  // The slot is ready or failed and pinned for this use: its ref, or its error (unpinned).
  Result<ExpertRef> TakeLocked(int s);
  void AddWaitLocked(std::chrono::steady_clock::time_point start);
  Status AllPinnedError(int layer, int expert) const;
  void CompletionLoop();
  void Finalize(int s);  // all reads of slot s are in (called without mu_)
  ExpertRef RefFor(int s);

  const ModelFile& model_;
  IoBackend* io_;
  const ExpertCacheOptions options_;
  uint64_t slot_bytes_ = 0;
  AlignedBuffer memory_;
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
  bool stopping_ = false;
  std::thread completion_thread_;
};

Result<int> BlockCount(const ModelFile& model) {
  const Metadata& m = model.metadata();
  ASSIGN_OR_RETURN(std::string arch, m.GetString("general.architecture"));
  ASSIGN_OR_RETURN(uint64_t n, m.GetUint(arch + ".block_count"));
  if (n == 0 || n > 100000) {
    return Corrupt(model.path(), ": ", arch, ".block_count = ", n, " (expected 1..100000)");
  }
  return static_cast<int>(n);
}

Status ExpertCacheImpl::Init() {
  ASSIGN_OR_RETURN(int blocks, BlockCount(model_));
  layer_first_key_.assign(blocks, -1);
  layer_n_expert_.assign(blocks, 0);
  int64_t keys = 0;
  std::string largest = "none";
  for (int layer = 0; layer < blocks; ++layer) {
    std::optional<ExpertTensors> t = model_.expert_tensors(layer);
    if (!t) continue;
    const int n = static_cast<int>(t->gate.ne[2]);
    layer_first_key_[layer] = static_cast<int>(keys);
    layer_n_expert_[layer] = n;
    keys += n;
    for (int e = 0; e < n; ++e) {
      Result<ExpertReadPlan> plan = PlanExpertRead(model_.LocateExpert(layer, e));
      if (!plan.ok()) {
        return Status(plan.status().code(), StrCat(model_.path(), ": expert (layer ", layer,
                                                   ", expert ", e, "): ", plan.status().message()));
      }
      if (plan->slot_bytes > slot_bytes_) {
        slot_bytes_ = plan->slot_bytes;
        largest = StrCat("expert (layer ", layer, ", expert ", e, ")");
      }
    }
  }
  if (keys == 0) return InvalidArgument(model_.path(), ": the model has no routed experts");
  if (keys > (1 << 30)) return InvalidArgument(model_.path(), ": too many experts: ", keys);
  const uint64_t min_bytes = slot_bytes_ * static_cast<uint64_t>(options_.min_resident_experts);
  if (options_.min_resident_experts < 1 || options_.budget_bytes < min_bytes) {
    return ResourceExhausted(
        "expert cache budget ", FormatBytes(options_.budget_bytes), " (", options_.budget_bytes,
        " bytes) is below the minimum of ", FormatBytes(min_bytes), " (", min_bytes,
        " bytes): ", options_.min_resident_experts, " experts used at once x ", slot_bytes_,
        " bytes per slot (the largest, ", largest, " of ", model_.path(), ", aligned to 4 KiB)");
  }
  // More slots than experts would never be used.
  const uint64_t count = std::min<uint64_t>(options_.budget_bytes / slot_bytes_, keys);
  memory_ =
      AlignedBuffer(count * slot_bytes_,
                    {.alignment = kIoAlignment, .numa_local = true, .lock = options_.lock_memory});
  if (memory_.data() == nullptr) {
    return ResourceExhausted("expert cache: cannot allocate ", FormatBytes(count * slot_bytes_),
                             " for ", count, " slots");
  }
  if (options_.lock_memory && !memory_.locked()) {
    LOG(WARNING) << "expert cache: mlock of " << FormatBytes(memory_.size())
                 << " failed (raise `ulimit -l`); the slots may be swapped out";
  }
  slots_.resize(count);
  slot_of_.assign(keys, -1);
  for (int s = static_cast<int>(count) - 1; s >= 0; --s) free_slots_.push_back(s);
  double half_life = options_.lfu_half_life > 0 ? options_.lfu_half_life : 4.0 * count;
  unused_ = SlotList(static_cast<int>(count));
  policy_ = MakeEvictionPolicy(options_.policy, static_cast<int>(count), static_cast<int>(keys),
                               half_life);
  std::vector<iovec> iov(count);
  for (uint64_t s = 0; s < count; ++s) iov[s] = {memory_.data() + s * slot_bytes_, slot_bytes_};
  io_->RegisterBuffers(iov);
  completion_thread_ = std::thread([this] { CompletionLoop(); });
  LOG(DEBUG) << "expert cache: " << count << " slots of " << FormatBytes(slot_bytes_) << " ("
             << FormatBytes(memory_.size()) << ") over " << io_->Describe();
  return Status::Ok();
}

ExpertCacheImpl::~ExpertCacheImpl() {
  if (!completion_thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  // The thread drains every read still in flight (the kernel may be writing into the slots)
  // before it exits; only then are the buffers unregistered and freed.
  io_->Interrupt();
  completion_thread_.join();
  io_->UnregisterBuffers();
}

int ExpertCacheImpl::Key(int layer, int expert) const {
  CHECK(layer >= 0 && static_cast<size_t>(layer) < layer_first_key_.size() &&
        layer_first_key_[layer] >= 0)
      << "layer " << layer << " has no routed experts";
  CHECK(expert >= 0 && expert < layer_n_expert_[layer])
      << "expert " << expert << " of layer " << layer << " (" << layer_n_expert_[layer] << ")";
  return layer_first_key_[layer] + expert;
}

int ExpertCacheImpl::AllocateSlotLocked() {
  if (!free_slots_.empty()) {
    int s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  int victim = policy_->Victim();
  if (victim >= 0) {
    policy_->Remove(victim);
  } else {
    victim = unused_.head();
    if (victim < 0) return -1;
    unused_.Erase(victim);
    ++counters_.prefetch_wasted;
  }
  DCHECK(slots_[victim].pins == 0 && slots_[victim].state != Slot::kLoading);
  slot_of_[slots_[victim].key] = -1;
  ++counters_.evictions;
  return victim;
}

void ExpertCacheImpl::PinLocked(int s) {
  Slot& slot = slots_[s];
  if (slot.pins++ > 0 || slot.state == Slot::kLoading) return;
  if (unused_.Contains(s)) {
    unused_.Erase(s);
  } else {
    DCHECK(slot.state == Slot::kReady);
    policy_->Remove(s);
  }
}

void ExpertCacheImpl::UnpinLocked(int s) {
  Slot& slot = slots_[s];
  if (--slot.pins > 0 || slot.state == Slot::kLoading) return;
  ParkLocked(s);
}

void ExpertCacheImpl::ParkLocked(int s) {
  Slot& slot = slots_[s];
  if (slot.unclaimed) {
    unused_.PushBack(s);
  } else if (slot.state == Slot::kReady) {
    policy_->Add(s, slot.key);
  } else {
    FreeSlotLocked(s);
  }
  cv_.notify_all();  // an Acquire may be waiting for an evictable slot
}

void ExpertCacheImpl::FreeSlotLocked(int s) {
  Slot& slot = slots_[s];
  slot_of_[slot.key] = -1;
  slot = Slot();
  free_slots_.push_back(s);
}

Status ExpertCacheImpl::StartLoadLocked(int s, int layer, int expert, int key) {
  Slot& slot = slots_[s];
  slot = Slot();
  ASSIGN_OR_RETURN(slot.plan, PlanExpertRead(model_.LocateExpert(layer, expert)));
  slot.state = Slot::kLoading;
  slot.layer = layer;
  slot.expert = expert;
  slot.key = key;
  slot.unclaimed = true;
  slot.reads_left = slot.plan.n_reads;
  slot_of_[key] = s;
  uint8_t* base = memory_.data() + static_cast<uint64_t>(s) * slot_bytes_;
  IoRequest requests[3];
  for (int r = 0; r < slot.plan.n_reads; ++r) {
    const ExpertRead& read = slot.plan.reads[r];
    requests[r] = {.file_index = read.file_index,
                   .offset = read.offset,
                   .length = read.length,
                   .dest = base + read.slot_offset,
                   .buffer_index = s,
                   .tag = static_cast<uint64_t>(s) * kReadsPerTag + r};
  }
  Status st = io_->Submit(std::span<const IoRequest>(requests, slot.plan.n_reads));
  if (!st.ok()) {
    FreeSlotLocked(s);
    return Status(st.code(), StrCat(model_.path(), ": expert (layer ", layer, ", expert ", expert,
                                    "): ", st.message()));
  }
  counters_.reads_in_flight += slot.plan.n_reads;
  return Status::Ok();
}

ExpertRef ExpertCacheImpl::RefFor(int s) {
  const Slot& slot = slots_[s];
  const uint8_t* base = memory_.data() + static_cast<uint64_t>(s) * slot_bytes_;
  const uint8_t* m[3];
  for (int i = 0; i < 3; ++i) m[i] = base + slot.plan.matrix_slot_offset[i];
  return MakeRef(slot.layer, slot.expert, s, m);
}

void ExpertCacheImpl::Prefetch(int layer, std::span<const int> experts) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int expert : experts) {
    const int key = Key(layer, expert);
    if (slot_of_[key] >= 0) continue;  // resident, loading or failing: nothing to start
    const int s = AllocateSlotLocked();
    if (s < 0) {
      ++counters_.prefetch_skipped;
      continue;
    }
    Status st = StartLoadLocked(s, layer, expert, key);
    if (!st.ok()) {
      // Not fatal here: the Acquire that follows retries and reports it.
      ++counters_.read_errors;
      LOG(DEBUG) << "prefetch: " << st.ToString();
      continue;
    }
    ++counters_.prefetch_reads;
  }
}

bool ExpertCacheImpl::UnpinnedLoadExistsLocked() const {
  for (const Slot& slot : slots_) {
    if (slot.state == Slot::kLoading && slot.pins == 0) return true;
  }
  return false;
}

void ExpertCacheImpl::CountUseLocked(Slot& slot) {
  if (slot.unclaimed) {
    ++counters_.misses;
    slot.unclaimed = false;
  } else {
    ++counters_.hits;
  }
}

Result<ExpertRef> ExpertCacheImpl::TakeLocked(int s) {
  Slot& slot = slots_[s];
  if (slot.state == Slot::kReady) return RefFor(s);
  CHECK(slot.state == Slot::kFailed);
  Status error = slot.error;
  UnpinLocked(s);
  return error;
}

void ExpertCacheImpl::AddWaitLocked(std::chrono::steady_clock::time_point start) {
  counters_.io_wait_ns += static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count());
}

Status ExpertCacheImpl::AllPinnedError(int layer, int expert) const {
  return ResourceExhausted("expert cache: all ", slots_.size(), " slots are pinned; expert (layer ",
                           layer, ", expert ", expert,
                           ") has nowhere to go. Release experts before acquiring more, or raise "
                           "the budget (now ",
                           FormatBytes(memory_.size()), ")");
}

Result<ExpertRef> ExpertCacheImpl::Acquire(int layer, int expert) {
  std::unique_lock<std::mutex> lock(mu_);
  const int key = Key(layer, expert);
  policy_->Touch(key);
  int s = slot_of_[key];
  while (s < 0) {
    s = AllocateSlotLocked();
    if (s >= 0) {
      RETURN_IF_ERROR(StartLoadLocked(s, layer, expert, key));
      break;
    }
    if (!UnpinnedLoadExistsLocked()) return AllPinnedError(layer, expert);
    cv_.wait(lock);  // an unpinned load will finish and become evictable
    s = slot_of_[key];
  }
  Slot& slot = slots_[s];
  CountUseLocked(slot);
  PinLocked(s);
  if (slot.state == Slot::kLoading) {
    const auto start = std::chrono::steady_clock::now();
    cv_.wait(lock, [&] { return slot.state != Slot::kLoading; });
    AddWaitLocked(start);
  }
  return TakeLocked(s);
}

Result<ExpertRef> ExpertCacheImpl::AcquireAny(int layer, std::span<const int> experts, int* index) {
  CHECK(!experts.empty() && experts.size() <= kMaxAcquireAny)
      << "AcquireAny of " << experts.size() << " experts (1.." << kMaxAcquireAny << ")";
  std::unique_lock<std::mutex> lock(mu_);
  // Every candidate this call has a slot for is pinned while it waits, so none is evicted and a
  // failed read stays visible until reported; all but the chosen one are unpinned on return.
  std::array<int, kMaxAcquireAny> pinned;
  pinned.fill(-1);
  auto unpin_all_but = [&](size_t keep) {
    for (size_t j = 0; j < experts.size(); ++j) {
      if (j != keep && pinned[j] >= 0) UnpinLocked(pinned[j]);
    }
  };
  const auto start = std::chrono::steady_clock::now();
  bool waited = false;
  for (;;) {
    bool any_loading = false;
    for (size_t i = 0; i < experts.size(); ++i) {
      if (pinned[i] < 0) {
        const int key = Key(layer, experts[i]);
        int s = slot_of_[key];
        if (s < 0) {
          s = AllocateSlotLocked();
          if (s < 0) continue;  // no room now; retried after the next completion
          Status st = StartLoadLocked(s, layer, experts[i], key);
          if (!st.ok()) {
            unpin_all_but(experts.size());
            *index = static_cast<int>(i);
            return st;
          }
          ++counters_.prefetch_reads;
        }
        PinLocked(s);
        pinned[i] = s;
      }
      Slot& slot = slots_[pinned[i]];
      if (slot.state == Slot::kLoading) {
        any_loading = true;
        continue;
      }
      unpin_all_but(i);
      policy_->Touch(slot.key);
      CountUseLocked(slot);
      if (waited) AddWaitLocked(start);
      *index = static_cast<int>(i);
      return TakeLocked(pinned[i]);
    }
    if (!any_loading && !UnpinnedLoadExistsLocked()) {
      unpin_all_but(experts.size());
      *index = 0;
      return AllPinnedError(layer, experts[0]);
    }
    waited = true;
    cv_.wait(lock);
  }
}

void ExpertCacheImpl::Release(ExpertRef& ref) {
  CHECK(ref.valid()) << "Release of an invalid ExpertRef";
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int s = RefSlot(ref);
    const Slot& slot = slots_[s];
    CHECK(slot.state == Slot::kReady && slot.pins > 0 && slot.layer == ref.layer() &&
          slot.expert == ref.expert())
        << "Release of expert (" << ref.layer() << ", " << ref.expert() << ") not held in slot "
        << s;
    UnpinLocked(s);
  }
  InvalidateRef(ref);
}

void ExpertCacheImpl::CompletionLoop() {
  IoCompletion done[64];
  int finished[64];
  for (;;) {
    const size_t n = io_->Reap(done, 1);
    int n_finished = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < n; ++i) {
        const int s = static_cast<int>(done[i].tag / kReadsPerTag);
        const int r = static_cast<int>(done[i].tag % kReadsPerTag);
        Slot& slot = slots_[s];
        const ExpertRead& read = slot.plan.reads[r];
        counters_.bytes_read += done[i].bytes;
        ++counters_.reads_completed;
        --counters_.reads_in_flight;
        if (done[i].error != 0 && slot.read_error == 0) {
          slot.read_error = done[i].error;
          slot.short_offset = read.offset;
        } else if (done[i].error == 0 && done[i].bytes < read.needed && slot.short_needed == 0) {
          slot.short_got = done[i].bytes;
          slot.short_needed = read.needed;
          slot.short_offset = read.offset;
        }
        if (--slot.reads_left == 0) finished[n_finished++] = s;
      }
    }
    for (int i = 0; i < n_finished; ++i) Finalize(finished[i]);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && counters_.reads_in_flight == 0) return;
  }
}

void ExpertCacheImpl::Finalize(int s) {
  Slot& slot = slots_[s];  // kLoading: only this thread touches its plan and bytes until published
  const std::string& path = model_.file_paths()[slot.plan.reads[0].file_index];
  Status error;
  bool bad_checksum = false;
  if (slot.read_error != 0) {
    error = IoError(path, ": reading expert (layer ", slot.layer, ", expert ", slot.expert,
                    ") at offset ", slot.short_offset, " failed: ", IoErrorText(slot.read_error));
  } else if (slot.short_needed != 0) {
    error = Corrupt(path, ": expert (layer ", slot.layer, ", expert ", slot.expert, ") at offset ",
                    slot.short_offset, ": the file ended after ", slot.short_got, " of ",
                    slot.short_needed, " bytes (truncated?)");
  } else if (slot.plan.has_checksum && options_.verify_checksums) {
    const uint8_t* bytes =
        memory_.data() + static_cast<uint64_t>(s) * slot_bytes_ + slot.plan.hash_slot_offset;
    const uint64_t found = XXH3_64bits(bytes, slot.plan.hash_bytes);
    if (found != slot.plan.xxh3) {
      bad_checksum = true;
      error = Corrupt(path, ": expert (layer ", slot.layer, ", expert ", slot.expert,
                      ") at offset ", slot.plan.reads[0].offset + slot.plan.hash_slot_offset, " (",
                      slot.plan.hash_bytes, " bytes): xxh3 expected ", Hex(slot.plan.xxh3),
                      ", found ", Hex(found), "; the bytes were not used");
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (error.ok()) {
    slot.state = Slot::kReady;
  } else {
    ++(bad_checksum ? counters_.checksum_failures : counters_.read_errors);
    LOG(WARNING) << error.ToString();
    slot.state = Slot::kFailed;
    slot.error = std::move(error);
  }
  // Unpinned means nobody has claimed it yet (Acquire pins before it waits): it waits in unused_.
  if (slot.pins == 0) ParkLocked(s);
  cv_.notify_all();
}

ExpertCacheCounters ExpertCacheImpl::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

void ExpertCacheImpl::ResetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t in_flight = counters_.reads_in_flight;
  counters_ = ExpertCacheCounters();
  counters_.reads_in_flight = in_flight;
}

void ExpertCacheImpl::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
    Slot& slot = slots_[s];
    if (slot.pins > 0 || slot.state == Slot::kFree || slot.state == Slot::kLoading) continue;
    if (unused_.Contains(s)) {
      unused_.Erase(s);
    } else {
      policy_->Remove(s);
    }
    FreeSlotLocked(s);
  }
}

}  // namespace

Result<std::unique_ptr<ExpertCache>> ExpertCache::Create(const ModelFile& model, IoBackend* io,
                                                         const ExpertCacheOptions& options) {
  CHECK(io != nullptr);
  auto cache = std::make_unique<ExpertCacheImpl>(model, io, options);
  RETURN_IF_ERROR(cache->Init());
  return std::unique_ptr<ExpertCache>(std::move(cache));
}

}  // namespace sluice
