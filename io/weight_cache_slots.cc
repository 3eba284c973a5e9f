// WeightCache internals: Init (size classes, slot sizing and allocation), slot bookkeeping
// (allocate, pin, park, free), preparing and submitting loads, and the completion thread that
// publishes them. See io/weight_cache_impl.h for the states and the locking rules.
#include <algorithm>
#include <cstdio>
#include <limits>

#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/base/log.h"
#include "core/base/str_cat.h"
#include "io/weight_cache_impl.h"
#include "io/xxh3.h"

namespace sluice {
namespace {

// Blocks whose slot sizes are within this fraction of a class's largest share its slots, and so
// do sizes that differ only by read alignment (up to two pages per read): one tensor sliced at
// different offsets, like slices of one GGUF tensor, stays one class however small it is.
constexpr double kClassSpread = 0.8;
constexpr uint64_t kAlignmentSlack = 2 * kIoAlignment * kMaxBlockParts;
// Size classes one cache may have (class_of_ is a byte).
constexpr size_t kMaxClasses = 255;
// Blocks one table may have (slot_of_ and the policies index by block).
constexpr uint32_t kMaxBlocks = 1u << 30;

}  // namespace

Status WeightCacheImpl::PlanClasses(std::vector<uint64_t>* block_slot_bytes) {
  const uint32_t n = table_.n_blocks();
  if (n == 0) return InvalidArgument("weight cache: the model has no streamed weight blocks");
  if (n > kMaxBlocks) return InvalidArgument("weight cache: too many blocks: ", n);
  block_slot_bytes->resize(n);
  std::vector<uint64_t> data_bytes(n);
  for (uint32_t id = 0; id < n; ++id) {
    Result<BlockReadPlan> plan = PlanBlockRead(table_.Locate(id));
    if (!plan.ok()) {
      const WeightBlock b = table_.Locate(id);
      const std::string& path =
          b.n_parts > 0 && b.parts[0].file_index >= 0 &&
                  static_cast<size_t>(b.parts[0].file_index) < table_.file_paths().size()
              ? table_.file_paths()[b.parts[0].file_index]
              : std::string("(no file)");
      return Status(plan.status().code(),
                    StrCat(path, ": ", table_.Describe(id), ": ", plan.status().message()));
    }
    (*block_slot_bytes)[id] = plan->slot_bytes;
    data_bytes[id] = plan->data_bytes;
  }
  // Classes, largest first: a class takes every size down to kClassSpread of its largest.
  std::vector<uint64_t> sizes(*block_slot_bytes);
  std::sort(sizes.begin(), sizes.end(), std::greater<>());
  sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
  std::vector<uint64_t> class_top;  // slot bytes of each class, descending
  for (uint64_t s : sizes) {
    if (class_top.empty() || (static_cast<double>(s) < kClassSpread * class_top.back() &&
                              class_top.back() - s > kAlignmentSlack)) {
      if (class_top.size() == kMaxClasses) break;  // the last class takes the rest
      class_top.push_back(s);
    }
  }
  classes_.resize(class_top.size());
  for (size_t c = 0; c < class_top.size(); ++c) classes_[c].slot_bytes = class_top[c];
  max_slot_bytes_ = class_top.front();
  class_of_.resize(n);
  uint64_t data_total = 0, slot_total = 0;
  for (uint32_t id = 0; id < n; ++id) {
    // The smallest class whose slots hold the block (class_top is descending).
    size_t c = class_top.size() - 1;
    while (class_top[c] < (*block_slot_bytes)[id]) --c;
    class_of_[id] = static_cast<uint8_t>(c);
    classes_[c].n_blocks += 1;
    classes_[c].block_bytes += data_bytes[id];
    data_total += data_bytes[id];
    slot_total += class_top[c];
  }
  padding_fraction_ = 1.0 - static_cast<double>(data_total) / static_cast<double>(slot_total);
  return Status::Ok();
}

Status WeightCacheImpl::SizeClasses() {
  // Minimum first: min_resident_blocks slots per class (or all of its blocks).
  const uint64_t want = static_cast<uint64_t>(std::max(options_.min_resident_blocks, 1));
  uint64_t min_bytes = 0, rest_weight = 0;
  std::vector<uint64_t> count(classes_.size());
  for (size_t c = 0; c < classes_.size(); ++c) {
    count[c] = std::min<uint64_t>(want, classes_[c].n_blocks);
    min_bytes += count[c] * classes_[c].slot_bytes;
    rest_weight += (classes_[c].n_blocks - count[c]) * classes_[c].slot_bytes;
  }
  if (options_.min_resident_blocks < 1 || options_.budget_bytes < min_bytes) {
    return ResourceExhausted(
        "weight cache budget ", FormatBytes(options_.budget_bytes), " (", options_.budget_bytes,
        " bytes) is below the minimum of ", FormatBytes(min_bytes), " (", min_bytes,
        " bytes): ", options_.min_resident_blocks, " blocks used at once x ", max_slot_bytes_,
        " bytes per slot (the largest block of ", table_.file_paths().front(),
        ", aligned to 4 KiB)",
        classes_.size() > 1 ? StrCat(", over ", classes_.size(), " size classes") : std::string());
  }
  // The rest of the budget in proportion to the bytes each class's remaining blocks occupy
  // (with one class: budget / slot bytes slots, never more than there are blocks).
  const uint64_t rest = options_.budget_bytes - min_bytes;
  for (size_t c = 0; c < classes_.size(); ++c) {
    const uint64_t class_rest = (classes_[c].n_blocks - count[c]) * classes_[c].slot_bytes;
    uint64_t share =
        rest_weight == 0
            ? 0
            : static_cast<uint64_t>(static_cast<long double>(rest) * class_rest / rest_weight);
    count[c] += std::min<uint64_t>(share / classes_[c].slot_bytes, classes_[c].n_blocks - count[c]);
  }
  uint64_t total = 0, n_slots = 0;
  for (size_t c = 0; c < classes_.size(); ++c) {
    total += count[c] * classes_[c].slot_bytes;
    n_slots += count[c];
  }
  if (n_slots > static_cast<uint64_t>(std::numeric_limits<int>::max() / 2)) {
    return ResourceExhausted("weight cache: ", n_slots, " slots are more than supported");
  }
  memory_ = ReadBuffers(total, /*numa_local=*/true, options_.lock_memory);
  if (memory_.data() == nullptr) {
    return ResourceExhausted("weight cache: cannot allocate ", FormatBytes(total), " for ", n_slots,
                             " slots");
  }
  if (options_.lock_memory && !memory_.locked()) {
    LOG(WARNING) << "weight cache: mlock of " << FormatBytes(memory_.size())
                 << " failed (raise `ulimit -l`); the slots may be swapped out";
  }
  slots_.resize(n_slots);
  slot_offset_.resize(n_slots);
  slot_class_.resize(n_slots);
  const double half_life = options_.lfu_half_life > 0 ? options_.lfu_half_life : 4.0 * n_slots;
  uint64_t offset = 0;
  int first = 0;
  for (size_t c = 0; c < classes_.size(); ++c) {
    SizeClass& k = classes_[c];
    k.first_slot = first;
    k.slot_count = static_cast<int>(count[c]);
    for (int s = first + k.slot_count - 1; s >= first; --s) k.free_slots.push_back(s);
    for (int s = first; s < first + k.slot_count; ++s) {
      slot_offset_[s] = offset;
      slot_class_[s] = static_cast<int>(c);
      offset += k.slot_bytes;
    }
    first += k.slot_count;
    k.policy = MakeEvictionPolicy(options_.policy, static_cast<int>(n_slots),
                                  static_cast<int>(table_.n_blocks()), half_life);
    k.unused = SlotList(static_cast<int>(n_slots));
  }
  return Status::Ok();
}

Status WeightCacheImpl::Init() {
  std::vector<uint64_t> block_slot_bytes;
  RETURN_IF_ERROR(PlanClasses(&block_slot_bytes));
  RETURN_IF_ERROR(SizeClasses());
  const uint32_t n = table_.n_blocks();
  slot_of_.assign(n, -1);
  keep_.assign(n, 0);
  if (!options_.schedule.empty()) {
    // Ordered mode: keep the blocks first in the schedule, stream_slots per class left over.
    std::vector<int> room(classes_.size());
    for (size_t c = 0; c < classes_.size(); ++c) {
      room[c] = std::max(0, classes_[c].slot_count - std::max(options_.stream_slots, 1));
      if (classes_[c].slot_count >= static_cast<int>(classes_[c].n_blocks)) {
        room[c] = classes_[c].slot_count;  // everything fits: keep it all
      }
    }
    for (uint32_t id : options_.schedule) {
      if (id >= n) {
        return InvalidArgument("weight cache: schedule names block ", id, " of ", n);
      }
      if (keep_[id] || room[class_of_[id]] == 0) continue;
      keep_[id] = 1;
      --room[class_of_[id]];
    }
  }
  std::vector<iovec> iov(slots_.size());
  for (size_t s = 0; s < slots_.size(); ++s) {
    iov[s] = {slot_data(static_cast<int>(s)), classes_[slot_class_[s]].slot_bytes};
  }
  io_->RegisterBuffers(iov);
  completion_thread_ = std::thread([this] { CompletionLoop(); });
  LOG(DEBUG) << "weight cache: " << slots_.size() << " slots in " << classes_.size()
             << " size classes (largest " << FormatBytes(max_slot_bytes_) << ", "
             << FormatBytes(memory_.size()) << ", padding " << padding_fraction_ * 100 << "%) over "
             << io_->Describe();
  return Status::Ok();
}

WeightCacheImpl::~WeightCacheImpl() {
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

void WeightCacheImpl::CheckId(uint32_t id) const {
  CHECK(id < slot_of_.size()) << "weight block " << id << " of " << slot_of_.size();
}

int WeightCacheImpl::AllocateSlotLocked(SizeClass& c) {
  if (!c.free_slots.empty()) {
    int s = c.free_slots.back();
    c.free_slots.pop_back();
    return s;
  }
  int victim = c.policy->Victim();
  if (victim >= 0) {
    c.policy->Remove(victim);
  } else {
    victim = c.unused.head();
    if (victim < 0) return -1;
    c.unused.Erase(victim);
    ++counters_.prefetch_wasted;
  }
  DCHECK(slots_[victim].pins == 0 && !slots_[victim].busy());
  slot_of_[slots_[victim].key] = -1;
  ++counters_.evictions;
  return victim;
}

void WeightCacheImpl::PinLocked(int s) {
  Slot& slot = slots_[s];
  slot.dropped = false;  // wanted after all
  if (slot.pins++ > 0 || slot.busy()) return;
  SizeClass& c = classes_[slot_class_[s]];
  if (c.unused.Contains(s)) {
    c.unused.Erase(s);
  } else if (!slot.kept) {
    DCHECK(slot.state == Slot::kReady);  // used slots are verified before their first use
    c.policy->Remove(s);
  }
}

void WeightCacheImpl::UnpinLocked(int s) {
  Slot& slot = slots_[s];
  if (--slot.pins > 0 || slot.busy()) return;
  ParkLocked(s);
}

void WeightCacheImpl::ParkLocked(int s) {
  Slot& slot = slots_[s];
  SizeClass& c = classes_[slot_class_[s]];
  if (slot.unclaimed && slot.dropped) {
    ++counters_.prefetch_wasted;
    FreeSlotLocked(s);
  } else if (slot.unclaimed) {
    c.unused.PushBack(s);
  } else if (slot.state == Slot::kReady) {
    if (!slot.kept) c.policy->Add(s, static_cast<int>(slot.key));
  } else {
    FreeSlotLocked(s);
  }
  cv_.notify_all();  // an Acquire may be waiting for an evictable slot
}

void WeightCacheImpl::FreeSlotLocked(int s) {
  Slot& slot = slots_[s];
  slot_of_[slot.key] = -1;
  slot = Slot();
  classes_[slot_class_[s]].free_slots.push_back(s);
}

int WeightCacheImpl::PrepareLoadLocked(int s, uint32_t id, IoRequest* out) {
  Slot& slot = slots_[s];
  slot = Slot();
  Result<BlockReadPlan> plan = PlanBlockRead(table_.Locate(id));
  CHECK(plan.ok()) << "validated in Init: " << plan.status().ToString();
  DCHECK(plan->slot_bytes <= classes_[slot_class_[s]].slot_bytes);
  slot.plan = *plan;
  slot.state = Slot::kLoading;
  slot.key = id;
  slot.kept = keep_[id] != 0;
  slot.unclaimed = true;
  slot.reads_left = slot.plan.n_reads;
  slot_of_[id] = s;
  uint8_t* base = slot_data(s);
  for (int r = 0; r < slot.plan.n_reads; ++r) {
    const BlockRead& read = slot.plan.reads[r];
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

std::string WeightCacheImpl::Where(const Slot& slot) const {
  return StrCat(table_.file_paths()[slot.plan.reads[0].file_index], ": ",
                table_.Describe(static_cast<uint32_t>(slot.key)));
}

void WeightCacheImpl::SubmitLoads(std::span<const IoRequest> requests) {
  if (requests.empty()) return;
  Status st = io_->Submit(requests);  // all or none
  if (st.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  counters_.reads_in_flight -= requests.size();
  EndBusyLocked();
  for (size_t i = 0; i < requests.size(); ++i) {
    const int s = static_cast<int>(requests[i].tag / kReadsPerTag);
    if (i > 0 && requests[i - 1].tag / kReadsPerTag == requests[i].tag / kReadsPerTag) continue;
    FailLoadLocked(s, Status(st.code(), StrCat(Where(slots_[s]), ": ", st.message())));
  }
}

void WeightCacheImpl::FailLoadLocked(int s, Status error) {
  Slot& slot = slots_[s];
  ++counters_.read_errors;
  LOG(WARNING) << error.ToString();
  slot.state = Slot::kFailed;
  slot.error = std::move(error);
  if (slot.pins == 0) ParkLocked(s);
  cv_.notify_all();
}

WeightRef WeightCacheImpl::RefFor(int s) {
  const Slot& slot = slots_[s];
  const uint8_t* base = slot_data(s);
  WeightRef r;
  r.id_ = static_cast<uint32_t>(slot.key);
  r.slot_ = s;
  for (int i = 0; i < kMaxBlockParts; ++i) r.part_[i] = base + slot.plan.part_slot_offset[i];
  return r;
}

void WeightCacheImpl::StartBusyLocked() {
  if (counters_.reads_in_flight == 0) busy_since_ = std::chrono::steady_clock::now();
}

uint64_t WeightCacheImpl::BusyStretchNsLocked() const { return NsSince(busy_since_); }

void WeightCacheImpl::EndBusyLocked() {
  if (counters_.reads_in_flight == 0) counters_.busy_ns += BusyStretchNsLocked();
}

void WeightCacheImpl::CompletionLoop() {
  IoCompletion done[64];
  for (;;) {
    const size_t n = io_->Reap(done, 1);
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < n; ++i) {
      const int s = static_cast<int>(done[i].tag / kReadsPerTag);
      const int r = static_cast<int>(done[i].tag % kReadsPerTag);
      Slot& slot = slots_[s];
      const BlockRead& read = slot.plan.reads[r];
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

void WeightCacheImpl::FinishLoadLocked(int s) {
  Slot& slot = slots_[s];
  if (slot.read_error != 0) {
    FailLoadLocked(s, IoError(table_.file_paths()[slot.plan.reads[0].file_index], ": reading ",
                              table_.Describe(static_cast<uint32_t>(slot.key)), " at offset ",
                              slot.short_offset, " failed: ", IoErrorText(slot.read_error)));
    return;
  }
  if (slot.short_needed != 0) {
    FailLoadLocked(s,
                   Corrupt(Where(slot), " at offset ", slot.short_offset, ": the file ended after ",
                           slot.short_got, " of ", slot.short_needed, " bytes (truncated?)"));
    return;
  }
  const bool verify = slot.plan.has_checksum && options_.verify_checksums;
  slot.state = verify ? Slot::kLoaded : Slot::kReady;
  // Unpinned means nobody has claimed it yet (Acquire pins before it waits): it waits in unused.
  if (slot.pins == 0) ParkLocked(s);
  cv_.notify_all();
}

Status WeightCacheImpl::VerifyUnlocked(int s) {
  const Slot& slot = slots_[s];  // kVerifying and pinned: its bytes and plan are ours
  const uint8_t* bytes = slot_data(s) + slot.plan.hash_slot_offset;
  const uint64_t found = Xxh3_64(bytes, slot.plan.hash_bytes);
  if (found == slot.plan.xxh3) return Status::Ok();
  return Corrupt(Where(slot), " at offset ", slot.plan.reads[0].offset + slot.plan.hash_slot_offset,
                 " (", slot.plan.hash_bytes, " bytes): xxh3 expected ", Hex64(slot.plan.xxh3),
                 ", found ", Hex64(found), "; the bytes were not used");
}

}  // namespace sluice
