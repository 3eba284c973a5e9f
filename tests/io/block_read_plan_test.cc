// Read plans (io/block_read_plan.h) and the weight cache on a GGUF-shaped file: blocks of three
// slices of three tensors at 32-byte (not 4 KiB) aligned offsets, the last one ending at the end
// of the file, no checksum.
#include "io/block_read_plan.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "io/io_probe.h"
#include "io/weight_cache.h"
#include "tests/support/test_util.h"

namespace sluice {
namespace {

WeightBlock Loc(uint64_t g, uint64_t gb, uint64_t u, uint64_t ub, uint64_t d, uint64_t db) {
  WeightBlock loc;
  loc.n_parts = 3;
  loc.parts[0] = {0, g, gb};
  loc.parts[1] = {0, u, ub};
  loc.parts[2] = {0, d, db};
  return loc;
}

TEST(BlockReadPlan, ArchiveBlockIsOneRead) {
  WeightBlock loc = Loc(8192, 1000, 8192 + 1024, 1000, 8192 + 2048, 999);
  loc.has_checksum = true;
  loc.xxh3 = 5;
  auto p = PlanBlockRead(loc);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->n_reads, 1);
  EXPECT_EQ(p->reads[0].offset, 8192u);
  EXPECT_EQ(p->reads[0].length, 4096u);
  EXPECT_EQ(p->reads[0].needed, 2048u + 999u);
  EXPECT_EQ(p->part_slot_offset[1], 1024u);
  EXPECT_EQ(p->part_slot_offset[2], 2048u);
  EXPECT_EQ(p->hash_slot_offset, 0u);
  EXPECT_EQ(p->hash_bytes, 2048u + 999u);
  EXPECT_EQ(p->slot_bytes, 4096u);
}

TEST(BlockReadPlan, GgufSlicesAreThreeAlignedReads) {
  // gate at 100 (pages 0..1), down at 50000 (pages 12..13), up at 20032 (page 4..5): sorted by
  // offset, each aligned outward, placed back to back.
  WeightBlock loc = Loc(100, 5000, 20032, 5000, 50000, 4000);
  auto p = PlanBlockRead(loc);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->n_reads, 3);
  EXPECT_EQ(p->reads[0].offset, 0u);
  EXPECT_EQ(p->reads[0].length, 8192u);
  EXPECT_EQ(p->reads[1].offset, 16384u);
  EXPECT_EQ(p->reads[1].length, 12288u);  // 16384..28672 covers 20032..25032
  EXPECT_EQ(p->reads[1].slot_offset, 8192u);
  EXPECT_EQ(p->reads[2].offset, 49152u);
  EXPECT_EQ(p->reads[2].slot_offset, 8192u + 12288u);
  EXPECT_EQ(p->part_slot_offset[0], 100u);
  EXPECT_EQ(p->part_slot_offset[1], 8192u + (20032u - 16384u));
  EXPECT_EQ(p->part_slot_offset[2], 8192u + 12288u + (50000u - 49152u));
  EXPECT_EQ(p->slot_bytes, p->reads[2].slot_offset + p->reads[2].length);
  loc.has_checksum = true;
  EXPECT_EQ(PlanBlockRead(loc).status().code(), StatusCode::kCorrupt);
}

TEST(BlockReadPlan, SlicesSharingAPageMerge) {
  auto p = PlanBlockRead(Loc(0, 4000, 4064, 100, 4200, 5000));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->n_reads, 1);
  EXPECT_EQ(p->reads[0].length, 12288u);
}

// A weight block table over a raw file laid out like a GGUF: three tensors one after another at
// 32-byte alignment; block e is a slice of each at tensor + e * slice bytes.
class GgufShapedTable : public WeightBlockTable {
 public:
  GgufShapedTable(std::string path, int n_block, uint64_t slice_bytes[3], uint64_t base)
      : paths_{std::move(path)}, n_block_(n_block) {
    uint64_t at = base;
    for (int k = 0; k < 3; ++k) {
      slice_[k] = slice_bytes[k];
      start_[k] = at;
      at += slice_bytes[k] * n_block;
      at = (at + 31) / 32 * 32;
    }
    end_ = start_[2] + slice_[2] * n_block;
  }
  uint32_t n_blocks() const override { return n_block_; }
  WeightBlock Locate(uint32_t id) const override {
    WeightBlock b;
    b.n_parts = 3;
    for (int k = 0; k < 3; ++k) b.parts[k] = {0, start_[k] + slice_[k] * id, slice_[k]};
    return b;
  }
  std::string Describe(uint32_t id) const override { return "slice " + std::to_string(id); }
  const std::vector<std::string>& file_paths() const override { return paths_; }
  uint64_t end() const { return end_; }

 private:
  std::vector<std::string> paths_;
  uint32_t n_block_;
  uint64_t slice_[3], start_[3], end_ = 0;
};

class GgufShapedCache : public ::testing::TestWithParam<IoBackendKind> {};

TEST_P(GgufShapedCache, ThreeReadsPerBlockMatchTheFile) {
  testing::ScratchDir dir;
  std::string path = dir.File("fake.gguf");
  uint64_t slices[3] = {10000, 10016, 9999};
  GgufShapedTable model(path, 5, slices, 736);
  std::vector<uint8_t> data(model.end());  // the file ends with the last down slice
  testing::FillBytes(3, 3, 3, 3, data.data(), data.size());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fd);
  if (GetParam() == IoBackendKind::kUring && !ProbeIo(path).uring_ok) {
    GTEST_SKIP() << "io_uring unavailable here: " << ProbeIo(path).uring_reason;
  }
  auto io = CreateIoBackend({.kind = GetParam(), .queue_depth = 4}, model.file_paths());
  ASSERT_TRUE(io.ok());
  auto cache = WeightCache::Create(model, io->get(), {.budget_bytes = 2 << 20});
  ASSERT_TRUE(cache.ok()) << cache.status().ToString();
  for (uint32_t e : {4, 0, 2, 4, 1, 3}) {
    std::vector<uint32_t> ids = {e};
    (*cache)->Prefetch(ids);
    auto ref = (*cache)->Acquire(e);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    WeightBlock loc = model.Locate(e);
    for (int k = 0; k < 3; ++k) {
      EXPECT_EQ(0, std::memcmp(ref->part(k), data.data() + loc.parts[k].offset, loc.parts[k].bytes))
          << "block " << e << " part " << k;
    }
    (*cache)->Release(*ref);
  }
  EXPECT_EQ((*cache)->counters().reads_completed, 3u * 5u);
}

INSTANTIATE_TEST_SUITE_P(Backends, GgufShapedCache,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) { return IoBackendKindName(info.param); });

}  // namespace
}  // namespace sluice
