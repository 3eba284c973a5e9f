#include "io/uring_backend.h"

#include <cerrno>

#include "core/base/log.h"

namespace sluice {
namespace {
// user_data of the NOP that Interrupt() submits; slot indices are small non-negative numbers.
constexpr uint64_t kInterruptTag = ~uint64_t{0};
}  // namespace

Result<std::unique_ptr<UringBackend>> UringBackend::Create(const IoOptions& options,
                                                           const std::vector<std::string>& paths) {
  if (options.queue_depth < 1 || options.queue_depth > 1024) {
    return InvalidArgument("io: queue depth ", options.queue_depth, " out of range 1..1024");
  }
  if (options.max_queued < 1) return InvalidArgument("io: max_queued must be >= 1");
  std::unique_ptr<UringBackend> b(new UringBackend(options));
  ASSIGN_OR_RETURN(b->files_, OpenIoFiles(paths, options.direct));
  b->direct_ = !b->files_.empty();
  for (const IoFile& f : b->files_) b->direct_ = b->direct_ && f.direct;
  // SQ entries = queue depth + 1 for an Interrupt NOP; the kernel sizes the CQ at twice that, so
  // the CQ cannot overflow with at most queue_depth reads and one NOP outstanding.
  int rc = io_uring_queue_init(static_cast<unsigned>(options.queue_depth + 1), &b->ring_, 0);
  if (rc < 0) return Unsupported("io_uring_queue_init failed: ", ErrnoString(-rc));
  b->ring_ready_ = true;
  std::vector<int> fds;
  for (const IoFile& f : b->files_) fds.push_back(f.fd);
  rc = io_uring_register_files(&b->ring_, fds.data(), static_cast<unsigned>(fds.size()));
  if (rc < 0) return Unsupported("io_uring_register_files failed: ", ErrnoString(-rc));
  return b;
}

UringBackend::UringBackend(const IoOptions& options)
    : options_(options), slots_(options.queue_depth), fifo_(options.max_queued) {
  for (int i = options.queue_depth - 1; i >= 0; --i) free_slots_.push_back(i);
}

UringBackend::~UringBackend() {
  CHECK_EQ(outstanding_, 0u) << "UringBackend destroyed with reads outstanding";
  if (ring_ready_) io_uring_queue_exit(&ring_);
  CloseIoFiles(&files_);
}

std::string UringBackend::Describe() const {
  return StrCat("io_uring (", direct_ ? "O_DIRECT" : "buffered", ", ",
                buffers_registered_ ? "registered buffers" : "unregistered buffers",
                ", registered files, QD ", options_.queue_depth, ")");
}

void UringBackend::RegisterBuffers(std::span<const iovec> buffers) {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK_EQ(outstanding_, 0u) << "RegisterBuffers with reads outstanding";
  if (buffers_registered_) io_uring_unregister_buffers(&ring_);
  buffers_registered_ = false;
  int rc = io_uring_register_buffers(&ring_, buffers.data(), static_cast<unsigned>(buffers.size()));
  if (rc < 0) {
    // Pinned memory counts against RLIMIT_MEMLOCK for unprivileged users: reads still work, each
    // one pins its pages itself.
    LOG(INFO) << "io: io_uring buffer registration of " << buffers.size() << " buffers failed ("
              << ErrnoString(-rc) << "); reading into unregistered buffers";
    return;
  }
  buffers_registered_ = true;
}

void UringBackend::UnregisterBuffers() {
  std::lock_guard<std::mutex> lock(mu_);
  CHECK_EQ(outstanding_, 0u) << "UnregisterBuffers with reads outstanding";
  if (buffers_registered_) io_uring_unregister_buffers(&ring_);
  buffers_registered_ = false;
}

void UringBackend::PrepareLocked(int slot) {
  ReadProgress& p = slots_[slot];
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // The SQ has queue_depth + 1 entries and at most queue_depth reads are prepared between
  // submits (one per busy slot), so it cannot be full here.
  CHECK(sqe != nullptr) << "io_uring SQ full";
  unsigned length = static_cast<unsigned>(p.next_length());
  if (buffers_registered_ && p.request.buffer_index >= 0) {
    io_uring_prep_read_fixed(sqe, p.request.file_index, p.next_dest(), length, p.next_offset(),
                             p.request.buffer_index);
  } else {
    io_uring_prep_read(sqe, p.request.file_index, p.next_dest(), length, p.next_offset());
  }
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(slot));
  ++unsubmitted_;
}

void UringBackend::FillRingLocked() {
  while (fifo_size_ > 0 && !free_slots_.empty()) {
    int slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = ReadProgress{.request = fifo_[fifo_head_]};
    fifo_head_ = (fifo_head_ + 1) % fifo_.size();
    --fifo_size_;
    counters_.queued.fetch_sub(1, std::memory_order_relaxed);
    counters_.in_flight.fetch_add(1, std::memory_order_relaxed);
    PrepareLocked(slot);
  }
  if (unsubmitted_ > 0) {
    // io_uring_submit publishes the SQ tail with a release store (liburing's io_uring_smp_store_
    // release), so the kernel sees fully written SQEs.
    int rc;
    do {
      rc = io_uring_submit(&ring_);
    } while (rc == -EINTR || rc == -EAGAIN);
    CHECK(rc >= 0) << "io_uring_submit: " << ErrnoString(-rc);
    unsubmitted_ = 0;
  }
}

Status UringBackend::Submit(std::span<const IoRequest> requests) {
  RETURN_IF_ERROR(ValidateRequests(requests, files_));
  std::lock_guard<std::mutex> lock(mu_);
  if (outstanding_ + requests.size() > options_.max_queued) {
    return ResourceExhausted("io: ", requests.size(), " more reads would exceed the limit of ",
                             options_.max_queued, " outstanding (", outstanding_, " now)");
  }
  for (const IoRequest& r : requests) {
    fifo_[(fifo_head_ + fifo_size_) % fifo_.size()] = r;
    ++fifo_size_;
  }
  outstanding_ += requests.size();
  counters_.requests_submitted.fetch_add(requests.size(), std::memory_order_relaxed);
  counters_.queued.fetch_add(requests.size(), std::memory_order_relaxed);
  FillRingLocked();
  return Status::Ok();
}

bool UringBackend::HandleCqeLocked(const io_uring_cqe& cqe, IoCompletion* out) {
  const int slot = static_cast<int>(cqe.user_data);
  ReadProgress& p = slots_[slot];
  int64_t result = cqe.res;
  if (options_.faults != nullptr) {
    result = options_.faults->OnRead(p.request.file_index, p.next_offset(), p.next_length(),
                                     p.next_dest(), result);
  }
  const IoFile& f = files_[p.request.file_index];
  if (AdvanceRead(&p, result, f.size, options_.max_retries, &counters_, out) ==
      ReadStep::kResubmit) {
    PrepareLocked(slot);
    return false;
  }
  free_slots_.push_back(slot);
  counters_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

size_t UringBackend::Reap(std::span<IoCompletion> out, size_t min_completions) {
  const size_t want = std::min(min_completions, out.size());
  size_t n = 0;
  bool interrupted = false;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      const size_t before = n;
      io_uring_cqe* cqe = nullptr;
      // io_uring_peek_cqe reads the CQ tail with an acquire load, so the CQE contents are
      // visible; io_uring_cqe_seen releases the slot back to the kernel.
      while (n < out.size() && io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
        io_uring_cqe copy = *cqe;
        io_uring_cqe_seen(&ring_, cqe);
        if (copy.user_data == kInterruptTag) {
          interrupted = true;
          continue;
        }
        if (HandleCqeLocked(copy, &out[n])) ++n;
      }
      FillRingLocked();  // resubmissions and queued requests go in with one io_uring_enter
      outstanding_ -= n - before;
    }
    if (n >= want || interrupted || n == out.size()) break;
    io_uring_cqe* cqe = nullptr;
    int rc = io_uring_wait_cqe(&ring_, &cqe);  // blocks; CQ only, no lock needed
    CHECK(rc == 0 || rc == -EINTR || rc == -EAGAIN) << "io_uring_wait_cqe: " << ErrnoString(-rc);
  }
  counters_.requests_completed.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void UringBackend::Interrupt() {
  std::lock_guard<std::mutex> lock(mu_);
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  CHECK(sqe != nullptr) << "io_uring SQ full";
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data64(sqe, kInterruptTag);
  ++unsubmitted_;
  FillRingLocked();
}

}  // namespace sluice
