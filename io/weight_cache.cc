// WeightCache's operations (Prefetch, Acquire, AcquireAny, Release, Clear). The slot states, the
// two evictable sets and the locking rules are described in io/weight_cache_impl.h.
#include <array>

#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/base/log.h"
#include "core/base/str_cat.h"
#include "io/weight_cache_impl.h"

namespace sluice {

void WeightCacheImpl::Prefetch(std::span<const uint32_t> ids) {
  // Batches: prepared under the lock, submitted after it with one io_uring_enter each.
  std::array<IoRequest, kPrefetchBatch * kMaxBlockParts> requests;
  for (size_t begin = 0; begin < ids.size(); begin += kPrefetchBatch) {
    size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = begin; i < std::min(ids.size(), begin + kPrefetchBatch); ++i) {
        CheckId(ids[i]);
        if (slot_of_[ids[i]] >= 0) continue;  // resident, loading or failed: nothing to start
        const int s = AllocateSlotLocked(ClassOf(ids[i]));
        if (s < 0) {
          ++counters_.prefetch_skipped;
          continue;
        }
        n += PrepareLoadLocked(s, ids[i], &requests[n]);
        ++counters_.prefetch_reads;
      }
    }
    SubmitLoads(std::span<const IoRequest>(requests.data(), n));
  }
}

bool WeightCacheImpl::UnpinnedLoadExistsLocked(const SizeClass& c) const {
  for (int s = c.first_slot; s < c.first_slot + c.slot_count; ++s) {
    if (slots_[s].busy() && slots_[s].pins == 0) return true;
  }
  return false;
}

void WeightCacheImpl::CountUseLocked(Slot& slot) {
  if (slot.unclaimed) {
    ++counters_.misses;
    slot.unclaimed = false;
  } else {
    ++counters_.hits;
  }
}

Result<WeightRef> WeightCacheImpl::TakeLocked(std::unique_lock<std::mutex>& lock, int s) {
  Slot& slot = slots_[s];
  if (slot.state == Slot::kLoaded) {
    slot.state = Slot::kVerifying;  // later users of this block wait for the verdict
    lock.unlock();
    Status verdict = VerifyUnlocked(s);
    lock.lock();
    if (verdict.ok()) {
      slot.state = Slot::kReady;
    } else {
      ++counters_.checksum_failures;
      LOG(WARNING) << verdict.ToString();
      slot.state = Slot::kFailed;
      slot.error = std::move(verdict);
    }
    cv_.notify_all();
  }
  if (slot.state == Slot::kReady) return RefFor(s);
  CHECK(slot.state == Slot::kFailed);
  Status error = slot.error;
  UnpinLocked(s);
  return error;
}

void WeightCacheImpl::AddWaitLocked(std::chrono::steady_clock::time_point start) {
  counters_.io_wait_ns += NsSince(start);
}

Status WeightCacheImpl::AllPinnedError(uint32_t id) const {
  const SizeClass& c = classes_[class_of_[id]];
  return ResourceExhausted("weight cache: all ", c.slot_count, " slots are pinned",
                           classes_.size() > 1
                               ? StrCat(" in the size class of ", FormatBytes(c.slot_bytes))
                               : std::string(),
                           "; ", table_.Describe(id),
                           " has nowhere to go. Release blocks before acquiring more, or raise "
                           "the budget (now ",
                           FormatBytes(memory_.size()), ")");
}

Result<WeightRef> WeightCacheImpl::Acquire(uint32_t id) {
  std::unique_lock<std::mutex> lock(mu_);
  CheckId(id);
  SizeClass& c = ClassOf(id);
  c.policy->Touch(static_cast<int>(id));
  IoRequest requests[kMaxBlockParts];
  int n_requests = 0;
  int s = slot_of_[id];
  while (s < 0) {
    s = AllocateSlotLocked(c);
    if (s >= 0) {
      n_requests = PrepareLoadLocked(s, id, requests);
      break;
    }
    if (!UnpinnedLoadExistsLocked(c)) return AllPinnedError(id);
    cv_.wait(lock);  // an unpinned load will finish and become evictable
    s = slot_of_[id];
  }
  Slot& slot = slots_[s];
  CountUseLocked(slot);
  PinLocked(s);
  if (n_requests > 0) {
    lock.unlock();
    SubmitLoads(std::span<const IoRequest>(requests, n_requests));
    lock.lock();
  }
  if (slot.busy()) {
    const auto start = std::chrono::steady_clock::now();
    cv_.wait(lock, [&] { return !slot.busy(); });
    AddWaitLocked(start);
  }
  return TakeLocked(lock, s);
}

Result<WeightRef> WeightCacheImpl::AcquireAny(std::span<const uint32_t> ids, int* index) {
  CHECK(!ids.empty() && ids.size() <= kMaxAcquireAny)
      << "AcquireAny of " << ids.size() << " blocks (1.." << kMaxAcquireAny << ")";
  std::unique_lock<std::mutex> lock(mu_);
  // Every candidate this call has a slot for is pinned while it waits, so none is evicted and a
  // failed read stays visible until reported; all but the chosen one are unpinned on return.
  std::array<int, kMaxAcquireAny> pinned;
  pinned.fill(-1);
  auto unpin_all_but = [&](size_t keep) {
    for (size_t j = 0; j < ids.size(); ++j) {
      if (j != keep && pinned[j] >= 0) UnpinLocked(pinned[j]);
    }
  };
  std::array<IoRequest, kMaxAcquireAny * kMaxBlockParts> requests;
  const auto start = std::chrono::steady_clock::now();
  bool waited = false;
  for (;;) {
    bool any_loading = false, any_unpinned_load = false;
    size_t n_requests = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (pinned[i] < 0) {
        CheckId(ids[i]);
        int s = slot_of_[ids[i]];
        if (s < 0) {
          SizeClass& c = ClassOf(ids[i]);
          s = AllocateSlotLocked(c);
          if (s < 0) {  // no room now; retried after the next completion
            any_unpinned_load = any_unpinned_load || UnpinnedLoadExistsLocked(c);
            continue;
          }
          n_requests += PrepareLoadLocked(s, ids[i], &requests[n_requests]);
          ++counters_.prefetch_reads;
        }
        PinLocked(s);
        pinned[i] = s;
      }
      Slot& slot = slots_[pinned[i]];
      if (slot.busy()) {
        any_loading = true;
        continue;
      }
      if (n_requests > 0) {  // loads prepared in this pass must go out even if we return
        lock.unlock();
        SubmitLoads(std::span<const IoRequest>(requests.data(), n_requests));
        lock.lock();
      }
      unpin_all_but(i);
      ClassOf(ids[i]).policy->Touch(static_cast<int>(slot.key));
      CountUseLocked(slot);
      if (waited) AddWaitLocked(start);
      *index = static_cast<int>(i);
      return TakeLocked(lock, pinned[i]);
    }
    if (n_requests > 0) {
      lock.unlock();
      SubmitLoads(std::span<const IoRequest>(requests.data(), n_requests));
      lock.lock();
      continue;  // a submit failure may have settled a candidate
    }
    if (!any_loading && !any_unpinned_load) {
      unpin_all_but(ids.size());
      *index = 0;
      return AllPinnedError(ids[0]);
    }
    waited = true;
    cv_.wait(lock);
  }
}

void WeightCacheImpl::Release(WeightRef& ref) {
  CHECK(ref.valid()) << "Release of an invalid WeightRef";
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int s = ref.slot_;
    const Slot& slot = slots_[s];
    CHECK(slot.state == Slot::kReady && slot.pins > 0 && slot.key == ref.id())
        << "Release of block " << ref.id() << " not held in slot " << s;
    UnpinLocked(s);
  }
  ref = WeightRef();
}

WeightCacheCounters WeightCacheImpl::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  WeightCacheCounters c = counters_;
  // The busy stretch still running counts up to now.
  if (c.reads_in_flight > 0) c.busy_ns += BusyStretchNsLocked();
  return c;
}

void WeightCacheImpl::WaitIdle() const {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return counters_.reads_in_flight == 0; });
}

uint64_t WeightCacheImpl::reads_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_.reads_in_flight;
}

void WeightCacheImpl::ResetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t in_flight = counters_.reads_in_flight;
  counters_ = WeightCacheCounters();
  counters_.reads_in_flight = in_flight;
  busy_since_ = std::chrono::steady_clock::now();  // a running busy stretch counts from here
}

void WeightCacheImpl::Drop(std::span<const uint32_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t id : ids) {
    CheckId(id);
    const int s = slot_of_[id];
    if (s < 0) continue;
    Slot& slot = slots_[s];
    if (!slot.unclaimed || slot.pins > 0) continue;
    if (slot.busy()) {
      slot.dropped = true;  // ParkLocked frees it when its reads are in
      continue;
    }
    classes_[slot_class_[s]].unused.Erase(s);
    ++counters_.prefetch_wasted;
    FreeSlotLocked(s);
  }
  cv_.notify_all();  // a waiting Acquire may use the freed slots
}

bool WeightCacheImpl::Contains(uint32_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  CheckId(id);
  return slot_of_[id] >= 0;
}

void WeightCacheImpl::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
    Slot& slot = slots_[s];
    if (slot.pins > 0 || slot.state == Slot::kFree || slot.busy()) continue;
    SizeClass& c = classes_[slot_class_[s]];
    if (c.unused.Contains(s)) {
      c.unused.Erase(s);
    } else if (!slot.kept) {
      c.policy->Remove(s);
    }
    FreeSlotLocked(s);
  }
}

WeightCacheCounters WeightCacheCounters::operator-(const WeightCacheCounters& before) const {
  // Every field but reads_in_flight (a level, not a count).
  static constexpr uint64_t WeightCacheCounters::*kCounts[] = {
      &WeightCacheCounters::hits,
      &WeightCacheCounters::misses,
      &WeightCacheCounters::bytes_read,
      &WeightCacheCounters::reads_completed,
      &WeightCacheCounters::io_wait_ns,
      &WeightCacheCounters::busy_ns,
      &WeightCacheCounters::checksum_failures,
      &WeightCacheCounters::read_errors,
      &WeightCacheCounters::prefetch_reads,
      &WeightCacheCounters::prefetch_skipped,
      &WeightCacheCounters::prefetch_wasted,
      &WeightCacheCounters::evictions};
  static_assert(
      sizeof(kCounts) / sizeof(kCounts[0]) + 1 == sizeof(WeightCacheCounters) / sizeof(uint64_t),
      "a counter added to WeightCacheCounters must be listed here");
  WeightCacheCounters d = *this;
  for (auto field : kCounts) d.*field -= before.*field;
  return d;
}

Result<std::unique_ptr<WeightCache>> WeightCache::Create(const WeightBlockTable& table,
                                                         IoBackend* io,
                                                         const WeightCacheOptions& options) {
  CHECK(io != nullptr);
  auto cache = std::make_unique<WeightCacheImpl>(table, io, options);
  RETURN_IF_ERROR(cache->Init());
  return std::unique_ptr<WeightCache>(std::move(cache));
}

}  // namespace sluice
