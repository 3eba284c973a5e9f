// ExpertCache over real archives and a GGUF-shaped file, on both backends: bytes equal the file,
// checksum and I/O failures never hand out data, budget, pins, policies and concurrency.
#include "moe/expert_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include "core/base/byte_size.h"
#include "io/archive_reader.h"
#include "io/io_probe.h"
#include "tests/support/test_util.h"

namespace sluice {
namespace {

using testing::RandomArchiveSpec;

bool MatrixEquals(const ExpertRef& ref, const RandomArchiveSpec& spec, int layer, int expert) {
  for (int k = 0; k < 3; ++k) {
    std::vector<uint8_t> want = testing::ExpertMatrixBytes(spec, layer, expert, k);
    if (std::memcmp(ref.matrix(static_cast<ExpertMatrix>(k)), want.data(), want.size()) != 0) {
      return false;
    }
  }
  return true;
}

// Fails every read that touches `eio_offset` with -EIO; optionally shortens, interrupts and
// delays the others (aligned, with the skipped bytes scribbled).
class Faults : public IoFaultInjector {
 public:
  explicit Faults(uint64_t eio_offset, bool noisy) : eio_offset_(eio_offset), noisy_(noisy) {}
  int64_t OnRead(int, uint64_t offset, uint64_t length, uint8_t* dest, int64_t result) override {
    if (offset <= eio_offset_ && eio_offset_ < offset + length) return -EIO;
    if (!noisy_) return result;
    uint32_t dice = counter_.fetch_add(1) * 2654435761u % 100;
    if (dice < 3) std::this_thread::sleep_for(std::chrono::microseconds(300));
    if (dice < 10) return -EINTR;
    if (dice < 20) return -EAGAIN;
    if (dice < 45 && result >= 8192) {
      int64_t cut = static_cast<int64_t>(AlignDown(static_cast<uint64_t>(result) / 2, 4096));
      std::memset(dest + cut, 0xA5, static_cast<size_t>(result - cut));
      return cut;
    }
    return result;
  }

 private:
  uint64_t eio_offset_;
  bool noisy_;
  std::atomic<uint32_t> counter_{0};
};

class CacheTest : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  void SetUp() override {
    path_ = dir_.File("m.sluice");
    ASSERT_TRUE(testing::WriteRandomArchive(spec_, path_).ok());
    if (GetParam() == IoBackendKind::kUring) {
      IoProbeResult probe = ProbeIo(path_);
      if (!probe.uring_ok) GTEST_SKIP() << "io_uring unavailable here: " << probe.uring_reason;
    }
    OpenModel();
  }
  void OpenModel() {
    auto r = ArchiveReader::Open(path_);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    model_ = std::move(*r);
  }
  void MakeIo(IoFaultInjector* faults = nullptr, int queue_depth = 4) {
    auto io = CreateIoBackend({.kind = GetParam(), .queue_depth = queue_depth, .faults = faults},
                              model_->file_paths());
    ASSERT_TRUE(io.ok()) << io.status().ToString();
    io_ = std::move(*io);
  }
  int NLayer() const {
    return *std::max_element(spec_.expert_layers.begin(), spec_.expert_layers.end()) + 1;
  }
  // Slot size of this archive: one aligned read of the block.
  uint64_t SlotBytes() const {
    const ExpertLayerEntry& e = model_->expert_layer_entries()[0];
    return AlignUp(e.block_bytes, 4096);
  }
  std::unique_ptr<ExpertCache> MakeCache(int slots,
                                         EvictionPolicyKind policy = EvictionPolicyKind::kLru) {
    auto c = ExpertCache::Create(
        *model_, NLayer(), io_.get(),
        {.budget_bytes = SlotBytes() * slots + 100, .min_resident_blocks = 2, .policy = policy});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  testing::ScratchDir dir_;
  // 3 expert layers x 7 experts of ~36 KB (odd sizes: 97-element i8 rows).
  RandomArchiveSpec spec_{
      .seed = 9, .expert_layers = {0, 1, 3}, .n_expert = 7, .n_embd = 97, .n_ff = 125};
  std::string path_;
  std::unique_ptr<ArchiveReader> model_;
  std::unique_ptr<IoBackend> io_;
};

TEST_P(CacheTest, EveryExpertReadsBackExactly) {
  MakeIo();
  auto cache = MakeCache(21);
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->slot_count(), 21);
  EXPECT_EQ(cache->slot_bytes(), SlotBytes());
  for (int pass = 0; pass < 2; ++pass) {
    for (int layer : spec_.expert_layers) {
      std::vector<int> ids = {6, 0, 3, 1, 5, 2, 4};
      cache->Prefetch(layer, ids);
      for (int e : ids) {
        Result<ExpertRef> ref = cache->Acquire(layer, e);
        ASSERT_TRUE(ref.ok()) << ref.status().ToString();
        EXPECT_TRUE(MatrixEquals(*ref, spec_, layer, e)) << layer << "," << e;
        cache->Release(*ref);
        EXPECT_FALSE(ref->valid());
      }
    }
  }
  ExpertCacheCounters c = cache->counters();
  EXPECT_EQ(c.misses, 21u);
  EXPECT_EQ(c.hits, 21u);
  EXPECT_EQ(c.prefetch_reads, 21u);
  EXPECT_EQ(c.bytes_read, 21 * SlotBytes());
  EXPECT_EQ(c.reads_completed, 21u);  // one read per archive expert
  EXPECT_EQ(c.reads_in_flight, 0u);
  EXPECT_EQ(c.checksum_failures, 0u);
  cache->Clear();
  auto ref = cache->Acquire(1, 2);
  ASSERT_TRUE(ref.ok());
  cache->Release(*ref);
  EXPECT_EQ(cache->counters().misses, 22u);
}

TEST_P(CacheTest, CorruptedBlockIsAnErrorNamingEverything) {
  const uint64_t block = model_->expert_block_offset(1, 3);
  const uint64_t expected = model_->LocateExpert(1, 3).xxh3;
  model_.reset();
  int fd = open(path_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t b = 0;
  ASSERT_EQ(pread(fd, &b, 1, static_cast<off_t>(block + 777)), 1);
  b ^= 1;
  ASSERT_EQ(pwrite(fd, &b, 1, static_cast<off_t>(block + 777)), 1);
  close(fd);
  OpenModel();
  MakeIo();
  auto cache = MakeCache(4);
  ASSERT_NE(cache, nullptr);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the bad bytes are never kept
    Result<ExpertRef> ref = cache->Acquire(1, 3);
    ASSERT_FALSE(ref.ok());
    const std::string& msg = ref.status().message();
    EXPECT_EQ(ref.status().code(), StatusCode::kCorrupt);
    char hex[32];
    std::snprintf(hex, sizeof(hex), "0x%016llx", static_cast<unsigned long long>(expected));
    EXPECT_NE(msg.find(path_), std::string::npos) << msg;
    EXPECT_NE(msg.find("expert (layer 1, expert 3) at offset " + std::to_string(block)),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find(std::string("xxh3 expected ") + hex + ", found 0x"), std::string::npos)
        << msg;
  }
  EXPECT_EQ(cache->counters().checksum_failures, 2u);
  auto good = cache->Acquire(1, 4);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(MatrixEquals(*good, spec_, 1, 4));
  cache->Release(*good);
}

TEST_P(CacheTest, IoErrorSurfacesAndNoisyDiskNeverCorrupts) {
  const uint64_t bad = model_->expert_block_offset(3, 5) + 4096;
  Faults faults(bad, /*noisy=*/true);
  MakeIo(&faults, 3);
  auto cache = MakeCache(5);
  ASSERT_NE(cache, nullptr);
  std::vector<int> all = {0, 1, 2, 3, 4, 5, 6};
  for (int round = 0; round < 3; ++round) {
    for (int layer : spec_.expert_layers) {
      cache->Prefetch(layer, std::span(all).subspan(0, 3));
      for (int e : all) {
        Result<ExpertRef> ref = cache->Acquire(layer, e);
        if (layer == 3 && e == 5) {
          ASSERT_FALSE(ref.ok());
          EXPECT_EQ(ref.status().code(), StatusCode::kIoError);
          EXPECT_NE(ref.status().message().find("reading expert (layer 3, expert 5)"),
                    std::string::npos)
              << ref.status().message();
          EXPECT_NE(ref.status().message().find("Input/output error"), std::string::npos);
          continue;
        }
        ASSERT_TRUE(ref.ok()) << ref.status().ToString();
        EXPECT_TRUE(MatrixEquals(*ref, spec_, layer, e)) << layer << "," << e;
        cache->Release(*ref);
      }
    }
  }
  EXPECT_EQ(cache->counters().checksum_failures, 0u);
  EXPECT_GT(io_->counters().short_reads, 0u);
  EXPECT_GT(io_->counters().retries, 0u);
}

TEST_P(CacheTest, BudgetBelowTheMinimumIsRefusedWithTheMinimum) {
  MakeIo();
  const uint64_t min_bytes = 4 * SlotBytes();
  auto c = ExpertCache::Create(*model_, NLayer(), io_.get(),
                               {.budget_bytes = min_bytes - 1, .min_resident_blocks = 4});
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("below the minimum of " + FormatBytes(min_bytes) + " (" +
                                      std::to_string(min_bytes) + " bytes)"),
            std::string::npos)
      << c.status().message();
  auto ok = ExpertCache::Create(*model_, NLayer(), io_.get(),
                                {.budget_bytes = min_bytes, .min_resident_blocks = 4});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)->slot_count(), 4);
}

TEST_P(CacheTest, PinnedExpertsSurviveEvictionPressure) {
  MakeIo();
  auto cache = MakeCache(4);
  ASSERT_NE(cache, nullptr);
  auto a = cache->Acquire(0, 1);
  auto b = cache->Acquire(3, 6);
  ASSERT_TRUE(a.ok() && b.ok());
  const uint8_t* a_gate = a->matrix(ExpertMatrix::kGate);
  for (int round = 0; round < 5; ++round) {
    for (int layer : spec_.expert_layers) {
      for (int e = 0; e < 7; ++e) {
        if ((layer == 0 && e == 1) || (layer == 3 && e == 6)) continue;
        cache->Prefetch(layer, std::vector<int>{e, (e + 1) % 7, (e + 2) % 7});
        auto r = cache->Acquire(layer, e);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        cache->Release(*r);
      }
    }
  }
  EXPECT_GT(cache->counters().evictions, 20u);
  EXPECT_EQ(a->matrix(ExpertMatrix::kGate), a_gate);
  EXPECT_TRUE(MatrixEquals(*a, spec_, 0, 1));
  EXPECT_TRUE(MatrixEquals(*b, spec_, 3, 6));
  const uint64_t hits = cache->counters().hits;
  auto again = cache->Acquire(0, 1);  // still resident: a hit, same bytes
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(cache->counters().hits, hits + 1);
  EXPECT_EQ(again->matrix(ExpertMatrix::kGate), a_gate);
  cache->Release(*again);
  cache->Release(*a);
  cache->Release(*b);
}

TEST_P(CacheTest, AllSlotsPinnedIsResourceExhausted) {
  MakeIo();
  auto cache = MakeCache(2);
  ASSERT_NE(cache, nullptr);
  auto a = cache->Acquire(0, 0);
  auto b = cache->Acquire(0, 1);
  ASSERT_TRUE(a.ok() && b.ok());
  cache->Prefetch(0, std::vector<int>{2});
  EXPECT_EQ(cache->counters().prefetch_skipped, 1u);
  auto c = cache->Acquire(0, 2);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("all 2 slots are pinned"), std::string::npos);
  cache->Release(*a);
  auto d = cache->Acquire(0, 2);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(MatrixEquals(*d, spec_, 0, 2));
  cache->Release(*b);
  cache->Release(*d);
}

// LRU evicts the expert released longest ago even if it was used most; LFU keeps the frequent one.
TEST_P(CacheTest, LruAndLfuEvictAsSpecified) {
  MakeIo();
  for (EvictionPolicyKind policy : {EvictionPolicyKind::kLru, EvictionPolicyKind::kLfuDecay}) {
    auto cache = MakeCache(3, policy);
    ASSERT_NE(cache, nullptr);
    auto use = [&](int e) {
      auto r = cache->Acquire(0, e);
      ASSERT_TRUE(r.ok());
      cache->Release(*r);
    };
    for (int i = 0; i < 6; ++i) use(0);  // hot
    use(1);
    use(2);
    use(3);  // evicts: LRU -> 0 (released longest ago); LFU -> 1 (fewest uses, oldest)
    const uint64_t misses = cache->counters().misses;
    use(0);
    if (policy == EvictionPolicyKind::kLru) {
      EXPECT_EQ(cache->counters().misses, misses + 1) << "LRU should have evicted expert 0";
    } else {
      EXPECT_EQ(cache->counters().misses, misses) << "LFU should have kept expert 0";
      use(2);
      EXPECT_EQ(cache->counters().misses, misses) << "LFU should have evicted 1, not 2";
      use(1);
      EXPECT_EQ(cache->counters().misses, misses + 1);
    }
  }
}

TEST_P(CacheTest, ConcurrentPrefetchAndAcquireStayCorrectAndInBudget) {
  MakeIo(nullptr, 3);
  const int slots = 6;
  const uint64_t budget = SlotBytes() * slots + 100;
  auto made = ExpertCache::Create(*model_, NLayer(), io_.get(),
                                  {.budget_bytes = budget, .min_resident_blocks = 2});
  ASSERT_TRUE(made.ok());
  ExpertCache* cache = made->get();
  EXPECT_LE(cache->allocated_bytes(), budget);
  std::atomic<uintptr_t> lo{~uintptr_t{0}}, hi{0};
  std::atomic<int> errors{0}, held{0}, max_held{0};
  auto worker = [&](int id) {
    std::mt19937 rng(id);
    for (int i = 0; i < 300; ++i) {
      int layer = spec_.expert_layers[rng() % 3];
      std::vector<int> ids = {static_cast<int>(rng() % 7), static_cast<int>(rng() % 7)};
      cache->Prefetch(layer, ids);
      auto r = cache->Acquire(layer, ids[rng() % 2]);
      if (!r.ok()) {
        ++errors;
        continue;
      }
      int now = ++held;
      int seen = max_held.load();
      while (now > seen && !max_held.compare_exchange_weak(seen, now)) {
      }
      if (!MatrixEquals(*r, spec_, layer, r->expert())) ++errors;
      for (int k = 0; k < 3; ++k) {
        uintptr_t p = reinterpret_cast<uintptr_t>(r->matrix(static_cast<ExpertMatrix>(k)));
        uintptr_t cur = lo.load();
        while (p < cur && !lo.compare_exchange_weak(cur, p)) {
        }
        cur = hi.load();
        while (p + 1 > cur && !hi.compare_exchange_weak(cur, p + 1)) {
        }
      }
      --held;
      cache->Release(*r);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  // Every byte handed out lies in one span no larger than the budget.
  EXPECT_LE(hi.load() - lo.load(), budget);
  // The last prefetches may still be reading (nobody acquires them); they must all finish.
  // (reads_in_flight() is the cheap form of counters().reads_in_flight: waiting on it must be
  // enough for the counters to show nothing in flight.)
  cache->WaitIdle();
  ExpertCacheCounters c = cache->counters();
  EXPECT_EQ(c.hits + c.misses, 4u * 300u);
  EXPECT_EQ(c.reads_in_flight, 0u);
  EXPECT_LE(max_held.load(), 4);
}

TEST_P(CacheTest, AcquireAnyReturnsEachExpertOnceInArrivalOrder) {
  const uint64_t bad = model_->expert_block_offset(1, 4) + 100;
  Faults faults(bad, /*noisy=*/true);
  MakeIo(&faults, 4);
  auto cache = MakeCache(6);
  ASSERT_NE(cache, nullptr);
  for (int layer : spec_.expert_layers) {
    std::vector<int> window = {5, 0, 6, 2, 4, 1};
    std::vector<int> seen;
    bool saw_error = false;
    while (!window.empty()) {
      int index = -1;
      Result<ExpertRef> ref = cache->AcquireAny(layer, window, &index);
      ASSERT_GE(index, 0);
      ASSERT_LT(index, static_cast<int>(window.size()));
      const int e = window[index];
      if (layer == 1 && e == 4) {
        ASSERT_FALSE(ref.ok());
        EXPECT_NE(ref.status().message().find("reading expert (layer 1, expert 4)"),
                  std::string::npos)
            << ref.status().message();
        saw_error = true;
      } else {
        ASSERT_TRUE(ref.ok()) << ref.status().ToString();
        EXPECT_EQ(ref->expert(), e);
        EXPECT_TRUE(MatrixEquals(*ref, spec_, layer, e)) << layer << "," << e;
        cache->Release(*ref);
      }
      seen.push_back(e);
      window.erase(window.begin() + index);
    }
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 4, 5, 6}));
    EXPECT_EQ(saw_error, layer == 1);
  }
  ExpertCacheCounters c = cache->counters();
  EXPECT_EQ(c.misses, 18u);  // every use was a cold read, the failed one included
  EXPECT_EQ(c.hits, 0u);
  EXPECT_EQ(c.read_errors, 1u);
}

// A prefetched expert not yet used is evicted only when no used expert is evictable.
TEST_P(CacheTest, PrefetchedExpertsAreEvictedLast) {
  MakeIo();
  auto cache = MakeCache(3);
  ASSERT_NE(cache, nullptr);
  auto use = [&](int e) {
    auto r = cache->Acquire(0, e);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(MatrixEquals(*r, spec_, 0, e));
    cache->Release(*r);
  };
  use(0);
  use(1);
  cache->Prefetch(0, std::vector<int>{2});  // completes before 0 and 1 are used again
  cache->WaitIdle();
  use(3);  // needs a victim: 0 (least recently used), not the unused prefetch of 2
  const uint64_t reads = cache->counters().reads_completed;
  use(2);  // its prefetched read serves it
  EXPECT_EQ(cache->counters().reads_completed, reads);
  EXPECT_EQ(cache->counters().prefetch_wasted, 0u);
  // Only unused prefetches left to evict: the oldest goes, and is counted as wasted.
  cache->Clear();
  cache->Prefetch(0, std::vector<int>{4, 5, 6});
  cache->WaitIdle();
  use(1);
  EXPECT_EQ(cache->counters().prefetch_wasted, 1u);
  EXPECT_EQ(cache->counters().prefetch_reads, 4u);
}

// A wrong next-layer guess is dropped: its slot is freed (settled: at once; still loading: when
// its reads are in), it counts as wasted, and used or pinned experts are never dropped.
TEST_P(CacheTest, DropFreesUnusedPrefetchesOnly) {
  MakeIo();
  auto cache = MakeCache(4);
  ASSERT_NE(cache, nullptr);
  auto acquired = cache->Acquire(1, 0);  // pinned
  ASSERT_TRUE(acquired.ok()) << acquired.status().ToString();
  auto used = cache->Acquire(1, 1);  // used, then released: an ordinary LRU entry
  ASSERT_TRUE(used.ok());
  cache->Release(*used);
  cache->Prefetch(1, std::vector<int>{2, 3});
  EXPECT_TRUE(cache->Contains(1, 2));
  EXPECT_TRUE(cache->Contains(1, 3));
  EXPECT_FALSE(cache->Contains(1, 4));
  // Dropped right away: 2 and 3 may still be loading; both must end up freed either way.
  cache->Drop(1, std::vector<int>{0, 1, 2, 3, 4});
  cache->WaitIdle();
  EXPECT_TRUE(cache->Contains(1, 0));  // pinned: kept
  EXPECT_TRUE(cache->Contains(1, 1));  // used before: kept
  EXPECT_FALSE(cache->Contains(1, 2));
  EXPECT_FALSE(cache->Contains(1, 3));
  EXPECT_EQ(cache->counters().prefetch_wasted, 2u);
  EXPECT_EQ(cache->counters().evictions, 0u);  // freed, not evicted: nothing else was pushed out
  // The freed slots serve new experts without evicting the used one, and their bytes are right.
  for (int e : {5, 6}) {
    auto r = cache->Acquire(1, e);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(MatrixEquals(*r, spec_, 1, e));
    cache->Release(*r);
  }
  EXPECT_TRUE(cache->Contains(1, 1));
  cache->Release(*acquired);
}

INSTANTIATE_TEST_SUITE_P(Backends, CacheTest,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) { return IoBackendKindName(info.param); });

}  // namespace
}  // namespace sluice
