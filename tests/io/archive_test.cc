// Archive writer/reader: round trips of random archives and a clear error for each kind of damage.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "io/archive_reader.h"
#include "io/archive_writer.h"
#include "tests/support/test_util.h"

namespace sluice {
namespace {

using testing::RandomArchiveSpec;
using testing::ScratchDir;

std::vector<uint8_t> ReadAt(const std::string& path, uint64_t offset, uint64_t bytes) {
  std::vector<uint8_t> out(bytes);
  int fd = open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(pread(fd, out.data(), bytes, static_cast<off_t>(offset)), static_cast<ssize_t>(bytes));
  close(fd);
  return out;
}

void WriteU32(const std::string& path, uint64_t offset, uint32_t v) {
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, &v, 4, static_cast<off_t>(offset)), 4);
  close(fd);
}

void CheckRoundTrip(const RandomArchiveSpec& spec, const std::string& path) {
  ASSERT_TRUE(testing::WriteRandomArchive(spec, path).ok());
  Result<std::unique_ptr<ArchiveReader>> r = ArchiveReader::Open(path, {.verify_dense = true});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const ArchiveReader& a = **r;
  ASSERT_EQ(std::filesystem::file_size(path), a.header().file_bytes);
  EXPECT_EQ(a.header().file_bytes % kArchiveAlignment, 0u);
  ArchivePlan plan = testing::RandomArchivePlan(spec);
  EXPECT_EQ(a.metadata().keys(), plan.metadata.keys());
  EXPECT_EQ(*a.metadata().GetString("general.architecture"), "testmoe");
  EXPECT_EQ(a.metadata().GetStringArray("tokenizer.ggml.tokens")->at(1), "a");
  ASSERT_EQ(a.dense_tensors().size(), static_cast<size_t>(spec.n_dense));
  for (int i = 0; i < spec.n_dense; ++i) {
    const TensorInfo& t = a.dense_tensors()[i];
    EXPECT_EQ(t.name, plan.dense[i].name);
    EXPECT_EQ(t.ne, plan.dense[i].ne);
    std::vector<uint8_t> want = testing::DenseBytes(spec, i);
    ASSERT_EQ(t.nbytes, want.size());
    EXPECT_EQ(std::vector<uint8_t>(t.data, t.data + t.nbytes), want) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % kArchiveTensorAlignment, 0u);
    EXPECT_TRUE(a.VerifyDenseTensor(i).ok());
  }
  uint64_t expert_total = 0;
  int max_layer = spec.expert_layers.empty() ? 0 : spec.expert_layers.back();
  for (int layer = 0; layer <= max_layer + 1; ++layer) {
    bool has = std::find(spec.expert_layers.begin(), spec.expert_layers.end(), layer) !=
               spec.expert_layers.end();
    std::optional<ExpertTensors> et = a.expert_tensors(layer);
    ASSERT_EQ(et.has_value(), has) << "layer " << layer;
    if (!has) continue;
    EXPECT_EQ(et->gate.ne[0], spec.n_embd);
    EXPECT_EQ(et->down.ne[0], spec.n_ff);
    EXPECT_EQ(et->up.ne[2], spec.n_expert);
    expert_total += et->gate.nbytes + et->up.nbytes + et->down.nbytes;
    for (int e = 0; e < spec.n_expert; ++e) {
      ExpertLocation loc = a.LocateExpert(layer, e);
      EXPECT_EQ(loc.matrices[0].offset % kArchiveAlignment, 0u);
      for (int k = 0; k < 3; ++k) {
        std::vector<uint8_t> want = testing::ExpertMatrixBytes(spec, layer, e, k);
        ASSERT_EQ(loc.matrices[k].bytes, want.size());
        EXPECT_EQ(ReadAt(path, loc.matrices[k].offset, loc.matrices[k].bytes), want)
            << "layer " << layer << " expert " << e << " matrix " << k;
      }
      uint64_t block = loc.matrices[2].offset + loc.matrices[2].bytes - loc.matrices[0].offset;
      std::vector<uint8_t> bytes = ReadAt(path, loc.matrices[0].offset, block);
      ASSERT_TRUE(loc.has_checksum);
      EXPECT_EQ(loc.xxh3, XXH3_64bits(bytes.data(), bytes.size()));
      EXPECT_TRUE(a.VerifyExpertBlock(layer, e).ok());
    }
  }
  EXPECT_EQ(a.expert_bytes_total(), expert_total);
}

TEST(Archive, RoundTripRandomArchivesOfOddSizes) {
  ScratchDir dir;
  for (int n_expert : {1, 2, 7}) {
    for (int64_t n_embd : {1, 37, 4099}) {
      RandomArchiveSpec spec{.seed = static_cast<uint64_t>(n_expert * 1000 + n_embd),
                             .n_dense = n_expert + 1,
                             .expert_layers = {1, 2, 5},
                             .n_expert = n_expert,
                             .n_embd = n_embd,
                             .n_ff = 3 + n_expert};
      SCOPED_TRACE(testing::RandomArchivePlan(spec).dense.size());
      CheckRoundTrip(spec, dir.File("a.sluice"));
    }
  }
}

TEST(Archive, RoundTripQuantizedAndNoExperts) {
  ScratchDir dir;
  CheckRoundTrip({.n_dense = 4,
                  .expert_layers = {0},
                  .n_expert = 3,
                  .n_embd = 256,
                  .n_ff = 512,
                  .expert_type = GgmlType::kQ4_K},
                 dir.File("q.sluice"));
  CheckRoundTrip({.n_dense = 2, .expert_layers = {}}, dir.File("dense-only.sluice"));
}

class DamagedArchive : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("m.sluice");
    ASSERT_TRUE(testing::WriteRandomArchive(spec_, path_).ok());
    auto r = ArchiveReader::Open(path_);
    ASSERT_TRUE(r.ok());
    header_ = (*r)->header();
  }
  std::string OpenError() {
    auto r = ArchiveReader::Open(path_);
    EXPECT_FALSE(r.ok());
    return r.ok() ? "" : r.status().ToString();
  }
  ScratchDir dir_;
  RandomArchiveSpec spec_{.n_expert = 4, .n_embd = 300, .n_ff = 200};
  std::string path_;
  ArchiveHeader header_;
};

TEST_F(DamagedArchive, TruncatedFileNamesExpectedAndFoundSize) {
  uint64_t full = header_.file_bytes;
  ASSERT_EQ(truncate(path_.c_str(), static_cast<off_t>(full - 1)), 0);
  std::string msg = OpenError();
  EXPECT_NE(msg.find(path_), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find("says the file is " + std::to_string(full)), std::string::npos) << msg;
  EXPECT_NE(msg.find("found " + std::to_string(full - 1)), std::string::npos) << msg;
  // Cut inside the directory, and inside the header.
  ASSERT_EQ(truncate(path_.c_str(), static_cast<off_t>(header_.directory_offset + 3)), 0);
  msg = OpenError();
  EXPECT_NE(msg.find("truncated: header and directory end at offset"), std::string::npos) << msg;
  ASSERT_EQ(truncate(path_.c_str(), 57), 0);
  msg = OpenError();
  EXPECT_NE(msg.find("the file is 57 bytes, shorter than the 128-byte"), std::string::npos) << msg;
}

TEST_F(DamagedArchive, BadMagic) {
  testing::FlipByte(path_, 2);
  std::string msg = OpenError();
  EXPECT_NE(msg.find("bad magic at offset 0: expected 'SLUICEAR'"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path_), std::string::npos) << msg;
}

TEST_F(DamagedArchive, WrongVersion) {
  WriteU32(path_, 8, 7);
  auto r = ArchiveReader::Open(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(r.status().message().find("version at offset 8: expected 1, found 7"),
            std::string::npos)
      << r.status().message();
}

TEST_F(DamagedArchive, CorruptedDirectoryAndMetadataBytes) {
  // One byte in the middle of the directory (an expert checksum or a name), then in metadata.
  for (uint64_t at : {header_.directory_offset + header_.directory_bytes / 2,
                      header_.directory_offset + header_.directory_bytes - 1,
                      header_.metadata_offset + 9, uint64_t{20}}) {
    SCOPED_TRACE(at);
    testing::FlipByte(path_, at);
    std::string msg = OpenError();
    EXPECT_NE(msg.find("checksum mismatch over bytes [0, " +
                       std::to_string(header_.directory_offset + header_.directory_bytes) + ")"),
              std::string::npos)
        << msg;
    EXPECT_NE(msg.find("directory is corrupt"), std::string::npos) << msg;
    EXPECT_NE(msg.find(path_), std::string::npos) << msg;
    testing::FlipByte(path_, at);  // restore
    EXPECT_TRUE(ArchiveReader::Open(path_).ok());
  }
}

TEST_F(DamagedArchive, CorruptedExpertBlockByte) {
  uint64_t block = 0;
  {
    auto r = ArchiveReader::Open(path_);
    ASSERT_TRUE(r.ok());
    block = (*r)->expert_block_offset(2, 3);
  }
  testing::FlipByte(path_, block + 1000);
  auto r = ArchiveReader::Open(path_);
  ASSERT_TRUE(r.ok()) << "a block's bytes are checked when read, not at open";
  EXPECT_TRUE((*r)->VerifyExpertBlock(2, 2).ok());
  Status st = (*r)->VerifyExpertBlock(2, 3);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(
      st.message().find("expert (layer 2, expert 3) block at offset " + std::to_string(block)),
      std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("xxh3 expected 0x"), std::string::npos) << st.message();
}

TEST_F(DamagedArchive, CorruptedDenseByte) {
  auto r0 = ArchiveReader::Open(path_);
  ASSERT_TRUE(r0.ok());
  uint64_t at = (*r0)->dense_entries()[1].offset;
  r0 = Status(StatusCode::kInternal, "closed");
  testing::FlipByte(path_, at + 3);
  auto r = ArchiveReader::Open(path_, {.verify_dense = true});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("dense tensor 'dense.1' at offset " + std::to_string(at)),
            std::string::npos)
      << r.status().message();
}

TEST(ArchiveWriter, UnfinishedWriterLeavesNothing) {
  ScratchDir dir;
  std::string tmp;
  {
    auto w = ArchiveWriter::Create(dir.File("x.sluice"), testing::RandomArchivePlan({}));
    ASSERT_TRUE(w.ok());
    tmp = (*w)->temp_path();
    EXPECT_TRUE(std::filesystem::exists(tmp));
    EXPECT_NE(tmp.find("x.sluice.tmp-"), std::string::npos);
    Status st = (*w)->Finish();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("dense tensor 'dense.0' was never written"), std::string::npos)
        << st.message();
  }
  EXPECT_FALSE(std::filesystem::exists(tmp));
  EXPECT_FALSE(std::filesystem::exists(dir.File("x.sluice")));
}

TEST(ArchiveWriter, RejectsWrongSizesDuplicatesAndUndeclared) {
  ScratchDir dir;
  RandomArchiveSpec spec;
  auto w = ArchiveWriter::Create(dir.File("x.sluice"), testing::RandomArchivePlan(spec));
  ASSERT_TRUE(w.ok());
  std::vector<uint8_t> g = testing::ExpertMatrixBytes(spec, 0, 1, 0);
  std::vector<uint8_t> d = testing::ExpertMatrixBytes(spec, 0, 1, 2);
  Status st = (*w)->AddExpert(0, 1, g, std::span<const uint8_t>(g).first(g.size() - 1), d);
  EXPECT_NE(st.message().find("expert (0, 1) up: expected " + std::to_string(g.size()) +
                              " bytes, got " + std::to_string(g.size() - 1)),
            std::string::npos)
      << st.message();
  EXPECT_TRUE((*w)->AddExpert(0, 1, g, g, d).ok());
  EXPECT_NE((*w)->AddExpert(0, 1, g, g, d).message().find("written twice"), std::string::npos);
  EXPECT_NE((*w)->AddExpert(1, 0, g, g, d).message().find("layer 1 has no experts"),
            std::string::npos);
  EXPECT_NE((*w)->WriteDense("nope", g).message().find("'nope' was not declared"),
            std::string::npos);
  // Progress counts whole blocks (matrices and the padding between them).
  EXPECT_EQ((*w)->bytes_written(), (*w)->layout().expert_layers[0].block_bytes);
  EXPECT_GE((*w)->bytes_written(), g.size() * 2 + d.size());
}

TEST(ArchiveWriter, ConcurrentWritersProduceTheSameArchive) {
  ScratchDir dir;
  RandomArchiveSpec spec{.seed = 11, .expert_layers = {0, 1, 2, 3}, .n_expert = 9, .n_embd = 61};
  ASSERT_TRUE(testing::WriteRandomArchive(spec, dir.File("serial.sluice")).ok());
  auto w = ArchiveWriter::Create(dir.File("parallel.sluice"), testing::RandomArchivePlan(spec));
  ASSERT_TRUE(w.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      if (t < spec.n_dense && !(*w)->WriteDense(t, testing::DenseBytes(spec, t)).ok()) ++failures;
      for (int e = t; e < spec.n_expert; e += 4) {
        for (int layer : spec.expert_layers) {
          Status st = (*w)->AddExpert(layer, e, testing::ExpertMatrixBytes(spec, layer, e, 0),
                                      testing::ExpertMatrixBytes(spec, layer, e, 1),
                                      testing::ExpertMatrixBytes(spec, layer, e, 2));
          if (!st.ok()) ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  EXPECT_EQ((*w)->bytes_written(), (*w)->payload_bytes());
  ASSERT_TRUE((*w)->Finish().ok());
  std::ifstream a(dir.File("serial.sluice"), std::ios::binary),
      b(dir.File("parallel.sluice"), std::ios::binary);
  std::string sa((std::istreambuf_iterator<char>(a)), {}),
      sb((std::istreambuf_iterator<char>(b)), {});
  EXPECT_EQ(sa.size(), sb.size());
  EXPECT_TRUE(sa == sb) << "the same plan and bytes must give the same file, whatever the order";
}

TEST(ArchiveWriter, RefusesWhenTheDiskIsTooSmall) {
  ScratchDir dir;
  ArchivePlan plan;
  TensorInfo huge;
  huge.name = "huge";
  huge.type = GgmlType::kF32;
  huge.n_dims = 2;
  huge.ne = {1 << 20, 1 << 26, 1, 1};  // 256 TiB
  plan.dense.push_back(huge);
  auto w = ArchiveWriter::Create(dir.File("big.sluice"), plan);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(w.status().message().find("not enough free space: need 256.00 TiB"), std::string::npos)
      << w.status().message();
  EXPECT_NE(w.status().message().find("on " + dir.path()), std::string::npos);
}

TEST(ArchiveWriter, RejectsBadPlans) {
  ArchivePlan plan = testing::RandomArchivePlan({});
  plan.expert_layers[1].layer = 0;
  auto w = ArchiveWriter::Create("/nonexistent/x.sluice", plan);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("strictly increasing"), std::string::npos);
  plan = testing::RandomArchivePlan({.expert_type = GgmlType::kQ4_K});
  w = ArchiveWriter::Create("/nonexistent/x.sluice", plan);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("not a whole number of q4_K blocks"), std::string::npos)
      << w.status().message();
}

}  // namespace
}  // namespace sluice
