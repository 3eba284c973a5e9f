// Split GGUFs (NAME-0000K-of-0000N.gguf) written by GgufWriter read back as one model from any
// shard; missing, renamed and inconsistent shards give errors naming the file.
#include "io/gguf_split.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "tests/gguf/gguf_test_util.h"

namespace sluice {
namespace {

using testing::RandomTensor;
using testing::TempDir;
using testing::TestTensor;
using testing::WriteGguf;

TEST(GgufSplitPath, ParsesAndFormatsShardNames) {
  std::optional<GgufSplitName> n = ParseGgufSplitPath("/d/model-00002-of-00003.gguf");
  ASSERT_TRUE(n.has_value());
  EXPECT_EQ(n->prefix, "/d/model");
  EXPECT_EQ(n->shard_no, 2);
  EXPECT_EQ(n->shard_count, 3);
  EXPECT_EQ(GgufSplitPath("/d/model", 2, 3), "/d/model-00002-of-00003.gguf");
  EXPECT_FALSE(ParseGgufSplitPath("/d/model.gguf").has_value());
  EXPECT_FALSE(ParseGgufSplitPath("-00001-of-00003.gguf").has_value()) << "empty prefix";
  EXPECT_FALSE(ParseGgufSplitPath("m-00004-of-00003.gguf").has_value());
  EXPECT_FALSE(ParseGgufSplitPath("m-00000-of-00003.gguf").has_value());
  EXPECT_FALSE(ParseGgufSplitPath("m-0001-of-00003.gguf").has_value());
  EXPECT_FALSE(ParseGgufSplitPath("m-00001-of-00003.bin").has_value());
}

class Split : public ::testing::Test {
 protected:
  void SetUp() override {
    meta_.SetString("general.architecture", "splittest");
    meta_.SetU32("splittest.block_count", 3);
    meta_.SetStringArray("tokenizer.ggml.tokens", {"a", "b", "c"});
    for (int i = 0; i < 7; ++i) {
      tensors_.push_back(RandomTensor(StrCat("t", i), i % 2 ? GgmlType::kQ8_0 : GgmlType::kF32,
                                      {32, i + 1}, 10 + i));
    }
    ASSERT_TRUE(WriteGguf(dir_.File("m.gguf"), meta_, tensors_,
                          {.alignment = 64, .max_tensors_per_shard = 3})
                    .ok());
  }
  std::string Shard(int no) const { return dir_.File(GgufSplitPath("m", no, 3)); }

  TempDir dir_;
  Metadata meta_;
  std::vector<TestTensor> tensors_;
};

TEST_F(Split, WriterNamesShardsAndSpreadsTensors) {
  EXPECT_EQ(dir_.List(), (std::vector<std::string>{"m-00001-of-00003.gguf", "m-00002-of-00003.gguf",
                                                   "m-00003-of-00003.gguf"}));
  // Shards 2 and 3 carry only the split keys (and the alignment their layout needs).
  auto second = GgufFile::Open(Shard(2));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ((*second)->metadata().keys(),
            (std::vector<std::string>{"general.alignment", "split.no", "split.count",
                                      "split.tensors.count"}));
  EXPECT_EQ(*(*second)->metadata().GetUint("split.no"), 1u);
  EXPECT_EQ(*(*second)->metadata().GetUint("split.count"), 3u);
  EXPECT_EQ(*(*second)->metadata().GetInt("split.tensors.count"), 7);
  EXPECT_EQ((*second)->metadata().Find("split.no")->type, MetaType::kU16);
  ASSERT_EQ((*second)->tensors().size(), 3u);
  EXPECT_EQ((*second)->tensors()[0].name, "t3");
}

TEST_F(Split, AnyShardOpensTheWholeModel) {
  for (int no = 1; no <= 3; ++no) {
    SCOPED_TRACE(no);
    Result<std::unique_ptr<GgufModel>> model = GgufModel::Open(Shard(no));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    const GgufModel& m = **model;
    EXPECT_EQ(m.path(), Shard(no));
    EXPECT_EQ(m.shard_paths(), (std::vector<std::string>{Shard(1), Shard(2), Shard(3)}));
    std::vector<std::string> want_keys = meta_.keys();
    want_keys.push_back("general.alignment");  // 64 was asked for
    EXPECT_EQ(m.metadata().keys(), want_keys) << "the first shard's keys, no split.* keys";
    EXPECT_EQ(*m.metadata().GetString("general.architecture"), "splittest");
    ASSERT_EQ(m.tensors().size(), tensors_.size());
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const GgufModel::Tensor& t = m.tensors()[i];
      EXPECT_EQ(t.info->name, tensors_[i].spec.name);
      EXPECT_EQ(t.shard, static_cast<int>(i / 3));
      EXPECT_EQ(m.FindTensor(t.info->name), &t);
      ASSERT_EQ(t.info->nbytes, tensors_[i].bytes.size());
      EXPECT_EQ(std::memcmp(m.TensorData(t), tensors_[i].bytes.data(), t.info->nbytes), 0);
    }
  }
}

TEST_F(Split, MissingShardIsNamed) {
  std::filesystem::remove(Shard(2));
  for (int no : {1, 3}) {
    Result<std::unique_ptr<GgufModel>> model = GgufModel::Open(Shard(no));
    ASSERT_FALSE(model.ok());
    EXPECT_EQ(model.status().code(), StatusCode::kNotFound);
    EXPECT_NE(model.status().message().find("m-00002-of-00003.gguf"), std::string::npos)
        << model.status().message();
    EXPECT_NE(model.status().message().find("shard 2 of 3"), std::string::npos);
  }
}

TEST_F(Split, RenamedOrSwappedShardsAreRefused) {
  std::filesystem::copy_file(Shard(1), dir_.File("renamed.gguf"));
  Result<std::unique_ptr<GgufModel>> renamed = GgufModel::Open(dir_.File("renamed.gguf"));
  ASSERT_FALSE(renamed.ok());
  EXPECT_NE(renamed.status().message().find("-of-"), std::string::npos);

  // Shard 3's bytes under shard 2's name: split.no says 2 (0-based), the name says index 1.
  std::filesystem::copy_file(Shard(3), Shard(2), std::filesystem::copy_options::overwrite_existing);
  Result<std::unique_ptr<GgufModel>> swapped = GgufModel::Open(Shard(1));
  ASSERT_FALSE(swapped.ok());
  EXPECT_EQ(swapped.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(swapped.status().message().find(Shard(2)), std::string::npos)
      << swapped.status().message();
  EXPECT_NE(swapped.status().message().find("split.no"), std::string::npos);
}

TEST(SplitSingle, OneShardSplitAndPlainFileBothOpen) {
  TempDir dir;
  Metadata meta;
  meta.SetString("general.architecture", "x");
  std::vector<TestTensor> tensors = {RandomTensor("a", GgmlType::kF32, {4}, 1)};
  ASSERT_TRUE(WriteGguf(dir.File("one.gguf"), meta, tensors, {.max_tensors_per_shard = 5}).ok());
  ASSERT_TRUE(WriteGguf(dir.File("plain.gguf"), meta, tensors).ok());
  EXPECT_EQ(dir.List(), (std::vector<std::string>{"one-00001-of-00001.gguf", "plain.gguf"}));
  for (const char* name : {"one-00001-of-00001.gguf", "plain.gguf"}) {
    Result<std::unique_ptr<GgufModel>> model = GgufModel::Open(dir.File(name));
    ASSERT_TRUE(model.ok()) << model.status().ToString();
    EXPECT_EQ((*model)->shard_count(), 1);
    EXPECT_EQ((*model)->metadata().keys(), meta.keys());
    EXPECT_EQ((*model)->tensors().size(), 1u);
  }
}

}  // namespace
}  // namespace sluice
