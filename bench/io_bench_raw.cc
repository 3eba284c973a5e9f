#include "bench/io_bench_raw.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

#include "core/base/clock.h"

namespace sluice {
namespace {}  // namespace

Result<RawRunResult> RawPreadRun(int fd, const std::vector<uint64_t>& offsets, uint64_t n_reads,
                                 int queue_depth, uint64_t read_bytes, const RawBuffers& buffers) {
  std::atomic<uint64_t> next{0};
  std::atomic<int> error{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < queue_depth; ++t) {
    threads.emplace_back([&, t] {
      uint8_t* buf = buffers.buffer(t);
      for (uint64_t i = next++; i < n_reads; i = next++) {
        uint64_t done = 0;
        const uint64_t offset = offsets[i % offsets.size()];
        while (done < read_bytes) {
          ssize_t n = pread(fd, buf + done, read_bytes - done, static_cast<off_t>(offset + done));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            error = n < 0 ? errno : EIO;
            return;
          }
          done += static_cast<uint64_t>(n);
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  if (error != 0) return IoError("raw pread failed: ", ErrnoString(error));
  return RawRunResult{n_reads * read_bytes, Seconds(Clock::now() - start)};
}

std::unique_ptr<RawUring> RawUring::Create(int fd, int queue_depth, uint64_t read_bytes,
                                           const RawBuffers* buffers) {
  std::unique_ptr<RawUring> r(new RawUring());
  if (io_uring_queue_init(static_cast<unsigned>(queue_depth), &r->ring_, 0) < 0) return nullptr;
  r->fd_ = fd;
  r->queue_depth_ = queue_depth;
  r->read_bytes_ = read_bytes;
  r->buffers_ = buffers;
  r->offset_of_.assign(queue_depth, 0);
  r->done_of_.assign(queue_depth, 0);
  std::vector<iovec> iov(queue_depth);
  for (int b = 0; b < queue_depth; ++b) iov[b] = {buffers->buffer(b), read_bytes};
  r->registered_ = io_uring_register_buffers(&r->ring_, iov.data(), queue_depth) == 0;
  return r;
}

RawUring::~RawUring() { io_uring_queue_exit(&ring_); }

void RawUring::Queue(int b) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  uint8_t* dest = buffers_->buffer(b) + done_of_[b];
  const unsigned length = static_cast<unsigned>(read_bytes_ - done_of_[b]);
  const uint64_t offset = offset_of_[b] + done_of_[b];
  if (registered_) {
    io_uring_prep_read_fixed(sqe, fd_, dest, length, offset, b);
  } else {
    io_uring_prep_read(sqe, fd_, dest, length, offset);
  }
  io_uring_sqe_set_data64(sqe, static_cast<uint64_t>(b));
}

Result<RawRunResult> RawUring::Run(const std::vector<uint64_t>& offsets, uint64_t n_reads) {
  uint64_t next = 0, completed = 0;
  const Clock::time_point start = Clock::now();
  for (int b = 0; b < queue_depth_ && next < n_reads; ++b) {
    offset_of_[b] = offsets[next++ % offsets.size()];
    done_of_[b] = 0;
    Queue(b);
  }
  while (completed < n_reads) {
    int rc = io_uring_submit_and_wait(&ring_, 1);
    if (rc < 0 && rc != -EINTR) return IoError("raw io_uring submit: ", ErrnoString(-rc));
    unsigned head, seen = 0;
    io_uring_cqe* cqe = nullptr;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      ++seen;
      const int b = static_cast<int>(cqe->user_data);
      if (cqe->res == -EAGAIN || cqe->res == -EINTR) {
        Queue(b);
        continue;
      }
      if (cqe->res <= 0) {
        io_uring_cq_advance(&ring_, seen);
        return IoError("raw io_uring read: ", ErrnoString(cqe->res < 0 ? -cqe->res : EIO));
      }
      done_of_[b] += static_cast<uint64_t>(cqe->res);
      if (done_of_[b] < read_bytes_) {  // short: the rest from where it stopped
        Queue(b);
        continue;
      }
      ++completed;
      done_of_[b] = 0;
      if (next < n_reads) {
        offset_of_[b] = offsets[next++ % offsets.size()];
        Queue(b);
      }
    }
    io_uring_cq_advance(&ring_, seen);
  }
  return RawRunResult{n_reads * read_bytes_, Seconds(Clock::now() - start)};
}

}  // namespace sluice
