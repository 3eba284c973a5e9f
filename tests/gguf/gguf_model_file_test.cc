// GgufModelFile: dense tensors are everything but routed experts, with their mapped bytes; every
// expert's LocateExpert extents, read back with pread, hold exactly the bytes written for that
// expert (stacked *_exps tensors, per-expert Mixtral tensors, split shards); malformed expert
// layouts are refused naming the tensor. Also OpenModelFile's format dispatch.
#include "io/gguf_model_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <set>

#include "io/model_open.h"
#include "tests/gguf/gguf_test_util.h"

namespace sluice {
namespace {

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

// Layer 0: q8_0 gate/up [32, 16, 4] and f16 down [16, 32, 4]; layer 1 dense only (a shared
// expert); layer 2: f32 [8, 6, 3] / [6, 8, 3]. Tensors interleave dense and expert ones.
std::vector<TestTensor> StackedModel() {
  return {
      RandomTensor("token_embd.weight", GgmlType::kF32, {8, 10}, 1),
      RandomTensor("blk.0.attn_norm.weight", GgmlType::kF32, {8}, 2),
      RandomTensor("blk.0.ffn_gate_inp.weight", GgmlType::kF32, {8, 4}, 3),
      RandomTensor("blk.0.ffn_gate_exps.weight", GgmlType::kQ8_0, {32, 16, 4}, 4),
      RandomTensor("blk.0.ffn_up_exps.weight", GgmlType::kQ8_0, {32, 16, 4}, 5),
      RandomTensor("blk.0.ffn_down_exps.weight", GgmlType::kF16, {16, 32, 4}, 6),
      RandomTensor("blk.1.ffn_gate_shexp.weight", GgmlType::kQ8_0, {32, 16}, 7),
      RandomTensor("blk.2.ffn_down_exps.weight", GgmlType::kF32, {6, 8, 3}, 8),
      RandomTensor("blk.2.ffn_gate_exps.weight", GgmlType::kF32, {8, 6, 3}, 9),
      RandomTensor("blk.2.ffn_up_exps.weight", GgmlType::kF32, {8, 6, 3}, 10),
      RandomTensor("blk.2.ffn_gate_exps.bias", GgmlType::kF32, {6, 3}, 11),
      RandomTensor("output_norm.weight", GgmlType::kF32, {8}, 12),
  };
}

const TestTensor& Named(const std::vector<TestTensor>& tensors, const std::string& name) {
  for (const TestTensor& t : tensors) {
    if (t.spec.name == name) return t;
  }
  ADD_FAILURE() << "no tensor " << name;
  return tensors[0];
}

// Checks every expert's every matrix against the bytes written. `slice_of(layer, matrix, e)`
// returns the bytes that expert must have.
template <typename SliceOf>
void ExpectExpertBytes(const ModelFile& file, int layer, int n_expert, SliceOf slice_of,
                       std::set<int>* file_indices) {
  for (int e = 0; e < n_expert; ++e) {
    const ExpertLocation loc = file.LocateExpert(layer, e);
    EXPECT_FALSE(loc.has_checksum);
    for (int m = 0; m < 3; ++m) {
      SCOPED_TRACE(::testing::Message() << "layer " << layer << " expert " << e << " matrix " << m);
      const ExpertLocation::Extent& x = loc.matrices[m];
      const std::vector<uint8_t> want = slice_of(m, e);
      ASSERT_EQ(x.bytes, want.size());
      ASSERT_LT(x.file_index, static_cast<int>(file.file_paths().size()));
      EXPECT_EQ(Pread(file.file_paths()[x.file_index], x.offset, x.bytes), want);
      file_indices->insert(x.file_index);
    }
  }
}

void CheckStackedModel(const ModelFile& file, const std::vector<TestTensor>& tensors,
                       std::set<int>* file_indices) {
  // Dense: everything except the six *_exps.weight tensors, in file order, bytes mapped.
  std::vector<std::string> want_dense;
  uint64_t dense_bytes = 0, expert_bytes = 0;
  for (const TestTensor& t : tensors) {
    const bool routed = t.spec.name.find("_exps.weight") != std::string::npos;
    (routed ? expert_bytes : dense_bytes) += t.bytes.size();
    if (!routed) want_dense.push_back(t.spec.name);
  }
  std::vector<std::string> dense;
  for (const TensorInfo& t : file.dense_tensors()) {
    dense.push_back(t.name);
    const TestTensor& src = Named(tensors, t.name);
    ASSERT_EQ(t.nbytes, src.bytes.size());
    ASSERT_NE(t.data, nullptr);
    EXPECT_EQ(std::memcmp(t.data, src.bytes.data(), t.nbytes), 0) << t.name;
    EXPECT_FALSE(t.has_checksum);
  }
  EXPECT_EQ(dense, want_dense);
  EXPECT_EQ(file.dense_bytes_total(), dense_bytes);
  EXPECT_EQ(file.expert_bytes_total(), expert_bytes);

  std::optional<ExpertTensors> l0 = file.expert_tensors(0);
  ASSERT_TRUE(l0.has_value());
  EXPECT_EQ(l0->gate.name, "blk.0.ffn_gate_exps.weight");
  EXPECT_EQ(l0->gate.type, GgmlType::kQ8_0);
  EXPECT_EQ(l0->down.type, GgmlType::kF16);
  EXPECT_EQ(l0->gate.ne, (std::array<int64_t, 4>{32, 16, 4, 1}));
  EXPECT_EQ(l0->down.ne, (std::array<int64_t, 4>{16, 32, 4, 1}));
  EXPECT_EQ(l0->up.nbytes, 4u * 16 * 34);
  EXPECT_EQ(l0->gate.data, nullptr);
  EXPECT_FALSE(file.expert_tensors(1).has_value());
  EXPECT_FALSE(file.expert_tensors(3).has_value());
  EXPECT_FALSE(file.expert_tensors(-1).has_value());
  ASSERT_TRUE(file.expert_tensors(2).has_value());

  // Slice sizes by hand: q8_0 [32, 16] = 16 rows x 34 B; f16 [16, 32] = 32 x 32 B;
  // f32 [8, 6] = 6 x 32 B and [6, 8] = 8 x 24 B.
  const uint64_t l0_slice[3] = {544, 544, 1024}, l2_slice[3] = {192, 192, 192};
  const char* l0_names[3] = {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_up_exps.weight",
                             "blk.0.ffn_down_exps.weight"};
  const char* l2_names[3] = {"blk.2.ffn_gate_exps.weight", "blk.2.ffn_up_exps.weight",
                             "blk.2.ffn_down_exps.weight"};
  auto slices = [&](const char* const* names, const uint64_t* sizes) {
    return [&tensors, names, sizes](int m, int e) {
      const std::vector<uint8_t>& all = Named(tensors, names[m]).bytes;
      return std::vector<uint8_t>(all.begin() + e * sizes[m], all.begin() + (e + 1) * sizes[m]);
    };
  };
  ExpectExpertBytes(file, 0, 4, slices(l0_names, l0_slice), file_indices);
  ExpectExpertBytes(file, 2, 3, slices(l2_names, l2_slice), file_indices);
}

TEST(GgufModelFile, StackedExpertsLocateExactlyTheirBytes) {
  TempDir dir;
  Metadata meta;
  meta.SetString("general.architecture", "moetest");
  const std::vector<TestTensor> tensors = StackedModel();
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), meta, tensors).ok());
  auto file = GgufModelFile::Open(dir.File("m.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  std::set<int> indices;
  CheckStackedModel(**file, tensors, &indices);
  EXPECT_EQ(indices, std::set<int>{0});
  EXPECT_EQ((*file)->file_paths(), std::vector<std::string>{dir.File("m.gguf")});
  EXPECT_NE((*file)->mapped_file(0), nullptr);
  EXPECT_EQ((*file)->mapped_file(1), nullptr);
  EXPECT_EQ(*(*file)->metadata().GetString("general.architecture"), "moetest");
}

TEST(GgufModelFile, ExpertsInSplitShardsPointIntoTheRightFile) {
  TempDir dir;
  const std::vector<TestTensor> tensors = StackedModel();
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), Metadata(), tensors,
                        {.alignment = 4096, .max_tensors_per_shard = 4})
                  .ok());
  auto file = OpenModelFile(dir.File("m-00002-of-00003.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->file_paths().size(), 3u);
  std::set<int> indices;
  CheckStackedModel(**file, tensors, &indices);
  EXPECT_EQ(indices, (std::set<int>{0, 1, 2}));
}

// Older Mixtral converters: blk.N.ffn_{gate,up,down}.E.weight, one 2-D tensor per expert.
TEST(GgufModelFile, PerExpertMixtralTensors) {
  TempDir dir;
  std::vector<TestTensor> tensors = {RandomTensor("token_embd.weight", GgmlType::kF32, {8, 4}, 1)};
  uint32_t seed = 100;
  for (int e = 0; e < 3; ++e) {
    const std::string p = "blk.0.ffn_";
    tensors.push_back(RandomTensor(p + "gate." + std::to_string(e) + ".weight", GgmlType::kQ4_0,
                                   {64, 5}, seed++));
    tensors.push_back(
        RandomTensor(p + "down." + std::to_string(e) + ".weight", GgmlType::kF16, {5, 64}, seed++));
    tensors.push_back(
        RandomTensor(p + "up." + std::to_string(e) + ".weight", GgmlType::kQ4_0, {64, 5}, seed++));
  }
  ASSERT_TRUE(WriteGguf(dir.File("mixtral.gguf"), Metadata(), tensors).ok());
  auto file = GgufModelFile::Open(dir.File("mixtral.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_EQ((*file)->dense_tensors().size(), 1u);
  std::optional<ExpertTensors> l0 = (*file)->expert_tensors(0);
  ASSERT_TRUE(l0.has_value());
  EXPECT_EQ(l0->gate.name, "blk.0.ffn_gate_exps.weight") << "presented as if stacked";
  EXPECT_EQ(l0->gate.ne, (std::array<int64_t, 4>{64, 5, 3, 1}));
  EXPECT_EQ(l0->down.ne, (std::array<int64_t, 4>{5, 64, 3, 1}));
  EXPECT_EQ(l0->gate.n_dims, 3);
  EXPECT_EQ(l0->up.nbytes, 3u * 5 * 36);  // q4_0: 18 B per 32 elements, 2 blocks per row
  EXPECT_EQ((*file)->expert_bytes_total(), 3u * (5 * 36 + 5 * 36 + 64 * 10));
  const char* kinds[3] = {"gate", "up", "down"};
  std::set<int> indices;
  ExpectExpertBytes(
      **file, 0, 3,
      [&](int m, int e) {
        return Named(tensors, StrCat("blk.0.ffn_", kinds[m], ".", e, ".weight")).bytes;
      },
      &indices);
}

// Writes `tensors` and expects Open to fail with `code`, naming `needle`.
void ExpectOpenError(const std::vector<TestTensor>& tensors, StatusCode code,
                     const std::string& needle) {
  TempDir dir;
  ASSERT_TRUE(WriteGguf(dir.File("bad.gguf"), Metadata(), tensors).ok());
  auto file = GgufModelFile::Open(dir.File("bad.gguf"));
  ASSERT_FALSE(file.ok()) << "opened a model that should fail naming " << needle;
  EXPECT_EQ(file.status().code(), code) << file.status().message();
  EXPECT_NE(file.status().message().find(needle), std::string::npos) << file.status().message();
  EXPECT_NE(file.status().message().find("bad.gguf"), std::string::npos);
}

TEST(GgufModelFile, MalformedExpertLayoutsAreNamed) {
  auto t = [](std::string name, GgmlType type, std::vector<int64_t> ne) {
    return RandomTensor(std::move(name), type, std::move(ne), 7);
  };
  const GgmlType f32 = GgmlType::kF32;
  ExpectOpenError({t("blk.0.ffn_gate_up_exps.weight", f32, {8, 12, 2})}, StatusCode::kUnsupported,
                  "blk.0.ffn_gate_up_exps.weight");
  ExpectOpenError({t("blk.0.ffn_gate_exps.weight", f32, {8, 6, 2}),
                   t("blk.0.ffn_up_exps.weight", f32, {8, 6, 2})},
                  StatusCode::kCorrupt, "blk.0.ffn_down_exps.weight");
  ExpectOpenError({t("blk.0.ffn_gate_exps.weight", f32, {8, 6, 2}),
                   t("blk.0.ffn_up_exps.weight", f32, {8, 6, 2}),
                   t("blk.0.ffn_down_exps.weight", f32, {8, 6, 2})},
                  StatusCode::kCorrupt, "'blk.0.ffn_down_exps.weight': expected shape [6, 8, 2]");
  ExpectOpenError({t("blk.0.ffn_gate_exps.weight", f32, {8, 6, 2}),
                   t("blk.0.ffn_up_exps.weight", f32, {8, 6, 3}),
                   t("blk.0.ffn_down_exps.weight", f32, {6, 8, 2})},
                  StatusCode::kCorrupt, "blk.0.ffn_up_exps.weight");
  ExpectOpenError(
      {t("blk.0.ffn_gate_exps.weight", f32, {8, 6}), t("blk.0.ffn_up_exps.weight", f32, {8, 6}),
       t("blk.0.ffn_down_exps.weight", f32, {6, 8})},
      StatusCode::kCorrupt, "blk.0.ffn_gate_exps.weight");
  // More experts than any model has: refused before a location table is built for them.
  ExpectOpenError({t("blk.0.ffn_gate_exps.weight", f32, {1, 1, 70000}),
                   t("blk.0.ffn_up_exps.weight", f32, {1, 1, 70000}),
                   t("blk.0.ffn_down_exps.weight", f32, {1, 1, 70000})},
                  StatusCode::kUnsupported, "70000 experts exceeds the limit");
  // Per-expert tensors with a gap in the ids, and with a stray shape.
  std::vector<TestTensor> gap;
  for (int e : {0, 1, 3}) {
    for (const char* k : {"gate", "up"})
      gap.push_back(t(StrCat("blk.1.ffn_", k, ".", e, ".weight"), f32, {8, 6}));
    gap.push_back(t(StrCat("blk.1.ffn_down.", e, ".weight"), f32, {6, 8}));
  }
  ExpectOpenError(gap, StatusCode::kCorrupt, "blk.1.ffn_gate.2.weight");
  std::vector<TestTensor> stray = {
      t("blk.1.ffn_gate.0.weight", f32, {8, 6}), t("blk.1.ffn_gate.1.weight", f32, {8, 7}),
      t("blk.1.ffn_up.0.weight", f32, {8, 6}),   t("blk.1.ffn_up.1.weight", f32, {8, 6}),
      t("blk.1.ffn_down.0.weight", f32, {6, 8}), t("blk.1.ffn_down.1.weight", f32, {6, 8})};
  ExpectOpenError(stray, StatusCode::kCorrupt, "blk.1.ffn_gate.1.weight");
  ExpectOpenError(
      {t("blk.0.ffn_gate_exps.weight", f32, {8, 6, 1}),
       t("blk.0.ffn_up_exps.weight", f32, {8, 6, 1}),
       t("blk.0.ffn_down_exps.weight", f32, {6, 8, 1}), t("blk.0.ffn_gate.0.weight", f32, {8, 6})},
      StatusCode::kCorrupt, "both");
}

TEST(OpenModelFile, DispatchesOnMagic) {
  TempDir dir;
  const std::vector<TestTensor> tensors = StackedModel();
  ASSERT_TRUE(WriteGguf(dir.File("m.gguf"), Metadata(), tensors).ok());
  EXPECT_EQ(*DetectModelFormat(dir.File("m.gguf")), ModelFormat::kGguf);
  auto file = OpenModelFile(dir.File("m.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ((*file)->dense_tensors().size(), 6u);

  testing::WriteBytes(dir.File("junk.bin"), {'P', 'K', 3, 4, 0, 0});
  auto junk = OpenModelFile(dir.File("junk.bin"));
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(junk.status().message().find("junk.bin: magic at offset 0"), std::string::npos)
      << junk.status().message();
  EXPECT_NE(junk.status().message().find("PK\\x03\\x04"), std::string::npos);
  auto missing = OpenModelFile(dir.File("missing.gguf"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace sluice
