// ExpertCache's operations (Prefetch, Acquire, AcquireAny, Release, Clear). The slot states, the
// two evictable sets and the locking rules are described in io/expert_cache_impl.h.
#include <array>

#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "io/expert_cache_impl.h"

namespace sluice {

void ExpertCacheImpl::Prefetch(int layer, std::span<const int> experts) {
  // Batches: prepared under the lock, submitted after it with one io_uring_enter each.
  std::array<IoRequest, kPrefetchBatch * 3> requests;
  for (size_t begin = 0; begin < experts.size(); begin += kPrefetchBatch) {
    size_t n = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = begin; i < std::min(experts.size(), begin + kPrefetchBatch); ++i) {
        const int key = Key(layer, experts[i]);
        if (slot_of_[key] >= 0) continue;  // resident, loading or failed: nothing to start
        const int s = AllocateSlotLocked();
        if (s < 0) {
          ++counters_.prefetch_skipped;
          continue;
        }
        n += PrepareLoadLocked(s, layer, experts[i], key, &requests[n]);
        ++counters_.prefetch_reads;
      }
    }
    SubmitLoads(std::span<const IoRequest>(requests.data(), n));
  }
}

bool ExpertCacheImpl::UnpinnedLoadExistsLocked() const {
  for (const Slot& slot : slots_) {
    if (slot.busy() && slot.pins == 0) return true;
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

Result<ExpertRef> ExpertCacheImpl::TakeLocked(std::unique_lock<std::mutex>& lock, int s) {
  Slot& slot = slots_[s];
  if (slot.state == Slot::kLoaded) {
    slot.state = Slot::kVerifying;  // later users of this expert wait for the verdict
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
  IoRequest requests[3];
  int n_requests = 0;
  int s = slot_of_[key];
  while (s < 0) {
    s = AllocateSlotLocked();
    if (s >= 0) {
      n_requests = PrepareLoadLocked(s, layer, expert, key, requests);
      break;
    }
    if (!UnpinnedLoadExistsLocked()) return AllPinnedError(layer, expert);
    cv_.wait(lock);  // an unpinned load will finish and become evictable
    s = slot_of_[key];
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
  std::array<IoRequest, kMaxAcquireAny * 3> requests;
  const auto start = std::chrono::steady_clock::now();
  bool waited = false;
  for (;;) {
    bool any_loading = false;
    size_t n_requests = 0;
    for (size_t i = 0; i < experts.size(); ++i) {
      if (pinned[i] < 0) {
        const int key = Key(layer, experts[i]);
        int s = slot_of_[key];
        if (s < 0) {
          s = AllocateSlotLocked();
          if (s < 0) continue;  // no room now; retried after the next completion
          n_requests += PrepareLoadLocked(s, layer, experts[i], key, &requests[n_requests]);
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
      policy_->Touch(slot.key);
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

ExpertCacheCounters ExpertCacheImpl::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  ExpertCacheCounters c = counters_;
  // The busy stretch still running counts up to now.
  if (c.reads_in_flight > 0) c.busy_ns += BusyStretchNsLocked();
  return c;
}

uint64_t ExpertCacheImpl::reads_in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_.reads_in_flight;
}

void ExpertCacheImpl::ResetCounters() {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t in_flight = counters_.reads_in_flight;
  counters_ = ExpertCacheCounters();
  counters_.reads_in_flight = in_flight;
  busy_since_ = std::chrono::steady_clock::now();  // a running busy stretch counts from here
}

void ExpertCacheImpl::Drop(int layer, std::span<const int> experts) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int expert : experts) {
    const int s = slot_of_[Key(layer, expert)];
    if (s < 0) continue;
    Slot& slot = slots_[s];
    if (!slot.unclaimed || slot.pins > 0) continue;
    if (slot.busy()) {
      slot.dropped = true;  // ParkLocked frees it when its reads are in
      continue;
    }
    unused_.Erase(s);
    ++counters_.prefetch_wasted;
    FreeSlotLocked(s);
  }
  cv_.notify_all();  // a waiting Acquire may use the freed slots
}

bool ExpertCacheImpl::Contains(int layer, int expert) const {
  std::lock_guard<std::mutex> lock(mu_);
  return slot_of_[Key(layer, expert)] >= 0;
}

void ExpertCacheImpl::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
    Slot& slot = slots_[s];
    if (slot.pins > 0 || slot.state == Slot::kFree || slot.busy()) continue;
    if (unused_.Contains(s)) {
      unused_.Erase(s);
    } else {
      policy_->Remove(s);
    }
    FreeSlotLocked(s);
  }
}

Result<std::unique_ptr<ExpertCache>> ExpertCache::Create(const ModelFile& model, IoBackend* io,
                                                         const ExpertCacheOptions& options) {
  CHECK(io != nullptr);
  auto cache = std::make_unique<ExpertCacheImpl>(model, io, options);
  RETURN_IF_ERROR(cache->Init());
  return std::unique_ptr<ExpertCache>(std::move(cache));
}

}  // namespace sluice
