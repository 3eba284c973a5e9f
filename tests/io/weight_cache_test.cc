// The weight cache on blocks that are not experts: one file of blocks of many sizes (the size
// classes), a cyclic schedule (ordered mode), checksums naming the block, the counters' difference.
// Both backends; io_uring skips where the kernel refuses it.
#include "io/weight_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "io/io_probe.h"
#include "io/xxh3.h"
#include "tests/support/test_util.h"

namespace sluice {
namespace {

// Blocks laid one after another in one file, each 4 KiB aligned (as the archive writes them),
// one part each, with its xxh3.
class FileTable : public WeightBlockTable {
 public:
  FileTable(std::string path, const std::vector<uint64_t>& sizes) : paths_{std::move(path)} {
    uint64_t at = 0;
    for (uint64_t s : sizes) {
      offsets_.push_back(at);
      sizes_.push_back(s);
      at += (s + 4095) / 4096 * 4096;
    }
    bytes_.resize(at);
    testing::FillBytes(11, 1, 2, 3, bytes_.data(), bytes_.size());
    int fd = open(paths_[0].c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(write(fd, bytes_.data(), bytes_.size()) == static_cast<ssize_t>(bytes_.size()));
    close(fd);
  }
  uint32_t n_blocks() const override { return static_cast<uint32_t>(sizes_.size()); }
  WeightBlock Locate(uint32_t id) const override {
    WeightBlock b;
    b.n_parts = 1;
    b.parts[0] = {0, offsets_[id], sizes_[id]};
    b.has_checksum = true;
    b.xxh3 = corrupt_id_ == static_cast<int64_t>(id) ? 1 : Xxh3_64(Bytes(id), sizes_[id]);
    return b;
  }
  std::string Describe(uint32_t id) const override { return "unet block " + std::to_string(id); }
  const std::vector<std::string>& file_paths() const override { return paths_; }
  const uint8_t* Bytes(uint32_t id) const { return bytes_.data() + offsets_[id]; }
  uint64_t Size(uint32_t id) const { return sizes_[id]; }
  void CorruptChecksumOf(int64_t id) { corrupt_id_ = id; }

 private:
  std::vector<std::string> paths_;
  std::vector<uint64_t> offsets_, sizes_;
  std::vector<uint8_t> bytes_;
  int64_t corrupt_id_ = -1;
};

class WeightCacheTest : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  void Open(const FileTable& table) {
    if (GetParam() == IoBackendKind::kUring && !ProbeIo(table.file_paths()[0]).uring_ok) {
      GTEST_SKIP() << "io_uring unavailable here: " << ProbeIo(table.file_paths()[0]).uring_reason;
    }
    auto io = CreateIoBackend({.kind = GetParam(), .queue_depth = 4}, table.file_paths());
    ASSERT_TRUE(io.ok()) << io.status().ToString();
    io_ = std::move(*io);
  }
  // Acquires `id`, checks its bytes against the file, releases it.
  void UseAndCheck(WeightCache& cache, const FileTable& table, uint32_t id) {
    auto ref = cache.Acquire(id);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    EXPECT_EQ(0, std::memcmp(ref->part(0), table.Bytes(id), table.Size(id))) << "block " << id;
    cache.Release(*ref);
  }

  testing::ScratchDir dir_;
  std::unique_ptr<IoBackend> io_;
};

TEST_P(WeightCacheTest, MixedSizesShareTheBudgetInSizeClasses) {
  // Sizes from 5 KB to 900 KB, as a diffusion model's blocks range from a norm to a conv.
  std::mt19937_64 rng(5);
  std::vector<uint64_t> sizes;
  for (int i = 0; i < 40; ++i) sizes.push_back(5000 + rng() % 900000);
  FileTable table(dir_.File("blocks.bin"), sizes);
  Open(table);
  if (!io_) return;
  uint64_t total = 0;
  for (uint64_t s : sizes) total += s;
  const uint64_t budget = total / 3;
  auto cache = WeightCache::Create(table, io_.get(), {.budget_bytes = budget});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  WeightCache& c = **cache;
  EXPECT_LE(c.allocated_bytes(), budget);
  EXPECT_GT(c.size_class_count(), 1);
  // A class holds sizes down to 0.8 of its slot: the padding is at most a fifth (+ alignment).
  EXPECT_GT(c.padding_fraction(), 0.0);
  EXPECT_LT(c.padding_fraction(), 0.25);
  for (int i = 0; i < 300; ++i) {
    const uint32_t id = static_cast<uint32_t>(rng() % sizes.size());
    std::vector<uint32_t> ahead = {id, static_cast<uint32_t>((id + 1) % sizes.size())};
    c.Prefetch(ahead);
    UseAndCheck(c, table, id);
  }
  const WeightCacheCounters n = c.counters();
  EXPECT_EQ(n.hits + n.misses, 300u);
  EXPECT_GT(n.evictions, 0u);  // a third of the bytes cannot hold them all
  EXPECT_EQ(n.checksum_failures + n.read_errors, 0u);
}

TEST_P(WeightCacheTest, OrderedModeKeepsTheScheduleHeadAndStreamsTheRest) {
  // 10 blocks of one size, 6 slots, 2 of them streaming: the first 4 of the schedule stay.
  FileTable table(dir_.File("blocks.bin"), std::vector<uint64_t>(10, 20000));
  Open(table);
  if (!io_) return;
  std::vector<uint32_t> schedule = {3, 1, 4, 0, 5, 9, 2, 6, 8, 7};
  const uint64_t slot = 20480;
  for (bool ordered : {true, false}) {
    WeightCacheOptions o{.budget_bytes = 6 * slot};
    if (ordered) o.schedule = schedule;
    auto cache = WeightCache::Create(table, io_.get(), o);
    ASSERT_TRUE(cache.ok()) << cache.status().ToString();
    WeightCache& c = **cache;
    ASSERT_EQ(c.slot_count(), 6);
    for (int step = 0; step < 3; ++step) {
      const WeightCacheCounters before = c.counters();
      for (size_t i = 0; i < schedule.size(); ++i) {
        std::vector<uint32_t> next = {schedule[(i + 1) % schedule.size()]};
        UseAndCheck(c, table, schedule[i]);
        c.Prefetch(next);  // read ahead along the schedule
      }
      const WeightCacheCounters d = c.counters() - before;
      EXPECT_EQ(d.hits + d.misses, 10u);
      if (step == 0) continue;  // the first step reads everything
      // Ordered: the 4 kept blocks hit, the other 6 stream through 2 slots and miss. LRU on a
      // cycle longer than the cache evicts each block just before its next use: every use misses
      // (the one read ahead counts as a miss too, since its bytes were read for this use).
      EXPECT_EQ(d.misses, ordered ? 6u : 10u) << (ordered ? "ordered" : "lru") << " step " << step;
      if (ordered) {
        for (uint32_t kept : {3u, 1u, 4u, 0u}) EXPECT_TRUE(c.Contains(kept)) << kept;
      }
    }
  }
}

TEST_P(WeightCacheTest, ABadChecksumNamesTheFileTheBlockAndTheValues) {
  FileTable table(dir_.File("blocks.bin"), {9000, 7000, 12000});
  table.CorruptChecksumOf(1);
  Open(table);
  if (!io_) return;
  auto cache = WeightCache::Create(table, io_.get(), {.budget_bytes = 1 << 20});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  auto bad = (*cache)->Acquire(1);
  ASSERT_FALSE(bad.ok());
  const std::string msg = bad.status().message();
  EXPECT_NE(msg.find(table.file_paths()[0] + ": unet block 1 at offset 12288 (7000 bytes)"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("xxh3 expected 0x0000000000000001"), std::string::npos) << msg;
  EXPECT_EQ((*cache)->counters().checksum_failures, 1u);
  UseAndCheck(**cache, table, 2);  // the others are unaffected
}

TEST_P(WeightCacheTest, BudgetBelowEveryClassMinimumIsRefusedWithTheMinimum) {
  FileTable table(dir_.File("blocks.bin"), {400000, 400000, 30000, 30000});
  Open(table);
  if (!io_) return;
  // Two classes (401408 and 32768 bytes a slot), two blocks each at once: 868352 bytes.
  auto c =
      WeightCache::Create(table, io_.get(), {.budget_bytes = 868351, .min_resident_blocks = 2});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("(868352 bytes)"), std::string::npos) << c.status().message();
  EXPECT_TRUE(
      WeightCache::Create(table, io_.get(), {.budget_bytes = 868352, .min_resident_blocks = 2})
          .ok());
}

INSTANTIATE_TEST_SUITE_P(Backends, WeightCacheTest,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) { return IoBackendKindName(info.param); });

}  // namespace
}  // namespace sluice
