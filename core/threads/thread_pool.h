// ThreadPool: a fixed set of worker threads created once (pinned to cores where allowed), used by
// the kernels to split rows. ParallelFor never allocates; the calling thread takes part.
//
// Thread-safety: one ParallelFor at a time per pool (the engine owns one pool and calls it from
// its own thread). The pool may be shared by sequential callers.
#pragma once

#include <cstdint>

namespace sluice {

class ThreadPool {
 public:
  // num_threads includes the caller; 1 means everything runs inline.
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return num_threads_; }

  // Calls fn(begin, end) on disjoint ranges covering [0, n), over all threads; returns when all
  // are done. `fn` must be safe to call concurrently on disjoint ranges.
  template <typename Fn>
  void ParallelFor(int64_t n, const Fn& fn) {
    Run(n, [](const void* ctx, int64_t b, int64_t e) { (*static_cast<const Fn*>(ctx))(b, e); },
        &fn);
  }

 private:
  using RangeFn = void (*)(const void* ctx, int64_t begin, int64_t end);
  void Run(int64_t n, RangeFn fn, const void* ctx);

  struct Impl;
  Impl* impl_ = nullptr;
  int num_threads_ = 1;
};

}  // namespace sluice
