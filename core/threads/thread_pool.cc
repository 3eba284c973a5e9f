#include "core/threads/thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <system_error>
#include <thread>
#include <vector>

#include "core/base/check.h"
#include "core/base/log.h"

namespace sluice {
namespace {

// A decode step calls ParallelFor a few thousand times (3 matmuls per expert per layer), each
// lasting ~20-200 us, with a few us of other work in between. A futex wake costs ~5-20 us, so
// idle workers spin this long before sleeping; beyond it they sleep so an idle pool costs no CPU.
constexpr auto kWorkerSpin = std::chrono::microseconds(100);
// The caller waiting for the last chunk spins briefly, then yields: when there are more runnable
// threads than cores (a shared 2-core machine), the straggler may need the caller's core.
constexpr auto kCallerSpin = std::chrono::microseconds(20);
// Clock reads are amortized over this many pause instructions (~1-4 us).
constexpr int kPausesPerClockRead = 64;

// Chunks per thread: with dynamic claiming a descheduled or slower core gives its remaining
// chunks away; 4 keeps the per-chunk claim (one atomic add) negligible.
constexpr int64_t kChunksPerThread = 4;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

struct ThreadPool::Impl {
  std::vector<std::thread> workers;

  // The current job; written by the caller before `generation` is bumped (release), read by
  // workers after they observe the new generation (acquire).
  RangeFn fn = nullptr;
  const void* ctx = nullptr;
  int64_t n = 0;
  int64_t num_chunks = 0;
  std::atomic<int64_t> next_chunk{0};

  std::atomic<uint32_t> generation{0};  // bumped once per job; workers wait on it (futex)
  std::atomic<int> sleepers{0};         // workers blocked in generation.wait()
  std::atomic<int> busy{0};             // workers still inside the current job
  std::atomic<bool> stop{false};

  // Claims chunks until none is left.
  void Work() {
    for (;;) {
      const int64_t c = next_chunk.fetch_add(1, std::memory_order_relaxed);
      if (c >= num_chunks) return;
      const int64_t begin = n * c / num_chunks;
      const int64_t end = n * (c + 1) / num_chunks;
      if (begin < end) fn(ctx, begin, end);
    }
  }

  void WorkerLoop() {
    uint32_t seen = 0;
    for (;;) {
      uint32_t now = generation.load(std::memory_order_acquire);
      const auto spin_end = std::chrono::steady_clock::now() + kWorkerSpin;
      for (int i = 1; now == seen; ++i) {
        CpuRelax();
        now = generation.load(std::memory_order_acquire);
        if (i % kPausesPerClockRead == 0 && std::chrono::steady_clock::now() > spin_end) break;
      }
      if (now == seen) {
        // Dekker-style handshake with Run(): either Run sees sleepers > 0 and notifies, or we
        // see the new generation here (both sides use seq_cst).
        sleepers.fetch_add(1, std::memory_order_seq_cst);
        while ((now = generation.load(std::memory_order_seq_cst)) == seen) {
          generation.wait(seen, std::memory_order_seq_cst);
        }
        sleepers.fetch_sub(1, std::memory_order_relaxed);
      }
      seen = now;
      if (stop.load(std::memory_order_acquire)) return;
      Work();
      busy.fetch_sub(1, std::memory_order_release);
    }
  }
};

ThreadPool::ThreadPool(int num_threads) {
  Status started = Start(num_threads);
  CHECK(started.ok()) << started.ToString();
}

Result<std::unique_ptr<ThreadPool>> ThreadPool::Create(int num_threads) {
  std::unique_ptr<ThreadPool> pool(new ThreadPool());
  RETURN_IF_ERROR(pool->Start(num_threads));
  return pool;
}

Status ThreadPool::Start(int num_threads) {
  if (num_threads < 1 || num_threads > kMaxThreads) {
    return InvalidArgument("thread count ", num_threads, " is outside 1..", kMaxThreads);
  }
  num_threads_ = num_threads;
  impl_ = new Impl;
  if (num_threads == 1) return Status::Ok();

  // Pin worker i to the i-th CPU the process may use, when there are enough of them; the
  // caller keeps its own affinity (it is the engine's thread and takes part as "thread 0").
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
    }
  }
  const bool pin = static_cast<int>(cpus.size()) >= num_threads;
  impl_->workers.reserve(num_threads - 1);
  int pinned = 0;
  for (int i = 1; i < num_threads; ++i) {
    try {
      impl_->workers.emplace_back([this] { impl_->WorkerLoop(); });
    } catch (const std::system_error& e) {
      // The system refused a thread: stop the ones that started and say so (an uncaught
      // exception here used to abort the process).
      const int started = static_cast<int>(impl_->workers.size());
      Stop();
      num_threads_ = 1;
      impl_ = new Impl;
      return ResourceExhausted("cannot start compute thread ", i + 1, " of ", num_threads, " (",
                               started + 1, " running): ", e.what(),
                               "; lower --threads or raise the process/thread limit");
    }
    if (pin) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpus[i], &one);
      if (pthread_setaffinity_np(impl_->workers.back().native_handle(), sizeof(one), &one) == 0) {
        ++pinned;
      }
    }
  }
  LOG(DEBUG) << "thread pool: " << num_threads << " threads (caller + " << num_threads - 1
             << " workers, " << pinned << " pinned)";
  return Status::Ok();
}

void ThreadPool::Stop() {
  if (impl_ == nullptr) return;
  impl_->stop.store(true, std::memory_order_release);
  impl_->generation.fetch_add(1, std::memory_order_seq_cst);
  impl_->generation.notify_all();
  for (std::thread& t : impl_->workers) t.join();
  delete impl_;
  impl_ = nullptr;
}

ThreadPool::~ThreadPool() { Stop(); }

int ThreadPool::sleeping_workers() const { return impl_->sleepers.load(std::memory_order_seq_cst); }

void ThreadPool::Run(int64_t n, RangeFn fn, const void* ctx) {
  if (n <= 0) return;
  if (num_threads_ == 1 || n == 1) {
    fn(ctx, 0, n);
    return;
  }
  Impl& p = *impl_;
  p.fn = fn;
  p.ctx = ctx;
  p.n = n;
  p.num_chunks = std::min<int64_t>(n, kChunksPerThread * num_threads_);
  p.next_chunk.store(0, std::memory_order_relaxed);
  p.busy.store(num_threads_ - 1, std::memory_order_relaxed);
  p.generation.fetch_add(1, std::memory_order_seq_cst);
  if (p.sleepers.load(std::memory_order_seq_cst) > 0) p.generation.notify_all();

  p.Work();
  // Workers that were asleep may not have claimed anything yet; they still check in, so the
  // job's fields stay valid until every worker is done with them.
  const auto spin_end = std::chrono::steady_clock::now() + kCallerSpin;
  bool spinning = true;
  for (int i = 1; p.busy.load(std::memory_order_acquire) != 0; ++i) {
    if (spinning) {
      CpuRelax();
      if (i % kPausesPerClockRead == 0) spinning = std::chrono::steady_clock::now() < spin_end;
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace sluice
