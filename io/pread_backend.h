// PreadBackend: IoBackend over a pool of worker threads, each doing blocking pread(2) calls.
// The fallback when io_uring is unavailable (old kernel, seccomp, kernel.io_uring_disabled) and a
// reference for tests. queue_depth workers = queue_depth reads at the device at once.
//
// Semantics are those of io/io_backend.h. Files are opened with O_DIRECT when asked and allowed,
// else buffered (one log line per file). Non-goals: registered buffers (ignored).
// Thread-safety: as IoBackend.
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/base/fixed_ring.h"
#include "io/io_backend.h"
#include "io/io_common.h"

namespace sluice {

class PreadBackend final : public IoBackend {
 public:
  static Result<std::unique_ptr<PreadBackend>> Create(const IoOptions& options,
                                                      const std::vector<std::string>& paths);
  ~PreadBackend() override;

  IoBackendKind kind() const override { return IoBackendKind::kPread; }
  std::string Describe() const override;
  bool direct_io() const override { return direct_; }
  int queue_depth() const override { return options_.queue_depth; }
  size_t max_queued() const override { return options_.max_queued; }
  void RegisterBuffers(std::span<const iovec>) override {}
  void UnregisterBuffers() override {}
  Status Submit(std::span<const IoRequest> requests) override;
  size_t Reap(std::span<IoCompletion> out, size_t min_completions) override;
  void Interrupt() override;
  IoCounters counters() const override { return counters_.Snapshot(); }

 private:
  explicit PreadBackend(const IoOptions& options);
  void WorkerLoop();
  IoCompletion Execute(const IoRequest& request);

  const IoOptions options_;
  std::vector<IoFile> files_;
  bool direct_ = false;
  AtomicIoCounters counters_;

  std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait for requests
  std::condition_variable done_cv_;  // Reap waits for completions
  // Fixed rings sized max_queued at creation: requests waiting for a worker, and completions
  // waiting for Reap. outstanding_ counts both plus those being read (the max_queued bound).
  FixedRing<IoRequest> queue_;
  FixedRing<IoCompletion> done_;
  size_t outstanding_ = 0;
  int interrupts_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace sluice
