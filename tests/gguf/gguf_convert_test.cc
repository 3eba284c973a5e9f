// GGUF -> archive conversion: everything read back through OpenModelFile on the archive equals
// what was written into the GGUF (metadata, every dense tensor, every expert's bytes), for a plain
// file, split shards and per-expert Mixtral tensors; cancelling, converting onto the input and a
// full disk leave no output behind.
#include "io/gguf_convert.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "io/archive_reader.h"
#include "io/model_open.h"
#include "tests/gguf/gguf_test_util.h"

namespace sluice {
namespace {

using testing::ExpectSameValue;
using testing::RandomTensor;
using testing::TempDir;
using testing::TestTensor;
using testing::WriteGguf;

std::vector<uint8_t> Pread(const std::string& path, uint64_t offset, uint64_t bytes) {
  std::vector<uint8_t> out(bytes);
  const int fd = ::open(path.c_str(), O_RDONLY);
  EXPECT_GE(fd, 0) << path;
  EXPECT_EQ(::pread(fd, out.data(), bytes, static_cast<off_t>(offset)),
            static_cast<ssize_t>(bytes));
  ::close(fd);
  return out;
}

Metadata ModelMetadata() {
  Metadata m;
  m.SetString("general.architecture", "qwen3moe");
  m.SetU32("qwen3moe.block_count", 3);
  m.SetF32("qwen3moe.rope.freq_base", 1e6f);
  m.SetBool("tokenizer.ggml.add_bos_token", false);
  m.SetStringArray("tokenizer.ggml.tokens", {"a", "b", "<|im_end|>"});
  m.SetF32Array("tokenizer.ggml.scores", {0.5f, -1.0f, 0.0f});
  m.SetI32Array("tokenizer.ggml.token_type", {1, 1, 3});
  MetaValue u64;
  u64.type = MetaType::kU64;
  u64.u = 1ull << 40;
  m.Set("test.u64", u64);
  return m;
}

// Layers 0 and 2 have experts (q4_K gate/up with an f16 down, and f32), layer 1 is dense.
std::vector<TestTensor> Model() {
  return {
      RandomTensor("token_embd.weight", GgmlType::kQ8_0, {64, 12}, 1),
      RandomTensor("blk.0.attn_norm.weight", GgmlType::kF32, {64}, 2),
      RandomTensor("blk.0.ffn_gate_inp.weight", GgmlType::kF32, {64, 5}, 3),
      RandomTensor("blk.0.ffn_gate_exps.weight", GgmlType::kQ4_K, {256, 16, 5}, 4),
      RandomTensor("blk.0.ffn_up_exps.weight", GgmlType::kQ4_K, {256, 16, 5}, 5),
      RandomTensor("blk.0.ffn_down_exps.weight", GgmlType::kF16, {16, 256, 5}, 6),
      RandomTensor("blk.1.ffn_up.weight", GgmlType::kF16, {64, 48}, 7),
      RandomTensor("blk.2.ffn_gate_exps.weight", GgmlType::kF32, {8, 6, 3}, 8),
      RandomTensor("blk.2.ffn_up_exps.weight", GgmlType::kF32, {8, 6, 3}, 9),
      RandomTensor("blk.2.ffn_down_exps.weight", GgmlType::kF32, {6, 8, 3}, 10),
      RandomTensor("output_norm.weight", GgmlType::kF32, {64}, 11),
  };
}

// Everything the archive serves equals what the GGUF serves, byte for byte.
void ExpectSameModel(const ModelFile& gguf, const ModelFile& archive) {
  ASSERT_EQ(archive.metadata().keys(), gguf.metadata().keys());
  for (const std::string& key : gguf.metadata().keys()) {
    ExpectSameValue(key, *gguf.metadata().Find(key), *archive.metadata().Find(key));
  }
  ASSERT_EQ(archive.dense_tensors().size(), gguf.dense_tensors().size());
  for (size_t i = 0; i < gguf.dense_tensors().size(); ++i) {
    const TensorInfo& want = gguf.dense_tensors()[i];
    const TensorInfo& got = archive.dense_tensors()[i];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(got.name, want.name);
    EXPECT_EQ(got.type, want.type);
    EXPECT_EQ(got.n_dims, want.n_dims);
    EXPECT_EQ(got.ne, want.ne);
    ASSERT_EQ(got.nbytes, want.nbytes);
    EXPECT_EQ(std::memcmp(got.data, want.data, want.nbytes), 0);
  }
  EXPECT_EQ(archive.expert_bytes_total(), gguf.expert_bytes_total());
  for (int layer = 0; layer < 8; ++layer) {
    std::optional<ExpertTensors> want = gguf.expert_tensors(layer);
    std::optional<ExpertTensors> got = archive.expert_tensors(layer);
    ASSERT_EQ(got.has_value(), want.has_value()) << layer;
    if (!want) continue;
    EXPECT_EQ(got->gate.ne, want->gate.ne);
    EXPECT_EQ(got->down.ne, want->down.ne);
    EXPECT_EQ(got->up.type, want->up.type);
    for (int e = 0; e < want->gate.ne[2]; ++e) {
      const ExpertLocation a = archive.LocateExpert(layer, e);
      const ExpertLocation g = gguf.LocateExpert(layer, e);
      EXPECT_TRUE(a.has_checksum);
      for (int m = 0; m < 3; ++m) {
        SCOPED_TRACE(::testing::Message() << "layer " << layer << " expert " << e << " m " << m);
        ASSERT_EQ(a.matrices[m].bytes, g.matrices[m].bytes);
        EXPECT_EQ(a.matrices[m].offset % 64, 0u);
        EXPECT_EQ(Pread(archive.file_paths()[a.matrices[m].file_index], a.matrices[m].offset,
                        a.matrices[m].bytes),
                  Pread(gguf.file_paths()[g.matrices[m].file_index], g.matrices[m].offset,
                        g.matrices[m].bytes));
      }
    }
  }
}

void ConvertAndCompare(const std::string& gguf_path, const std::string& out) {
  uint64_t last_done = 0, calls = 0, total_seen = 0;
  ConvertOptions options;
  options.on_progress = [&](uint64_t done, uint64_t total) {
    EXPECT_GE(done, last_done);
    last_done = done;
    total_seen = total;
    ++calls;
  };
  Result<ConvertStats> stats = ConvertGgufToArchive(gguf_path, out, options);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(last_done, total_seen);
  EXPECT_EQ(calls, stats->dense_tensors + stats->experts);

  auto gguf = OpenModelFile(gguf_path);
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  EXPECT_EQ(*DetectModelFormat(out), ModelFormat::kArchive);
  auto archive = OpenModelFile(out);
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  ExpectSameModel(**gguf, **archive);

  // The block checksums the archive carries match the bytes.
  auto reader = ArchiveReader::Open(out, {.verify_dense = true});
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  for (int layer : {0, 2}) {
    for (int e = 0; e < (*reader)->expert_tensors(layer)->gate.ne[2]; ++e) {
      EXPECT_TRUE((*reader)->VerifyExpertBlock(layer, e).ok());
    }
  }
}

TEST(GgufConvert, ArchiveHoldsExactlyTheGgufsBytes) {
  TempDir dir;
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), ModelMetadata(), Model()).ok());
  ConvertAndCompare(dir.File("m.gguf"), dir.File("m.sluice"));
  EXPECT_EQ(dir.List(), (std::vector<std::string>{"m.gguf", "m.sluice"}));
}

TEST(GgufConvert, SplitShardsConvertIntoOneArchive) {
  TempDir dir;
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), ModelMetadata(), Model(),
                        {.alignment = 256, .max_tensors_per_shard = 3})
                  .ok());
  ConvertAndCompare(dir.File("m-00003-of-00004.gguf"), dir.File("m.sluice"));
}

TEST(GgufConvert, PerExpertMixtralTensors) {
  TempDir dir;
  std::vector<TestTensor> tensors = {RandomTensor("token_embd.weight", GgmlType::kF32, {32, 4}, 1)};
  uint32_t seed = 50;
  for (int e = 0; e < 4; ++e) {
    // gate/up [n_embd 32, n_ff 7] q4_0; down [7, 32] f32 (7 is not a whole q4_0 block).
    for (const char* k : {"gate", "up"}) {
      tensors.push_back(RandomTensor(StrCat("blk.0.ffn_", k, ".", e, ".weight"), GgmlType::kQ4_0,
                                     {32, 7}, seed++));
    }
    tensors.push_back(
        RandomTensor(StrCat("blk.0.ffn_down.", e, ".weight"), GgmlType::kF32, {7, 32}, seed++));
  }
  ASSERT_TRUE(WriteGguf(dir.File("mixtral.gguf"), Metadata(), tensors).ok());
  auto gguf = OpenModelFile(dir.File("mixtral.gguf"));
  ASSERT_TRUE(gguf.ok()) << gguf.status().ToString();
  Result<ConvertStats> stats = ConvertGgufToArchive(dir.File("mixtral.gguf"), dir.File("m.sluice"));
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->experts, 4u);
  auto archive = OpenModelFile(dir.File("m.sluice"));
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  ExpectSameModel(**gguf, **archive);
  // And each expert is exactly its original per-expert tensors.
  for (int e = 0; e < 4; ++e) {
    const ExpertLocation a = (*archive)->LocateExpert(0, e);
    EXPECT_EQ(Pread(dir.File("m.sluice"), a.matrices[2].offset, a.matrices[2].bytes),
              tensors[3 + 3 * e].bytes);
  }
}

TEST(GgufConvert, CancelLeavesNothing) {
  TempDir dir;
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), ModelMetadata(), Model()).ok());
  std::atomic<bool> cancel{false};
  ConvertOptions options;
  options.cancel = &cancel;
  int calls = 0;
  options.on_progress = [&](uint64_t, uint64_t) {
    if (++calls == 4) cancel = true;  // as SIGINT would, midway through
  };
  Result<ConvertStats> stats =
      ConvertGgufToArchive(dir.File("m.gguf"), dir.File("m.sluice"), options);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kCancelled);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.gguf"}) << "no archive, no temporary file";
}

TEST(GgufConvert, RefusesToOverwriteItsInput) {
  TempDir dir;
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), ModelMetadata(), Model()).ok());
  const std::vector<uint8_t> before = testing::ReadBytes(dir.File("m.gguf"));
  Result<ConvertStats> stats = ConvertGgufToArchive(dir.File("m.gguf"), dir.File("m.gguf"));
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(testing::ReadBytes(dir.File("m.gguf")), before);
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.gguf"});
}

// A full disk, for real: a child process in its own mount namespace mounts a 256 KiB tmpfs and
// converts a ~400 KiB model onto it. Needs CAP_SYS_ADMIN; skipped (with a message) without it.
TEST(GgufConvert, FullDiskIsAClearErrorWithNoOutput) {
  TempDir dir;
  std::vector<TestTensor> tensors = Model();
  tensors.push_back(RandomTensor("blk.1.big.weight", GgmlType::kF32, {1024, 100}, 99));
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), ModelMetadata(), tensors).ok());
  const std::string small = dir.File("small");
  ASSERT_EQ(::mkdir(small.c_str(), 0755), 0);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Exit codes: 0 pass, 10 cannot mount (skip), 11.. failures.
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        ::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k") != 0) {
      ::_exit(10);
    }
    Result<ConvertStats> stats = ConvertGgufToArchive(dir.File("m.gguf"), small + "/m.sluice");
    if (stats.ok()) ::_exit(11);
    if (stats.status().code() != StatusCode::kResourceExhausted) ::_exit(12);
    if (stats.status().message().find("m.sluice") == std::string::npos) ::_exit(13);
    // The GGUF writer hits the same wall when it reserves space.
    Status w = WriteGguf(small + "/copy.gguf", ModelMetadata(), tensors);
    if (w.code() != StatusCode::kResourceExhausted) ::_exit(14);
    if (!std::filesystem::is_empty(small)) ::_exit(15);  // nothing left behind
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 10) GTEST_SKIP() << "cannot mount a small tmpfs (needs CAP_SYS_ADMIN)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the exit codes in the child";
}

}  // namespace
}  // namespace sluice
