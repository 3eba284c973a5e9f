// ThreadPool: every index of [0, n) is visited exactly once, for all pool sizes and n (including
// n smaller than the pool), across many back-to-back jobs and after workers went to sleep.
#include "core/threads/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
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
  ThreadPool pool(2);
  ExpectEachIndexOnce(pool, 100);
  // Long enough for the workers to stop spinning and block in the kernel.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
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

}  // namespace
}  // namespace sluice
