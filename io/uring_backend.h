// UringBackend: IoBackend on io_uring, as liburing's authors use it: files registered once
// (IOSQE_FIXED_FILE), buffers registered once (read_fixed: no per-read page pinning), the queue
// filled and submitted with one io_uring_enter, completions reaped in a batch, short reads and
// -EAGAIN/-EINTR resubmitted from where they stopped.
//
// At most queue_depth reads are in the ring; further requests wait in a fixed FIFO and enter the
// ring as completions free slots (in Reap). Submit takes a mutex around the submission queue;
// Reap waits on the completion queue without it (the two rings are independent, and only one
// thread reaps), then takes it to resubmit and refill.
//
// Non-goals: SQPOLL (burns a core; we have two), linked requests. Thread-safety: as IoBackend.
#pragma once

#include <liburing.h>

#include <memory>
#include <mutex>
#include <vector>

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
  // Moves queued requests into free ring slots and prepares their SQEs. Caller holds mu_.
  void FillRingLocked();
  void PrepareLocked(int slot);
  // Handles one CQE; writes a completion to *out and returns true when a request finished.
  bool HandleCqeLocked(const io_uring_cqe& cqe, IoCompletion* out);

  const IoOptions options_;
  std::vector<IoFile> files_;
  bool direct_ = false;
  io_uring ring_{};
  bool ring_ready_ = false;
  bool buffers_registered_ = false;
  AtomicIoCounters counters_;

  std::mutex mu_;  // guards the SQ, slots_, free_slots_, the FIFO and the fields below
  std::vector<ReadProgress> slots_;  // queue_depth; user_data = slot index
  std::vector<int> free_slots_;
  std::vector<IoRequest> fifo_;  // max_queued
  size_t fifo_head_ = 0, fifo_size_ = 0;
  size_t outstanding_ = 0;  // accepted, not yet returned by Reap
  int unsubmitted_ = 0;     // SQEs prepared since the last io_uring_submit
};

}  // namespace sluice
