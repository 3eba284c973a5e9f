// ThreadPool: every index of [0, n) is visited exactly once, for all pool sizes and n (including
// n smaller than the pool), across many back-to-back jobs and after workers went to sleep.
#include "core/threads/thread_pool.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice {
namespace {

void ExpectEachIndexOnce(ThreadPool& pool, int64_t n) {
  std::vector<std::atomic<int>> visits(static_cast<size_t>(n));
  for (auto& v : visits) v.store(0);
  pool.ParallelFor(n, [&](int64_t begin, int64_t end) {
    ASSERT_LE(0, begin);
    ASSERT_LT(begin, end);
    ASSERT_LE(end, n);
    for (int64_t i = begin; i < end; ++i) visits[i].fetch_add(1);
  });
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(visits[i].load(), 1) << "index " << i << " of " << n;
}

TEST(ThreadPool, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 4, 7, 64, 1000, 4097}) ExpectEachIndexOnce(pool, n);
  }
}

TEST(ThreadPool, ManyBackToBackJobs) {
  ThreadPool pool(3);
  std::atomic<int64_t> total{0};
  for (int job = 0; job < 5000; ++job) {
    pool.ParallelFor(16, [&](int64_t begin, int64_t end) { total.fetch_add(end - begin); });
  }
  EXPECT_EQ(total.load(), 5000 * 16);
}

TEST(ThreadPool, WakesSleepingWorkers) {
  ThreadPool pool(3);
  ExpectEachIndexOnce(pool, 100);
  // Wait until both workers stopped spinning and block in the kernel (observed, not guessed).
  while (pool.sleeping_workers() < 2) std::this_thread::yield();
  ExpectEachIndexOnce(pool, 100);
}

TEST(ThreadPool, UsesMoreThanOneThread) {
  ThreadPool pool(2);
  std::atomic<int> distinct{0};
  // Each chunk blocks until another thread has also entered, so a pool that silently ran
  // everything on the caller would time out here.
  std::atomic<int> entered{0};
  pool.ParallelFor(2, [&](int64_t, int64_t) {
    entered.fetch_add(1);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (entered.load() < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    distinct.fetch_add(1);
  });
  EXPECT_EQ(entered.load(), 2);
  EXPECT_EQ(distinct.load(), 2);
}

TEST(ThreadPool, CountsOutsideTheLimitsAreErrors) {
  for (int n : {0, -1, ThreadPool::kMaxThreads + 1, 65536}) {
    Result<std::unique_ptr<ThreadPool>> p = ThreadPool::Create(n);
    ASSERT_FALSE(p.ok()) << n;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(p.status().message().find(std::to_string(n)), std::string::npos);
  }
  EXPECT_TRUE(ThreadPool::Create(ThreadPool::kMaxThreads).ok());
}

// A system that refuses threads (here: too little address space for their stacks, which binds
// root too) is a ResourceExhausted error, not an uncaught std::system_error that aborts.
TEST(ThreadPool, RefusedThreadsAreAnErrorNotAnAbort) {
#ifdef SLUICE_SANITIZE
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot be "
                  "used to make thread creation fail under it";
#else
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    rlimit lim{};
    getrlimit(RLIMIT_AS, &lim);
    // What the process has mapped now plus 64 MB: room for a few 8 MB thread stacks, not 200.
    std::ifstream status("/proc/self/status");
    std::string line;
    uint64_t vm_kb = 0;
    while (std::getline(status, line)) {
      if (line.rfind("VmSize:", 0) == 0) vm_kb = std::stoull(line.substr(7));
    }
    lim.rlim_cur = (vm_kb << 10) + (64ull << 20);
    if (setrlimit(RLIMIT_AS, &lim) != 0) _exit(3);
    Result<std::unique_ptr<ThreadPool>> p = ThreadPool::Create(200);
    if (p.ok()) _exit(1);
    const bool named = p.status().code() == StatusCode::kResourceExhausted &&
                       p.status().message().find("of 200") != std::string::npos;
    _exit(named ? 0 : 2);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the threads started after all; 2: another error";
#endif
}

}  // namespace
}  // namespace sluice
