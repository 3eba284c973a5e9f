// ExpertCache internals: Init (slot sizing and allocation), slot bookkeeping (allocate, pin,
// park, free), preparing and submitting loads, and the completion thread that verifies and
// publishes them. See io/expert_cache_impl.h for the states and the locking rules.
#include <xxhash.h>

#include <cstdio>

#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "core/base/str_cat.h"
#include "io/expert_cache_impl.h"
#include "io/xxh3.h"

namespace sluice {
namespace {

Result<int> BlockCount(const ModelFile& model) {
  const Metadata& m = model.metadata();
  ASSIGN_OR_RETURN(std::string arch, m.GetString("general.architecture"));
  ASSIGN_OR_RETURN(uint64_t n, m.GetUint(arch + ".block_count"));
  if (n == 0 || n > 100000) {
    return Corrupt(model.path(), ": ", arch, ".block_count = ", n, " (expected 1..100000)");
  }
  return static_cast<int>(n);
}

}  // namespace

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
  memory_ = ReadBuffers(count * slot_bytes_, /*numa_local=*/true, options_.lock_memory);
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
  for (uint64_t s = 0; s < count; ++s) iov[s] = {slot_data(static_cast<int>(s)), slot_bytes_};
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
  DCHECK(slots_[victim].pins == 0 && !slots_[victim].busy());
  slot_of_[slots_[victim].key] = -1;
  ++counters_.evictions;
  return victim;
}

void ExpertCacheImpl::PinLocked(int s) {
  Slot& slot = slots_[s];
  slot.dropped = false;  // wanted after all
  if (slot.pins++ > 0 || slot.busy()) return;
  if (unused_.Contains(s)) {
    unused_.Erase(s);
  } else {
    DCHECK(slot.state == Slot::kReady);  // used slots are verified before their first use
    policy_->Remove(s);
  }
}

void ExpertCacheImpl::UnpinLocked(int s) {
  Slot& slot = slots_[s];
  if (--slot.pins > 0 || slot.busy()) return;
  ParkLocked(s);
}

void ExpertCacheImpl::ParkLocked(int s) {
  Slot& slot = slots_[s];
  if (slot.unclaimed && slot.dropped) {
    ++counters_.prefetch_wasted;
    FreeSlotLocked(s);
  } else if (slot.unclaimed) {
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

int ExpertCacheImpl::PrepareLoadLocked(int s, int layer, int expert, int key, IoRequest* out) {
  Slot& slot = slots_[s];
  slot = Slot();
  Result<ExpertReadPlan> plan = PlanExpertRead(model_.LocateExpert(layer, expert));
  CHECK(plan.ok()) << "validated in Init: " << plan.status().ToString();
  slot.plan = *plan;
  slot.state = Slot::kLoading;
  slot.layer = layer;
  slot.expert = expert;
  slot.key = key;
  slot.unclaimed = true;
  slot.reads_left = slot.plan.n_reads;
  slot_of_[key] = s;
  uint8_t* base = slot_data(s);
  for (int r = 0; r < slot.plan.n_reads; ++r) {
    const ExpertRead& read = slot.plan.reads[r];
    out[r] = {.file_index = read.file_index,
              .offset = read.offset,
              .length = read.length,
              .dest = base + read.slot_offset,
              .buffer_index = s,
              .tag = static_cast<uint64_t>(s) * kReadsPerTag + r};
  }
  StartBusyLocked();
  counters_.reads_in_flight += slot.plan.n_reads;
  return slot.plan.n_reads;
}

void ExpertCacheImpl::SubmitLoads(std::span<const IoRequest> requests) {
  if (requests.empty()) return;
  Status st = io_->Submit(requests);  // all or none
  if (st.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  counters_.reads_in_flight -= requests.size();
  EndBusyLocked();
  for (size_t i = 0; i < requests.size(); ++i) {
    const int s = static_cast<int>(requests[i].tag / kReadsPerTag);
    if (i > 0 && requests[i - 1].tag / kReadsPerTag == requests[i].tag / kReadsPerTag) continue;
    const Slot& slot = slots_[s];
    FailLoadLocked(s, Status(st.code(), StrCat(model_.path(), ": expert (layer ", slot.layer,
                                               ", expert ", slot.expert, "): ", st.message())));
  }
}

void ExpertCacheImpl::FailLoadLocked(int s, Status error) {
  Slot& slot = slots_[s];
  ++counters_.read_errors;
  LOG(WARNING) << error.ToString();
  slot.state = Slot::kFailed;
  slot.error = std::move(error);
  if (slot.pins == 0) ParkLocked(s);
  cv_.notify_all();
}

ExpertRef ExpertCacheImpl::RefFor(int s) {
  const Slot& slot = slots_[s];
  const uint8_t* base = slot_data(s);
  const uint8_t* m[3];
  for (int i = 0; i < 3; ++i) m[i] = base + slot.plan.matrix_slot_offset[i];
  return MakeRef(slot.layer, slot.expert, s, m);
}

void ExpertCacheImpl::StartBusyLocked() {
  if (counters_.reads_in_flight == 0) busy_since_ = std::chrono::steady_clock::now();
}

uint64_t ExpertCacheImpl::BusyStretchNsLocked() const {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now() - busy_since_)
                                   .count());
}

void ExpertCacheImpl::EndBusyLocked() {
  if (counters_.reads_in_flight == 0) counters_.busy_ns += BusyStretchNsLocked();
}

void ExpertCacheImpl::CompletionLoop() {
  IoCompletion done[64];
  for (;;) {
    const size_t n = io_->Reap(done, 1);
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < n; ++i) {
      const int s = static_cast<int>(done[i].tag / kReadsPerTag);
      const int r = static_cast<int>(done[i].tag % kReadsPerTag);
      Slot& slot = slots_[s];
      const ExpertRead& read = slot.plan.reads[r];
      counters_.bytes_read += done[i].bytes;
      ++counters_.reads_completed;
      --counters_.reads_in_flight;
      EndBusyLocked();
      if (done[i].error != 0 && slot.read_error == 0) {
        slot.read_error = done[i].error;
        slot.short_offset = read.offset;
      } else if (done[i].error == 0 && done[i].bytes < read.needed && slot.short_needed == 0) {
        slot.short_got = done[i].bytes;
        slot.short_needed = read.needed;
        slot.short_offset = read.offset;
      }
      if (--slot.reads_left == 0) FinishLoadLocked(s);
    }
    if (stopping_ && counters_.reads_in_flight == 0) return;
  }
}

void ExpertCacheImpl::FinishLoadLocked(int s) {
  Slot& slot = slots_[s];
  const std::string& path = model_.file_paths()[slot.plan.reads[0].file_index];
  if (slot.read_error != 0) {
    FailLoadLocked(
        s, IoError(path, ": reading expert (layer ", slot.layer, ", expert ", slot.expert,
                   ") at offset ", slot.short_offset, " failed: ", IoErrorText(slot.read_error)));
    return;
  }
  if (slot.short_needed != 0) {
    FailLoadLocked(s, Corrupt(path, ": expert (layer ", slot.layer, ", expert ", slot.expert,
                              ") at offset ", slot.short_offset, ": the file ended after ",
                              slot.short_got, " of ", slot.short_needed, " bytes (truncated?)"));
    return;
  }
  const bool verify = slot.plan.has_checksum && options_.verify_checksums;
  slot.state = verify ? Slot::kLoaded : Slot::kReady;
  // Unpinned means nobody has claimed it yet (Acquire pins before it waits): it waits in unused_.
  if (slot.pins == 0) ParkLocked(s);
  cv_.notify_all();
}

Status ExpertCacheImpl::VerifyUnlocked(int s) {
  const Slot& slot = slots_[s];  // kVerifying and pinned: its bytes and plan are ours
  const uint8_t* bytes = slot_data(s) + slot.plan.hash_slot_offset;
  const uint64_t found = Xxh3_64(bytes, slot.plan.hash_bytes);
  if (found == slot.plan.xxh3) return Status::Ok();
  const std::string& path = model_.file_paths()[slot.plan.reads[0].file_index];
  return Corrupt(path, ": expert (layer ", slot.layer, ", expert ", slot.expert, ") at offset ",
                 slot.plan.reads[0].offset + slot.plan.hash_slot_offset, " (", slot.plan.hash_bytes,
                 " bytes): xxh3 expected ", Hex64(slot.plan.xxh3), ", found ", Hex64(found),
                 "; the bytes were not used");
}

}  // namespace sluice
