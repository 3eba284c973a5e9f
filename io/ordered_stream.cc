#include "io/ordered_stream.h"

#include <sys/mman.h>

#include <algorithm>

#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/base/log.h"
#include "core/base/str_cat.h"
#include "io/xxh3.h"

namespace sluice {
namespace {

// Tags: a streamed use's seq, or a resident block's id with this bit, times kMaxBlockParts plus
// the read's index.
constexpr uint64_t kResidentTag = 1ull << 59;  // (tag base) * kMaxBlockParts fits 64 bits
// io_uring registers buffers of at most 1 GiB each.
constexpr uint64_t kRegisterChunk = 1ull << 30;

}  // namespace

Result<uint64_t> OrderedStream::BlockBytes(const WeightBlockTable& table, uint32_t id) {
  CHECK(id < table.n_blocks()) << id;
  Result<BlockReadPlan> plan = PlanBlockRead(table.Locate(id));
  if (!plan.ok()) {
    return Status(plan.status().code(), StrCat(table.Describe(id), ": ", plan.status().message()));
  }
  return plan->slot_bytes;
}

Result<uint64_t> OrderedStream::MinRingBytes(const WeightBlockTable& table,
                                             std::span<const uint32_t> resident) {
  std::vector<uint8_t> kept(table.n_blocks(), 0);
  for (uint32_t id : resident) {
    CHECK(id < table.n_blocks()) << id;
    kept[id] = 1;
  }
  uint64_t largest = 0;
  for (uint32_t id = 0; id < table.n_blocks(); ++id) {
    if (kept[id]) continue;
    ASSIGN_OR_RETURN(uint64_t bytes, BlockBytes(table, id));
    largest = std::max(largest, bytes);
  }
  return kRingBlocks * largest;
}

Result<std::unique_ptr<OrderedStream>> OrderedStream::Create(const WeightBlockTable& table,
                                                             IoBackend* io,
                                                             const OrderedStreamOptions& options) {
  std::unique_ptr<OrderedStream> s(new OrderedStream(table, io, options));
  RETURN_IF_ERROR(s->Init());
  return s;
}

Status OrderedStream::Init() {
  const uint32_t n = table_.n_blocks();
  plans_.resize(n);
  for (uint32_t id = 0; id < n; ++id) {
    Result<BlockReadPlan> plan = PlanBlockRead(table_.Locate(id));
    if (!plan.ok()) {
      return Status(plan.status().code(), StrCat(Where(id), ": ", plan.status().message()));
    }
    plans_[id] = *plan;
  }
  resident_index_.assign(n, -1);
  for (uint32_t id : options_.resident) {
    if (id >= n) return InvalidArgument("ordered stream: resident block ", id, " of ", n);
    if (resident_index_[id] >= 0) continue;
    resident_index_[id] = static_cast<int32_t>(residents_.size());
    Resident r;
    r.offset = arena_bytes_;
    arena_bytes_ += plans_[id].slot_bytes;
    residents_.push_back(std::move(r));
  }
  ASSIGN_OR_RETURN(uint64_t min_ring, MinRingBytes(table_, options_.resident));
  ring_bytes_ = options_.ring_bytes / kIoAlignment * kIoAlignment;
  if (ring_bytes_ < min_ring) {
    return ResourceExhausted("streaming ring of ", FormatBytes(options_.ring_bytes),
                             " is below the minimum of ", FormatBytes(min_ring), " (", min_ring,
                             " bytes: three times the largest streamed block)");
  }
  if (placed()) {
    const std::vector<uint64_t>& bases = options_.placed_file_bases;
    if (bases.empty() ? table_.file_paths().size() != 1
                      : bases.size() != table_.file_paths().size()) {
      return InvalidArgument("ordered stream: placed mode has ", std::max<size_t>(1, bases.size()),
                             " file base(s), the table has ", table_.file_paths().size(), " files");
    }
    for (uint64_t b : bases) {
      if (b % kIoAlignment != 0) {
        return InvalidArgument("ordered stream: placed file base ", b, " is not page aligned");
      }
    }
    if (reinterpret_cast<uintptr_t>(options_.placed_base) % kIoAlignment != 0) {
      return InvalidArgument("ordered stream: placed base is not page aligned");
    }
    live_uses_.assign(n, 0);
  }
  const uint64_t total = placed() ? 0 : arena_bytes_ + ring_bytes_;
  if (total > 0) {
    memory_ = ReadBuffers(total, /*numa_local=*/true, options_.lock_memory);
    if (memory_.data() == nullptr) {
      return ResourceExhausted("ordered stream: cannot allocate ", FormatBytes(total));
    }
    std::vector<iovec> iov;
    for (uint64_t off = 0; off < total; off += kRegisterChunk) {
      iov.push_back({memory_.data() + off, std::min(kRegisterChunk, total - off)});
    }
    io_->RegisterBuffers(iov);
  }
  completion_thread_ = std::thread([this] { CompletionLoop(); });
  return Status::Ok();
}

OrderedStream::~OrderedStream() {
  if (!completion_thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  // The thread drains every read in flight (the kernel may be writing into our memory) first.
  io_->Interrupt();
  completion_thread_.join();
  io_->UnregisterBuffers();
}

std::string OrderedStream::Where(uint32_t id) const {
  const WeightBlock b = table_.Locate(id);
  const bool has_file = b.n_parts > 0 && b.parts[0].file_index >= 0 &&
                        static_cast<size_t>(b.parts[0].file_index) < table_.file_paths().size();
  return StrCat(has_file ? table_.file_paths()[b.parts[0].file_index] : std::string("(no file)"),
                ": ", table_.Describe(id));
}

size_t OrderedStream::pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<size_t>(first_seq_ + uses_.size() - next_claim_);
}

OrderedStreamCounters OrderedStream::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  OrderedStreamCounters c = counters_;
  if (in_flight_ > 0) c.busy_ns += NowNs() - busy_since_ns_;
  return c;
}

bool OrderedStream::RingSpaceLocked(uint64_t size, uint64_t* offset) const {
  if (size > ring_bytes_) return false;
  if (ring_live_.empty()) {
    *offset = 0;
    return true;
  }
  const Use& front = uses_[ring_live_.front() - first_seq_];
  const uint64_t tail = front.ring_offset;
  if (ring_head_ > tail) {  // live bytes in [tail, head): free at the end, then at the start
    if (ring_bytes_ - ring_head_ >= size) {
      *offset = ring_head_;
      return true;
    }
    if (tail >= size) {
      *offset = 0;
      return true;
    }
    return false;
  }
  // Wrapped (head <= tail; head == tail means full): free in [head, tail).
  if (tail - ring_head_ >= size && ring_head_ != tail) {
    *offset = ring_head_;
    return true;
  }
  return false;
}

void OrderedStream::FreeRingLocked() {
  while (!ring_live_.empty() && uses_[ring_live_.front() - first_seq_].released) {
    ring_live_.pop_front();
  }
  if (ring_live_.empty()) ring_head_ = 0;
  while (!uses_.empty() && uses_.front().released) {
    uses_.pop_front();
    ++first_seq_;
  }
}

void OrderedStream::AddReads(const BlockReadPlan& plan, uint8_t* dest, uint64_t tag_base,
                             std::vector<IoRequest>* out) {
  for (int r = 0; r < plan.n_reads; ++r) {
    const BlockRead& read = plan.reads[r];
    uint8_t* d = placed() ? PlacedAt(read.file_index, read.offset) : dest + read.slot_offset;
    const uint64_t off = placed() ? 0 : static_cast<uint64_t>(d - memory_.data());
    const bool one_chunk =
        !placed() && off / kRegisterChunk == (off + read.length - 1) / kRegisterChunk;
    out->push_back({.file_index = read.file_index,
                    .offset = read.offset,
                    .length = read.length,
                    .dest = d,
                    .buffer_index = one_chunk ? static_cast<int>(off / kRegisterChunk) : -1,
                    .tag = tag_base * kMaxBlockParts + static_cast<uint64_t>(r)});
  }
  if (in_flight_ == 0 && plan.n_reads > 0) busy_since_ns_ = NowNs();
  in_flight_ += static_cast<uint64_t>(plan.n_reads);
}

void OrderedStream::AllocateLocked(std::vector<IoRequest>* out) {
  while (next_alloc_ < first_seq_ + uses_.size()) {
    Use& u = uses_[next_alloc_ - first_seq_];
    const BlockReadPlan& plan = plans_[u.id];
    if (u.resident) {
      Resident& r = residents_[resident_index_[u.id]];
      if (r.state == kWaiting) {
        r.state = kLoading;
        r.reads_left = plan.n_reads;
        AddReads(plan, memory_.data() + r.offset, kResidentTag | u.id, out);
      }
    } else {
      uint64_t offset = 0;
      if (placed() && live_uses_[u.id] > 0) return;  // its one place is still in use
      if (!RingSpaceLocked(plan.slot_bytes, &offset)) return;
      if (placed()) ++live_uses_[u.id];
      u.ring_offset = offset;
      u.ring_size = plan.slot_bytes;
      ring_head_ = offset + plan.slot_bytes;
      ring_live_.push_back(next_alloc_);
      u.state = kLoading;
      u.reads_left = plan.n_reads;
      AddReads(plan, ring() + offset, next_alloc_, out);
    }
    ++next_alloc_;
  }
}

void OrderedStream::Submit(std::vector<IoRequest>& reqs) {
  if (reqs.empty()) return;
  Status st = io_->Submit(reqs);  // all or none
  if (st.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (const IoRequest& q : reqs) {
    --in_flight_;
    const uint64_t base = q.tag / kMaxBlockParts;
    if (base & kResidentTag) {
      const uint32_t id = static_cast<uint32_t>(base & ~kResidentTag);
      Resident& r = residents_[resident_index_[id]];
      r.state = kFailed;
      r.error = Status(st.code(), StrCat(Where(id), ": ", st.message()));
    } else {
      Use& u = uses_[base - first_seq_];
      u.state = kFailed;
      u.error = Status(st.code(), StrCat(Where(u.id), ": ", st.message()));
    }
  }
  if (in_flight_ == 0) counters_.busy_ns += NowNs() - busy_since_ns_;
  ++counters_.read_errors;
  cv_.notify_all();
}

void OrderedStream::Enqueue(std::span<const uint32_t> ids) {
  std::vector<IoRequest> reqs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (uint32_t id : ids) {
      CHECK(id < plans_.size()) << "weight block " << id << " of " << plans_.size();
      Use u;
      u.id = id;
      u.resident = resident_index_[id] >= 0;
      uses_.push_back(std::move(u));
    }
    AllocateLocked(&reqs);
  }
  Submit(reqs);
}

Status OrderedStream::LoadError(uint32_t id, int error, uint64_t offset, uint64_t got,
                                uint64_t needed) const {
  if (error != 0) {
    return IoError(Where(id), ": read at offset ", offset, " failed: ", IoErrorText(error));
  }
  return Corrupt(Where(id), ": read at offset ", offset, " got ", got, " of ", needed,
                 " bytes (the file ends early)");
}

void OrderedStream::DropPagesLocked(uint32_t id) {
  // The pages wholly inside the block's own bytes: others' bytes may share the edge pages.
  for (const ByteRange& r : table_.OwnRanges(id)) {
    const uint64_t begin = (r.offset + kIoAlignment - 1) / kIoAlignment * kIoAlignment;
    const uint64_t end = (r.offset + r.bytes) / kIoAlignment * kIoAlignment;
    if (end > begin) madvise(PlacedAt(r.file_index, begin), end - begin, MADV_DONTNEED);
  }
}

void OrderedStream::Abandon() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return in_flight_ == 0; });
  for (uint64_t seq = next_claim_; seq < first_seq_ + uses_.size(); ++seq) {
    Use& u = uses_[seq - first_seq_];
    u.claimed = u.released = true;
    if (placed() && !u.resident && seq < next_alloc_) {
      --live_uses_[u.id];
      DropPagesLocked(u.id);
    }
  }
  next_claim_ = next_alloc_ = first_seq_ + uses_.size();
  FreeRingLocked();
}

uint8_t* OrderedStream::SlotOf(uint32_t id, const Use& u) const {
  if (placed()) {
    const ByteRange first = table_.Locate(id).parts[0];
    return PlacedAt(first.file_index, first.offset);
  }
  if (u.resident) return memory_.data() + residents_[resident_index_[id]].offset;
  return ring() + u.ring_offset;
}

Status OrderedStream::Verify(uint32_t id, const uint8_t* dest) const {
  const BlockReadPlan& plan = plans_[id];
  if (!plan.has_checksum || !options_.verify_checksums) return Status::Ok();
  const ByteRange part0 = table_.Locate(id).parts[0];
  const uint8_t* first =
      placed() ? PlacedAt(part0.file_index, part0.offset) : dest + plan.hash_slot_offset;
  const uint64_t found = Xxh3_64(first, plan.hash_bytes);
  if (found == plan.xxh3) return Status::Ok();
  return Corrupt(Where(id), " at offset ", plan.reads[0].offset + plan.hash_slot_offset, " (",
                 plan.hash_bytes, " bytes): xxh3 expected ", Hex64(plan.xxh3), ", found ",
                 Hex64(found), "; the bytes were not used");
}

void OrderedStream::CompletionLoop() {
  IoCompletion done[64];
  for (;;) {
    const size_t n = io_->Reap(done, 1);
    std::vector<IoRequest> reqs;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t i = 0; i < n; ++i) {
        const uint64_t base = done[i].tag / kMaxBlockParts;
        const int r = static_cast<int>(done[i].tag % kMaxBlockParts);
        counters_.bytes_read += done[i].bytes;
        ++counters_.reads_completed;
        if (--in_flight_ == 0) counters_.busy_ns += NowNs() - busy_since_ns_;
        const bool resident = (base & kResidentTag) != 0;
        const uint32_t id =
            resident ? static_cast<uint32_t>(base & ~kResidentTag) : uses_[base - first_seq_].id;
        const BlockRead& read = plans_[id].reads[r];
        Resident* res = resident ? &residents_[resident_index_[id]] : nullptr;
        Use* use = resident ? nullptr : &uses_[base - first_seq_];
        int& read_error = resident ? res->read_error : use->read_error;
        uint64_t& short_needed = resident ? res->short_needed : use->short_needed;
        if (done[i].error != 0 && read_error == 0) {
          read_error = done[i].error;
          (resident ? res->short_offset : use->short_offset) = read.offset;
        } else if (done[i].error == 0 && done[i].bytes < read.needed && short_needed == 0) {
          (resident ? res->short_got : use->short_got) = done[i].bytes;
          short_needed = read.needed;
          (resident ? res->short_offset : use->short_offset) = read.offset;
        }
        int& left = resident ? res->reads_left : use->reads_left;
        if (--left > 0) continue;
        State& state = resident ? res->state : use->state;
        if (read_error != 0 || short_needed != 0) {
          ++counters_.read_errors;
          Status e = resident ? LoadError(id, res->read_error, res->short_offset, res->short_got,
                                          res->short_needed)
                              : LoadError(id, use->read_error, use->short_offset, use->short_got,
                                          use->short_needed);
          LOG(WARNING) << e.ToString();
          (resident ? res->error : use->error) = std::move(e);
          state = kFailed;
        } else {
          state = kLoaded;
        }
      }
      cv_.notify_all();
      if (stopping_ && in_flight_ == 0) return;
    }
  }
}

Result<StreamRef> OrderedStream::Next(uint32_t id) {
  std::unique_lock<std::mutex> lock(mu_);
  if (next_claim_ >= first_seq_ + uses_.size()) {
    return InvalidArgument("ordered stream: ", table_.Describe(id), " was not announced");
  }
  const uint64_t seq = next_claim_;
  Use& u = uses_[seq - first_seq_];
  if (u.id != id) {
    return InvalidArgument("ordered stream: ", table_.Describe(id), " used where ",
                           table_.Describe(u.id), " was announced (use ", seq, ")");
  }
  if (!u.resident && u.state == kWaiting) {
    // Every use before this one is handed out: the ring is full of blocks the caller holds.
    return ResourceExhausted("streaming ring of ", FormatBytes(ring_bytes_),
                             " is full of blocks in use; ", Where(id), " needs ",
                             FormatBytes(plans_[id].slot_bytes), " more");
  }
  ++next_claim_;
  u.claimed = true;
  Resident* res = u.resident ? &residents_[resident_index_[id]] : nullptr;
  State& state = res != nullptr ? res->state : u.state;
  const bool was_ready = state == kReady;
  if (state == kLoading) {
    const uint64_t start = NowNs();
    cv_.wait(lock, [&] { return state != kLoading; });
    counters_.io_wait_ns += NowNs() - start;
  }
  uint8_t* dest = SlotOf(id, u);
  if (state == kLoaded) {
    lock.unlock();  // the use is ours: nobody else touches its bytes or state
    Status st = Verify(id, dest);
    lock.lock();
    if (st.ok()) {
      state = kReady;
    } else {
      ++counters_.checksum_failures;
      (res != nullptr ? res->error : u.error) = st;
      state = kFailed;
    }
  }
  if (state == kFailed) {
    Status e = res != nullptr ? res->error : u.error;
    u.released = true;
    if (placed() && !u.resident) --live_uses_[u.id];
    FreeRingLocked();
    std::vector<IoRequest> reqs;
    AllocateLocked(&reqs);
    lock.unlock();
    Submit(reqs);
    return e;
  }
  ++counters_.uses;
  if (res != nullptr && was_ready) ++counters_.resident_uses;
  StreamRef ref;
  const WeightBlock block = table_.Locate(id);
  for (int p = 0; p < block.n_parts; ++p) {
    ref.part[p] = placed() ? PlacedAt(block.parts[p].file_index, block.parts[p].offset)
                           : dest + plans_[id].part_slot_offset[p];
  }
  ref.id = id;
  ref.seq = seq;
  ref.valid = true;
  return ref;
}

void OrderedStream::Release(StreamRef& ref) {
  CHECK(ref.valid) << "release of a block not handed out";
  std::vector<IoRequest> reqs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    CHECK(ref.seq >= first_seq_ && ref.seq < next_claim_) << ref.seq;
    Use& u = uses_[ref.seq - first_seq_];
    CHECK(u.claimed && !u.released) << ref.seq;
    u.released = true;
    if (placed() && !u.resident) {
      --live_uses_[u.id];
      DropPagesLocked(u.id);
    }
    FreeRingLocked();
    AllocateLocked(&reqs);
  }
  ref.valid = false;
  Submit(reqs);
}

}  // namespace sluice
