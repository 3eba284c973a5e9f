// The ordered stream: blocks at unaligned offsets (as in a safetensors file) used pass after pass
// in an announced order, at the smallest ring and larger ones, with and without resident blocks:
// every use returns the file's bytes, resident blocks are read once, the ring's minimum is named,
// a wrong order, a ring full of held blocks, a bad checksum and a truncated file are errors that
// name the block. Both backends; io_uring skips where the kernel refuses it.
#include "io/ordered_stream.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <random>

#include "io/io_probe.h"
#include "io/xxh3.h"
#include "tests/support/test_util.h"

namespace sluice {
namespace {

// Blocks one after another at odd offsets in one file, one part each, optionally with xxh3.
class OddTable : public WeightBlockTable {
 public:
  OddTable(std::string path, const std::vector<uint64_t>& sizes, bool checksums)
      : paths_{std::move(path)}, checksums_(checksums) {
    uint64_t at = 123;  // a header, as safetensors has
    for (uint64_t s : sizes) {
      offsets_.push_back(at);
      sizes_.push_back(s);
      at += s + 37;
    }
    bytes_.resize(at);
    testing::FillBytes(7, 3, 2, 1, bytes_.data(), bytes_.size());
    int fd = open(paths_[0].c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(write(fd, bytes_.data(), bytes_.size()) == static_cast<ssize_t>(bytes_.size()));
    close(fd);
  }
  uint32_t n_blocks() const override { return static_cast<uint32_t>(sizes_.size()); }
  WeightBlock Locate(uint32_t id) const override {
    WeightBlock b;
    b.n_parts = 1;
    b.parts[0] = {0, offsets_[id], sizes_[id]};
    b.has_checksum = checksums_;
    if (checksums_) {
      b.xxh3 = corrupt_id_ == static_cast<int64_t>(id) ? 1 : Xxh3_64(Bytes(id), sizes_[id]);
    }
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
  bool checksums_;
  int64_t corrupt_id_ = -1;
};

class OrderedStreamTest : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  bool Open(const OddTable& table) {
    if (GetParam() == IoBackendKind::kUring && !ProbeIo(table.file_paths()[0]).uring_ok) {
      return false;
    }
    auto io = CreateIoBackend({.kind = GetParam(), .queue_depth = 4}, table.file_paths());
    EXPECT_TRUE(io.ok()) << io.status().ToString();
    if (!io.ok()) return false;
    io_ = std::move(*io);
    return true;
  }
  // Uses `id` as the next announced block and checks its bytes against the file.
  void UseAndCheck(OrderedStream& s, const OddTable& table, uint32_t id) {
    auto ref = s.Next(id);
    ASSERT_TRUE(ref.ok()) << ref.status().ToString();
    EXPECT_EQ(0, std::memcmp(ref->part[0], table.Bytes(id), table.Size(id))) << "block " << id;
    s.Release(*ref);
  }

  testing::ScratchDir dir_;
  std::unique_ptr<IoBackend> io_;
};

std::vector<uint64_t> MixedSizes(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> sizes;
  for (int i = 0; i < n; ++i) sizes.push_back(1000 + rng() % 300000);
  return sizes;
}

TEST_P(OrderedStreamTest, PassesReturnTheFilesBytesAtEveryRingSize) {
  const std::vector<uint64_t> sizes = MixedSizes(30, 1);
  OddTable table(dir_.File("blocks.bin"), sizes, /*checksums=*/true);
  if (!Open(table)) GTEST_SKIP() << "io_uring unavailable here";
  std::vector<uint32_t> pass;  // a text encoder once (0..4), a UNet 3 times (5..24), a VAE once
  for (uint32_t id = 5; id < 25; ++id) pass.push_back(id);
  auto min = OrderedStream::MinRingBytes(table, {});
  ASSERT_TRUE(min.ok());
  for (uint64_t ring : {*min, *min * 3, uint64_t{64} << 20}) {
    for (bool with_resident : {false, true}) {
      std::vector<uint32_t> resident;
      if (with_resident) resident = {5, 6, 7, 8};  // the first of the repeated pass
      auto s = OrderedStream::Create(table, io_.get(), {.ring_bytes = ring, .resident = resident});
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      OrderedStream& st = **s;
      std::vector<uint32_t> text = {0, 1, 2, 3, 4}, vae = {25, 26, 27, 28, 29};
      st.Enqueue(text);
      st.Enqueue(pass);  // announced a pass ahead, as the sampler does
      for (uint32_t id : text) UseAndCheck(st, table, id);
      for (int step = 0; step < 3; ++step) {
        if (step < 2)
          st.Enqueue(pass);
        else
          st.Enqueue(vae);
        for (uint32_t id : pass) UseAndCheck(st, table, id);
      }
      for (uint32_t id : vae) UseAndCheck(st, table, id);
      EXPECT_EQ(st.pending(), 0u);
      const OrderedStreamCounters c = st.counters();
      EXPECT_EQ(c.uses, 70u);
      EXPECT_EQ(c.resident_uses, with_resident ? 8u : 0u);  // read once, used 3 times
      EXPECT_EQ(c.read_errors + c.checksum_failures, 0u);
      // Bytes read: every streamed use once, every resident block once (aligned reads).
      uint64_t expect = 0;
      for (uint32_t id = 0; id < 30; ++id) {
        const bool res = with_resident && id >= 5 && id <= 8;
        const int uses = (id >= 5 && id < 25) ? 3 : 1;
        auto b = OrderedStream::BlockBytes(table, id);
        ASSERT_TRUE(b.ok());
        expect += (res ? 1 : uses) * *b;
      }
      EXPECT_LE(c.bytes_read, expect);
      EXPECT_GE(c.bytes_read, expect - 30 * 4096 * 3);  // the file's end cuts the last read
      EXPECT_EQ(st.allocated_bytes() >= st.ring_bytes() + st.resident_bytes(), true);
    }
  }
}

TEST_P(OrderedStreamTest, ARingBelowTheMinimumIsRefusedNamingIt) {
  OddTable table(dir_.File("blocks.bin"), MixedSizes(10, 2), false);
  if (!Open(table)) GTEST_SKIP() << "io_uring unavailable here";
  auto min = OrderedStream::MinRingBytes(table, {});
  ASSERT_TRUE(min.ok());
  auto s = OrderedStream::Create(table, io_.get(), {.ring_bytes = *min - 4096});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(s.status().message().find(std::to_string(*min) + " bytes"), std::string::npos)
      << s.status().ToString();
  // Every block resident: no ring needed.
  std::vector<uint32_t> all;
  for (uint32_t id = 0; id < 10; ++id) all.push_back(id);
  auto m0 = OrderedStream::MinRingBytes(table, all);
  ASSERT_TRUE(m0.ok());
  EXPECT_EQ(*m0, 0u);
}

TEST_P(OrderedStreamTest, WrongOrderAndAFullRingAreErrorsNotHangs) {
  OddTable table(dir_.File("blocks.bin"), std::vector<uint64_t>(6, 100000), false);
  if (!Open(table)) GTEST_SKIP() << "io_uring unavailable here";
  auto min = OrderedStream::MinRingBytes(table, {});
  ASSERT_TRUE(min.ok());
  auto s = OrderedStream::Create(table, io_.get(), {.ring_bytes = *min});
  ASSERT_TRUE(s.ok());
  OrderedStream& st = **s;
  auto none = st.Next(0);
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  std::vector<uint32_t> order = {0, 1, 2, 3};
  st.Enqueue(order);
  auto wrong = st.Next(2);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("unet block 2 used where unet block 0"),
            std::string::npos)
      << wrong.status().ToString();
  // The minimal ring holds three blocks: holding them, the fourth cannot come.
  auto a = st.Next(0);
  auto b = st.Next(1);
  auto c = st.Next(2);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  auto d = st.Next(3);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(d.status().message().find("unet block 3"), std::string::npos) << d.status().ToString();
  // Releasing lets it through.
  st.Release(*a);
  st.Release(*b);
  UseAndCheck(st, table, 3);
  st.Release(*c);
}

TEST_P(OrderedStreamTest, ABadChecksumNamesTheBlockAndTheRestGoesOn) {
  OddTable table(dir_.File("blocks.bin"), MixedSizes(8, 3), true);
  if (!Open(table)) GTEST_SKIP() << "io_uring unavailable here";
  table.CorruptChecksumOf(3);
  auto s = OrderedStream::Create(table, io_.get(), {.ring_bytes = 4 << 20, .resident = {3}});
  ASSERT_TRUE(s.ok());
  OrderedStream& st = **s;
  std::vector<uint32_t> order = {2, 3, 4, 3, 5};
  st.Enqueue(order);
  UseAndCheck(st, table, 2);
  for (int i = 0; i < 2; ++i) {
    auto bad = st.Next(3);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), StatusCode::kCorrupt);
    EXPECT_NE(bad.status().message().find("blocks.bin: unet block 3"), std::string::npos)
        << bad.status().ToString();
    UseAndCheck(st, table, static_cast<uint32_t>(i == 0 ? 4 : 5));
  }
  EXPECT_EQ(st.counters().checksum_failures, 1u);  // a resident block is verified once
}

TEST_P(OrderedStreamTest, ATruncatedFileIsAnErrorNamingTheBlock) {
  OddTable table(dir_.File("blocks.bin"), std::vector<uint64_t>(5, 50000), false);
  ASSERT_EQ(0, truncate(table.file_paths()[0].c_str(), 123 + 3 * 50037 + 100));
  if (!Open(table)) GTEST_SKIP() << "io_uring unavailable here";
  auto s = OrderedStream::Create(table, io_.get(), {.ring_bytes = 1 << 20});
  ASSERT_TRUE(s.ok());
  OrderedStream& st = **s;
  std::vector<uint32_t> order = {2, 3, 4};
  st.Enqueue(order);
  UseAndCheck(st, table, 2);
  for (uint32_t id : {3u, 4u}) {
    auto r = st.Next(id);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("unet block " + std::to_string(id)), std::string::npos)
        << r.status().ToString();
    EXPECT_NE(r.status().message().find("file ends early"), std::string::npos);
  }
  EXPECT_EQ(st.counters().read_errors, 2u);
}

TEST_P(OrderedStreamTest, PlacedModeReadsEachBlockToItsFileOffset) {
  const std::vector<uint64_t> sizes = MixedSizes(20, 4);
  OddTable table(dir_.File("blocks.bin"), sizes, /*checksums=*/true);
  if (!Open(table)) GTEST_SKIP() << "io_uring unavailable here";
  const uint64_t file_bytes = (123 + 20 * 300037 + 4095) / 4096 * 4096 + 4096;
  void* base = mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(base, MAP_FAILED);
  auto* placed = static_cast<uint8_t*>(base);
  auto min = OrderedStream::MinRingBytes(table, {});
  ASSERT_TRUE(min.ok());
  auto s = OrderedStream::Create(
      table, io_.get(), {.ring_bytes = *min, .resident = {2, 3}, .placed_base = placed});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  OrderedStream& st = **s;
  std::vector<uint32_t> pass;
  for (uint32_t id = 0; id < 20; ++id) pass.push_back(id);
  st.Enqueue(pass);
  for (int round = 0; round < 3; ++round) {
    if (round < 2) st.Enqueue(pass);  // the next pass's uses of a block wait for this one's
    for (uint32_t id : pass) {
      auto ref = st.Next(id);
      ASSERT_TRUE(ref.ok()) << ref.status().ToString();
      const WeightBlock b = table.Locate(id);
      EXPECT_EQ(ref->part[0], placed + b.parts[0].offset);  // the same place every time
      EXPECT_EQ(0, std::memcmp(ref->part[0], table.Bytes(id), table.Size(id))) << id;
      st.Release(*ref);
    }
  }
  const OrderedStreamCounters c = st.counters();
  EXPECT_EQ(c.uses, 60u);
  EXPECT_EQ(c.resident_uses, 4u);
  EXPECT_EQ(c.checksum_failures + c.read_errors, 0u);
  s->reset();
  munmap(base, file_bytes);
}

INSTANTIATE_TEST_SUITE_P(Backends, OrderedStreamTest,
                         ::testing::Values(IoBackendKind::kPread, IoBackendKind::kUring),
                         [](const auto& info) {
                           return std::string(IoBackendKindName(info.param));
                         });

}  // namespace
}  // namespace sluice
