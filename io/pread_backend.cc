#include "io/pread_backend.h"

#include <unistd.h>

#include <cerrno>

namespace sluice {

Result<std::unique_ptr<PreadBackend>> PreadBackend::Create(const IoOptions& options,
                                                           const std::vector<std::string>& paths) {
  if (options.queue_depth < 1 || options.queue_depth > 1024) {
    return InvalidArgument("io: queue depth ", options.queue_depth, " out of range 1..1024");
  }
  if (options.max_queued < 1) return InvalidArgument("io: max_queued must be >= 1");
  std::unique_ptr<PreadBackend> b(new PreadBackend(options));
  ASSIGN_OR_RETURN(b->files_, OpenIoFiles(paths, options.direct));
  b->direct_ = !b->files_.empty();
  for (const IoFile& f : b->files_) b->direct_ = b->direct_ && f.direct;
  for (int i = 0; i < options.queue_depth; ++i)
    b->workers_.emplace_back([p = b.get()] { p->WorkerLoop(); });
  return b;
}

PreadBackend::PreadBackend(const IoOptions& options)
    : options_(options), queue_(options.max_queued), done_(options.max_queued) {}

PreadBackend::~PreadBackend() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
  CloseIoFiles(&files_);
}

std::string PreadBackend::Describe() const {
  return StrCat("pread worker pool (", direct_ ? "O_DIRECT" : "buffered", ", ",
                options_.queue_depth, " threads)");
}

Status PreadBackend::Submit(std::span<const IoRequest> requests) {
  RETURN_IF_ERROR(ValidateRequests(requests, files_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(CheckQueueRoom(outstanding_, requests.size(), options_.max_queued));
    for (const IoRequest& r : requests) queue_.Push(r);
    outstanding_ += requests.size();
    counters_.requests_submitted.fetch_add(requests.size(), std::memory_order_relaxed);
    counters_.queued.fetch_add(requests.size(), std::memory_order_relaxed);
  }
  if (requests.size() == 1) {
    work_cv_.notify_one();
  } else {
    work_cv_.notify_all();
  }
  return Status::Ok();
}

IoCompletion PreadBackend::Execute(const IoRequest& request) {
  const IoFile& f = files_[request.file_index];
  ReadProgress p{.request = request};
  IoCompletion out;
  for (;;) {
    ssize_t n = pread(f.fd, p.next_dest(), p.next_length(), static_cast<off_t>(p.next_offset()));
    int64_t result = n < 0 ? -static_cast<int64_t>(errno) : n;
    if (options_.faults != nullptr) {
      result = options_.faults->OnRead(request.file_index, p.next_offset(), p.next_length(),
                                       p.next_dest(), result);
    }
    if (AdvanceRead(&p, result, f.size, options_.max_retries, &counters_, &out) ==
        ReadStep::kComplete) {
      return out;
    }
  }
}

void PreadBackend::WorkerLoop() {
  for (;;) {
    IoRequest request;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left
      request = queue_.Pop();
    }
    counters_.queued.fetch_sub(1, std::memory_order_relaxed);
    counters_.in_flight.fetch_add(1, std::memory_order_relaxed);
    IoCompletion c = Execute(request);
    counters_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_.Push(c);
    }
    done_cv_.notify_all();
  }
}

size_t PreadBackend::Reap(std::span<IoCompletion> out, size_t min_completions) {
  std::unique_lock<std::mutex> lock(mu_);
  const size_t want = std::min(min_completions, out.size());
  done_cv_.wait(lock, [&] { return done_.size() >= want || interrupts_ > 0; });
  if (interrupts_ > 0 && done_.size() < want) --interrupts_;
  const size_t n = std::min(done_.size(), out.size());
  for (size_t i = 0; i < n; ++i) out[i] = done_.Pop();
  outstanding_ -= n;
  counters_.requests_completed.fetch_add(n, std::memory_order_relaxed);
  return n;
}

void PreadBackend::Interrupt() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++interrupts_;
  }
  done_cv_.notify_all();
}

}  // namespace sluice
