#include "io/uring_backend.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/log.h"

namespace sluice {
namespace {
// user_data of the eventfd poll; read slots are small non-negative numbers.
constexpr uint64_t kPollTag = ~uint64_t{0};
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
  // SQ entries = queue depth + 1 for the eventfd poll; the kernel sizes the CQ at twice that, so
  // it cannot overflow with at most queue_depth reads and one poll outstanding.
  int rc = io_uring_queue_init(static_cast<unsigned>(options.queue_depth + 1), &b->ring_, 0);
  if (rc < 0) return Unsupported("io_uring_queue_init failed: ", ErrnoString(-rc));
  b->ring_ready_ = true;
  std::vector<int> fds;
  for (const IoFile& f : b->files_) fds.push_back(f.fd);
  rc = io_uring_register_files(&b->ring_, fds.data(), static_cast<unsigned>(fds.size()));
  if (rc < 0) return Unsupported("io_uring_register_files failed: ", ErrnoString(-rc));
  b->event_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (b->event_fd_ < 0) return IoError("io: eventfd failed: ", ErrnoString(errno));
  return b;
}

UringBackend::UringBackend(const IoOptions& options)
    : options_(options), slots_(options.queue_depth), fifo_(options.max_queued) {
  for (int i = options.queue_depth - 1; i >= 0; --i) free_slots_.push_back(i);
}

UringBackend::~UringBackend() {
  CHECK_EQ(outstanding_, 0u) << "UringBackend destroyed with reads outstanding";
  if (ring_ready_) io_uring_queue_exit(&ring_);  // also cancels the armed poll
  if (event_fd_ >= 0) close(event_fd_);
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

Status UringBackend::Submit(std::span<const IoRequest> requests) {
  RETURN_IF_ERROR(ValidateRequests(requests, files_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(CheckQueueRoom(outstanding_, requests.size(), options_.max_queued));
    for (const IoRequest& r : requests) fifo_.Push(r);
    outstanding_ += requests.size();
  }
  counters_.requests_submitted.fetch_add(requests.size(), std::memory_order_relaxed);
  counters_.queued.fetch_add(requests.size(), std::memory_order_relaxed);
  const uint64_t one = 1;
  ssize_t ignored = write(event_fd_, &one, sizeof(one));  // wakes the reaper; EAGAIN = already set
  (void)ignored;
  return Status::Ok();
}

void UringBackend::Interrupt() {
  interrupts_.fetch_add(1, std::memory_order_release);
  const uint64_t one = 1;
  ssize_t ignored = write(event_fd_, &one, sizeof(one));
  (void)ignored;
}

void UringBackend::Prepare(int slot) {
  ReadProgress& p = slots_[slot];
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  // queue_depth + 1 SQ entries: at most one per busy slot plus the poll between submits.
  CHECK(sqe != nullptr) << "io_uring SQ full";
  const unsigned length = static_cast<unsigned>(p.next_length());
  if (buffers_registered_ && p.request.buffer_index >= 0) {
    io_uring_prep_read_fixed(sqe, p.request.file_index, p.next_dest(), length, p.next_offset(),
                             p.request.buffer_index);
  } else {
    io_uring_prep_read(sqe, p.request.file_index, p.next_dest(), length, p.next_offset());
  }
  sqe->flags |= IOSQE_FIXED_FILE;
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(slot));
}

void UringBackend::ArmPoll() {
  if (poll_armed_) return;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  CHECK(sqe != nullptr) << "io_uring SQ full";
  io_uring_prep_poll_add(sqe, event_fd_, POLLIN);
  io_uring_sqe_set_data64(sqe, kPollTag);
  poll_armed_ = true;
}

void UringBackend::FillRing() {
  std::lock_guard<std::mutex> lock(mu_);
  while (!fifo_.empty() && !free_slots_.empty()) {
    const int slot = free_slots_.back();
    free_slots_.pop_back();
    slots_[slot] = ReadProgress{.request = fifo_.Pop()};
    counters_.queued.fetch_sub(1, std::memory_order_relaxed);
    counters_.in_flight.fetch_add(1, std::memory_order_relaxed);
    Prepare(slot);
  }
}

bool UringBackend::HandleCqe(const io_uring_cqe& cqe, IoCompletion* out) {
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
    Prepare(slot);
    return false;
  }
  free_slots_.push_back(slot);
  counters_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

size_t UringBackend::Reap(std::span<IoCompletion> out, size_t min_completions) {
  const size_t want = std::min(min_completions, out.size());
  size_t n = 0;
  for (;;) {
    FillRing();
    ArmPoll();
    io_uring_cqe* cqe = nullptr;
    // io_uring_peek_cqe reads the CQ tail with an acquire load, so the CQE's contents are
    // visible; io_uring_cqe_seen releases the entry back to the kernel.
    while (n < out.size() && io_uring_peek_cqe(&ring_, &cqe) == 0 && cqe != nullptr) {
      const io_uring_cqe copy = *cqe;
      io_uring_cqe_seen(&ring_, cqe);
      if (copy.user_data == kPollTag) {
        poll_armed_ = false;
        uint64_t value;
        ssize_t ignored = read(event_fd_, &value, sizeof(value));  // reset the eventfd
        (void)ignored;
        continue;
      }
      if (HandleCqe(copy, &out[n])) ++n;
    }
    FillRing();  // slots freed above take queued requests at once
    ArmPoll();
    int expected = interrupts_.load(std::memory_order_acquire);
    const bool interrupted =
        expected > 0 && interrupts_.compare_exchange_strong(expected, expected - 1);
    const bool done = n >= want || n == out.size() || interrupted;
    // One io_uring_enter submits everything prepared; it waits only when we must.
    int rc = done ? io_uring_submit(&ring_) : io_uring_submit_and_wait(&ring_, 1);
    CHECK(rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY)
        << "io_uring_submit: " << ErrnoString(-rc);
    if (done) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    outstanding_ -= n;
  }
  counters_.requests_completed.fetch_add(n, std::memory_order_relaxed);
  return n;
}

}  // namespace sluice
