// A flipped bit anywhere in an archive is an error naming the file, the tensor or expert and the
// checksums, never wrong output with exit 0 (issue 16: dense tensors were used unchecked, and
// `--expert-source mmap` skipped the experts' checksums).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "io/archive_reader.h"
#include "io/gguf_convert.h"
#include "llm/engine.h"
#include "tests/support/test_util.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

class CorruptArchive : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(WriteTinyModel(gguf_, TinyModelSpec{}).ok());
    ASSERT_TRUE(ConvertGgufToArchive(gguf_, archive_).ok());
    auto reader = ArchiveReader::Open(archive_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    // dense_tensors() lists the directory's entries in order.
    const std::vector<TensorInfo>& dense = (*reader)->dense_tensors();
    for (size_t i = 0; i < dense.size(); ++i) {
      if (dense[i].name == "output.weight") output_offset_ = (*reader)->dense_entries()[i].offset;
    }
    const ExpertLocation loc = (*reader)->LocateExpert(1, 3);
    expert_offset_ = loc.matrices[static_cast<int>(ExpertMatrix::kUp)].offset + 5;
    ASSERT_GT(output_offset_, 0u);
  }
  // Prefill then decode every expert of every layer at least once (greedy over 8 experts).
  Status RunAll(EngineOptions o) {
    o.threads = 1;
    auto engine = Engine::Open(archive_, o);
    if (!engine.ok()) return engine.status();
    std::vector<int32_t> prompt;
    for (int i = 0; i < 40; ++i) prompt.push_back((i * 7) % 90 + 1);
    return (*engine)->Prefill(prompt);
  }

  TempDir dir_;
  const std::string gguf_ = dir_.File("m.gguf"), archive_ = dir_.File("m.sluice");
  uint64_t output_offset_ = 0, expert_offset_ = 0;
};

TEST_F(CorruptArchive, AFlippedDenseByteFailsTheLoadNamingTheTensor) {
  ASSERT_TRUE(RunAll({}).ok());
  FlipByte(archive_, output_offset_ + 17);
  for (DenseResidency r : {DenseResidency::kCopy, DenseResidency::kMmap, DenseResidency::kMlock}) {
    Status s = RunAll({.dense = r});
    ASSERT_FALSE(s.ok()) << DenseResidencyName(r);
    EXPECT_EQ(s.code(), StatusCode::kCorrupt);
    EXPECT_NE(s.message().find("dense tensor output.weight"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find("xxh3 expected"), std::string::npos) << s.ToString();
  }
  EXPECT_TRUE(RunAll({.verify_checksums = false}).ok());  // the user's explicit choice
}

TEST_F(CorruptArchive, AFlippedExpertByteFailsEitherExpertSource) {
  FlipByte(archive_, expert_offset_);
  for (ExpertSourceKind k : {ExpertSourceKind::kCache, ExpertSourceKind::kMmap}) {
    Status s = RunAll({.expert_source = k});
    ASSERT_FALSE(s.ok()) << ExpertSourceName(k);
    EXPECT_EQ(s.code(), StatusCode::kCorrupt) << s.ToString();
    EXPECT_NE(s.message().find("expert (layer 1, expert 3)"), std::string::npos) << s.ToString();
    EXPECT_NE(s.message().find(archive_), std::string::npos) << s.ToString();
  }
}

// The model file truncated under a run that computes on the mapping (--dense mmap, --expert-source
// mmap): the next step is an error naming the file, not a SIGBUS (issue 16).
TEST_F(CorruptArchive, AFileTruncatedUnderMappedSourcesIsAnError) {
  for (bool gguf : {false, true}) {
    const std::string path = gguf ? gguf_ : archive_;
    auto engine = Engine::Open(
        path,
        {.threads = 1, .dense = DenseResidency::kMmap, .expert_source = ExpertSourceKind::kMmap});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    ASSERT_TRUE((*engine)->Prefill(std::vector<int32_t>{1, 2, 3}).ok());
    ASSERT_EQ(truncate(path.c_str(), 8192), 0);
    Status s = (*engine)->Decode(4);
    ASSERT_FALSE(s.ok()) << path;
    EXPECT_NE(s.message().find(path + ": the file shrank from "), std::string::npos)
        << s.ToString();
  }
}

}  // namespace
}  // namespace sluice::testing
