// ThreadPool: a fixed set of worker threads created once (pinned to cores where allowed), used by
// the kernels to split rows. ParallelFor never allocates; the calling thread takes part.
//
// Thread-safety: one ParallelFor at a time per pool (the engine owns one pool and calls it from
// its own thread). The pool may be shared by sequential callers.
#pragma once

#include <cstdint>
#include <memory>

#include "core/base/status.h"

namespace sluice {

class ThreadPool {
 public:
  // Threads one pool may have: far above any core count we run on, far below what makes a
  // system refuse threads (each reserves a stack).
  static constexpr int kMaxThreads = 1024;

  // num_threads (1..kMaxThreads) includes the caller; 1 means everything runs inline. Errors:
  // InvalidArgument outside that range; ResourceExhausted when the system refuses a thread (a
  // container's pids limit, `ulimit -u`, no memory for its stack), naming how many started.
  static Result<std::unique_ptr<ThreadPool>> Create(int num_threads);
  // The same for callers that know the count is sane (tests, benchmarks): CHECK-fails instead.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }
  // Workers blocked in the kernel waiting for work, now (tests wait on it).
  int sleeping_workers() const;

  // Calls fn(begin, end) on disjoint ranges covering [0, n), over all threads; returns when all
  // are done. `fn` must be safe to call concurrently on disjoint ranges.
  template <typename Fn>
  void ParallelFor(int64_t n, const Fn& fn) {
    Run(
        n, [](const void* ctx, int64_t b, int64_t e) { (*static_cast<const Fn*>(ctx))(b, e); },
        &fn);
  }

 private:
  ThreadPool() = default;
  Status Start(int num_threads);  // starts the workers; on failure joins those that started
  void Stop();                    // stops and joins the workers
  using RangeFn = void (*)(const void* ctx, int64_t begin, int64_t end);
  void Run(int64_t n, RangeFn fn, const void* ctx);

  struct Impl;
  Impl* impl_ = nullptr;
  int num_threads_ = 1;
};

}  // namespace sluice
