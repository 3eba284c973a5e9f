// VerifyArchive reads an archive through the I/O backend and checks every checksum: all good on
// an intact archive (every byte of every block counted once), and each flipped byte reported
// with what, where and both hashes, the check going on past it. Pieces smaller than a block make
// the streamed hash cross read boundaries.
#include "io/archive_verify.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "io/io_probe.h"
#include "tests/support/test_util.h"

namespace sluice {
namespace {

class ArchiveVerify : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(testing::WriteRandomArchive(spec_, path_).ok());
    if (GetParam() == IoBackendKind::kUring && !ProbeIo(path_).uring_ok) {
      GTEST_SKIP() << "io_uring unavailable here: " << ProbeIo(path_).uring_reason;
    }
  }
  Result<VerifyReport> Verify() {
    auto a = ArchiveReader::Open(path_);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    if (!a.ok()) return a.status();
    return VerifyArchive(**a, {.io = GetParam(), .queue_depth = 3, .read_bytes = 8192});
  }
  testing::ScratchDir dir_;
  const std::string path_ = dir_.File("a.sluice");
  testing::RandomArchiveSpec spec_{.seed = 3, .n_dense = 4, .n_embd = 300, .n_ff = 97};
};

TEST_P(ArchiveVerify, AnIntactArchivePassesEveryCheck) {
  Result<VerifyReport> r = Verify();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->failed, 0u);
  EXPECT_EQ(r->dense_checks, 4u);
  EXPECT_EQ(r->checks, 4u + spec_.expert_layers.size() * spec_.n_expert);
  auto a = ArchiveReader::Open(path_);
  uint64_t bytes = 0;
  for (const DenseEntry& e : (*a)->dense_entries()) bytes += e.nbytes;
  for (const ExpertLayerEntry& e : (*a)->expert_layer_entries())
    bytes += e.block_bytes * e.n_expert;
  EXPECT_EQ(r->bytes, bytes);
  EXPECT_GE(r->bytes_read, bytes);
}

TEST_P(ArchiveVerify, EachFlippedByteIsReportedAndTheCheckGoesOn) {
  auto a = ArchiveReader::Open(path_);
  ASSERT_TRUE(a.ok());
  const uint64_t dense_at = (*a)->dense_entries()[2].offset + 5;
  const uint64_t expert_at = (*a)->expert_block_offset(spec_.expert_layers[1], 3) + 9000;
  a->reset();
  for (uint64_t at : {dense_at, expert_at}) testing::FlipByte(path_, at, 1);
  Result<VerifyReport> r = Verify();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->failed, 2u);
  ASSERT_EQ(r->failures.size(), 2u);
  EXPECT_NE(r->failures[0].find(path_ + ": dense tensor "), std::string::npos) << r->failures[0];
  EXPECT_NE(r->failures[1].find("expert (layer " + std::to_string(spec_.expert_layers[1]) +
                                ", expert 3) block at offset "),
            std::string::npos)
      << r->failures[1];
  EXPECT_NE(r->failures[1].find("xxh3 expected 0x"), std::string::npos) << r->failures[1];
}

TEST_P(ArchiveVerify, ATruncatedArchiveIsAnErrorNamingWhere) {
  auto a = ArchiveReader::Open(path_);
  ASSERT_TRUE(a.ok());
  const off_t cut = static_cast<off_t>((*a)->expert_block_offset(spec_.expert_layers[1], 1));
  ASSERT_EQ(truncate(path_.c_str(), cut), 0);  // after Open: the mapping size is stale now
  Result<VerifyReport> r =
      VerifyArchive(**a, {.io = GetParam(), .queue_depth = 3, .read_bytes = 8192});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("truncated"), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find(path_), std::string::npos) << r.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Backends, ArchiveVerify,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) { return IoBackendKindName(info.param); });

}  // namespace
}  // namespace sluice
