// The diffusion archive (`sluice convert` of an SD checkpoint, diffusion/archive_convert.h) on the
// tiny presets: in F16 it gives the source's image bit for bit (the same bytes, reordered); every
// block is one aligned range whose xxh3 the stream checks, so a flipped byte is an error naming
// the block; in Q8_0, Linear weights are quantized, convolutions stay F16, and the streamed image
// equals the resident one; a cancelled conversion leaves no file.
#include "diffusion/archive_convert.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "diffusion/pipeline.h"
#include "tests/diffusion/tiny_sd.h"

namespace sluice::diffusion {
namespace {

class ArchiveConvert : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    src_ = dir_.File("m.safetensors");
    testing_sd::WriteTinyCheckpoint(GetParam(), src_);
  }
  static GenerateOptions Options() { return testing_sd::TinyOptions(11, 2); }
  static std::vector<uint8_t> Image(const std::string& path, uint64_t budget) {
    auto m = budget == 0
                 ? DiffusionModel::Load(path, std::nullopt)
                 : DiffusionModel::Load(path, DiffusionLoadOptions{.weight_budget = budget});
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (!m.ok()) return {};
    auto img = Generate(**m, Options(), nullptr, {}, nullptr);
    EXPECT_TRUE(img.ok()) << img.status().ToString();
    return img.ok() ? img->rgb : std::vector<uint8_t>();
  }
  static uint64_t MinBudget(const std::string& path) { return testing_sd::MinWeightBudget(path); }
  testing::TempDir dir_;
  std::string src_;
};

TEST_P(ArchiveConvert, F16GivesTheSourcesImageAndChecksEveryBlock) {
  const std::string out = dir_.File("m.gguf");
  auto stats = ConvertDiffusionCheckpoint(src_, out, {});
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_GT(stats->blocks, 10u);
  EXPECT_EQ(stats->quantized, 0u);
  const std::vector<uint8_t> want = Image(src_, 0);
  EXPECT_EQ(Image(out, 0), want);
  const uint64_t min = MinBudget(out);
  EXPECT_EQ(Image(out, min), want);
  // Every block is one aligned range with a checksum.
  auto ckpt = Checkpoint::Open(out);
  ASSERT_TRUE(ckpt.ok());
  auto m = DiffusionModel::Load(out, std::nullopt);
  ASSERT_TRUE(m.ok());
  auto table = PrefixBlockTable::Create(**ckpt, (*m)->block_prefixes());
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint32_t b = 0; b < (*table)->n_blocks(); ++b) {
    const WeightBlock wb = (*table)->Locate(b);
    EXPECT_TRUE(wb.has_checksum) << (*table)->Describe(b);
    EXPECT_EQ(wb.parts[0].offset % 4096, 0u) << (*table)->Describe(b);
    ranges.emplace_back(wb.parts[0].offset, wb.parts[0].offset + wb.parts[0].bytes);
  }
  // Blocks do not interleave: only alignment padding lies inside a block besides its tensors.
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_LE(ranges[i - 1].second, ranges[i].first);
  // Flip a byte in the middle of a block: the streamed run names it.
  const WeightBlock victim = (*table)->Locate((*table)->n_blocks() / 2);
  const std::string name = (*table)->Describe((*table)->n_blocks() / 2);
  m->reset();
  ckpt->reset();
  const int fd = open(out.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  uint8_t byte = 0;
  const off_t at = static_cast<off_t>(victim.parts[0].offset + victim.parts[0].bytes / 2);
  ASSERT_EQ(pread(fd, &byte, 1, at), 1);
  byte ^= 0x40;
  ASSERT_EQ(pwrite(fd, &byte, 1, at), 1);
  close(fd);
  // SD 2.x models run the UNet while loading (the prediction test): the error may come there.
  auto bad = DiffusionModel::Load(out, DiffusionLoadOptions{.weight_budget = min});
  Status st = bad.status();
  if (bad.ok()) st = Generate(**bad, Options(), nullptr, {}, nullptr).status();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kCorrupt) << st.ToString();
  EXPECT_NE(st.message().find(name), std::string::npos) << st.ToString();
}

TEST_P(ArchiveConvert, Q8_0QuantizesLinearWeightsAndStreamsAsItRunsResident) {
  const std::string out = dir_.File("q8.gguf");
  auto stats = ConvertDiffusionCheckpoint(src_, out, {.type = GgmlType::kQ8_0});
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_GT(stats->quantized, 0u);
  EXPECT_LT(stats->file_bytes, std::filesystem::file_size(src_) + stats->tensors * 4096);
  auto ckpt = Checkpoint::Open(out);
  ASSERT_TRUE(ckpt.ok());
  int q8 = 0;
  for (const CkptTensor& t : (*ckpt)->tensors()) {
    if (t.shape.size() == 4) {
      EXPECT_NE(t.type, GgmlType::kQ8_0) << t.name;  // rows of k
    }
    if (t.shape.size() == 1) {
      EXPECT_EQ(t.type, GgmlType::kF32) << t.name;
    }
    q8 += t.type == GgmlType::kQ8_0;
  }
  EXPECT_EQ(q8, static_cast<int>(stats->quantized));
  ckpt->reset();
  const std::vector<uint8_t> resident = Image(out, 0);
  EXPECT_EQ(Image(out, MinBudget(out)), resident);
  EXPECT_NE(resident, Image(src_, 0));  // quantized: not the F16 bits
}

TEST_P(ArchiveConvert, ACancelledConversionLeavesNoFile) {
  const std::string out = dir_.File("c.gguf");
  std::atomic<bool> cancel{true};
  auto stats = ConvertDiffusionCheckpoint(src_, out, {.cancel = &cancel});
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kCancelled);
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().string().find("c.gguf"), std::string::npos) << e.path();
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, ArchiveConvert,
                         ::testing::Values("sd15", "sd-turbo", "sdxl-turbo"));

}  // namespace
}  // namespace sluice::diffusion
