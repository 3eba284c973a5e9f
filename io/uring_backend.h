// UringBackend: IoBackend on io_uring, as liburing's authors use it: files registered once
// (IOSQE_FIXED_FILE), buffers registered once (read_fixed: no per-read page pinning), the queue
// filled and submitted with one io_uring_enter, completions reaped in a batch, short reads and
// -EAGAIN/-EINTR resubmitted from where they stopped.
//
// One thread owns the ring: whichever thread is in Reap() prepares every SQE, submits, and reaps.
// Submit() from other threads only appends to a fixed FIFO and pokes an eventfd that the ring
// polls, which wakes the reaper to move the FIFO into the ring. Why: io_uring posts a read's
// completion from task_work run by the task that *submitted* it; when that task was a compute
// thread asleep in a condition variable, each completion first had to wake it, and the cache
// path measured ~0.7 GB/s where a single submit-and-reap thread reached ~1.4 GB/s (QD 16, 2 MB).
// At most queue_depth reads are in the ring; the rest wait in the FIFO.
//
// Non-goals: SQPOLL (burns a core; we have two), linked requests. Thread-safety: as IoBackend
// (Submit and Interrupt from any thread, Reap from one thread at a time).
#pragma once

#include <liburing.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "core/base/fixed_ring.h"
#include "io/io_backend.h"
#include "io/io_common.h"

namespace sluice {

class UringBackend final : public IoBackend {
 public:
  // Fails (with the errno of io_uring_queue_init / register) where io_uring is unavailable.
  static Result<std::unique_ptr<UringBackend>> Create(const IoOptions& options,
                                                      const std::vector<std::string>& paths);
  ~UringBackend() override;

  IoBackendKind kind() const override { return IoBackendKind::kUring; }
  std::string Describe() const override;
  bool direct_io() const override { return direct_; }
  int queue_depth() const override { return options_.queue_depth; }
  size_t max_queued() const override { return options_.max_queued; }
  void RegisterBuffers(std::span<const iovec> buffers) override;
  void UnregisterBuffers() override;
  Status Submit(std::span<const IoRequest> requests) override;
  size_t Reap(std::span<IoCompletion> out, size_t min_completions) override;
  void Interrupt() override;
  IoCounters counters() const override { return counters_.Snapshot(); }

 private:
  explicit UringBackend(const IoOptions& options);
  // Reaper only (the ring's owner):
  void FillRing();         // FIFO -> free ring slots
  void Prepare(int slot);  // one read SQE for slots_[slot]
  void ArmPoll();          // the eventfd poll that wakes a waiting reaper
  // Handles one CQE; writes a completion to *out and returns true when a request finished.
  bool HandleCqe(const io_uring_cqe& cqe, IoCompletion* out);

  const IoOptions options_;
  std::vector<IoFile> files_;
  bool direct_ = false;
  io_uring ring_{};
  bool ring_ready_ = false;
  int event_fd_ = -1;
  bool buffers_registered_ = false;
  AtomicIoCounters counters_;

  // Reaper-owned (touched only inside Reap, or before/after any Reap for registration).
  std::vector<ReadProgress> slots_;  // queue_depth; user_data = slot index
  std::vector<int> free_slots_;
  bool poll_armed_ = false;

  // Shared: the FIFO of accepted requests not yet in the ring.
  std::mutex mu_;
  FixedRing<IoRequest> fifo_;  // max_queued
  size_t outstanding_ = 0;     // accepted, not yet returned by Reap
  std::atomic<int> interrupts_{0};
};

}  // namespace sluice
