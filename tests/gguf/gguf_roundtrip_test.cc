// GgufWriter -> GgufFile round trips: every metadata value type and array element type, odd
// shapes of every block geometry, alignments from 1 to 4096, versions 2 and 3, streaming appends,
// and the writer's refusal of misuse without leaving files behind.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "io/gguf_reader.h"
#include "io/gguf_writer.h"
#include "tests/gguf/gguf_test_util.h"

namespace sluice {
namespace {

using testing::ExpectSameValue;
using testing::RandomTensor;
using testing::ReadBytes;
using testing::TempDir;
using testing::TestTensor;
using testing::WriteGguf;

MetaValue Scalar(MetaType type, uint64_t u, int64_t i = 0, double f = 0) {
  MetaValue v;
  v.type = type;
  v.u = u;
  v.i = i;
  v.f = f;
  return v;
}

MetaValue IntArray(MetaType element, std::vector<int64_t> values) {
  MetaValue v;
  v.type = MetaType::kArray;
  v.array_type = element;
  v.ints = std::move(values);
  return v;
}

MetaValue FloatArray(MetaType element, std::vector<double> values) {
  MetaValue v;
  v.type = MetaType::kArray;
  v.array_type = element;
  v.floats = std::move(values);
  return v;
}

// Every scalar type at its extremes, and every array element type (empty arrays too). Float32
// values are exactly representable so they survive the narrowing.
Metadata EveryType() {
  Metadata m;
  m.SetString("general.architecture", "roundtrip");
  m.Set("t.u8", Scalar(MetaType::kU8, 255));
  m.Set("t.i8", Scalar(MetaType::kI8, 0, -128));
  m.Set("t.u16", Scalar(MetaType::kU16, 65535));
  m.Set("t.i16", Scalar(MetaType::kI16, 0, -32768));
  m.Set("t.u32", Scalar(MetaType::kU32, 0xFFFFFFFFu));
  m.Set("t.i32", Scalar(MetaType::kI32, 0, std::numeric_limits<int32_t>::min()));
  m.Set("t.f32", Scalar(MetaType::kF32, 0, 0, -1.5));
  m.Set("t.bool_true", Scalar(MetaType::kBool, 1));
  m.Set("t.bool_false", Scalar(MetaType::kBool, 0));
  m.SetString("t.string", std::string("h\xC3\xA9llo\0world\n", 13));
  m.SetString("t.empty_string", "");
  m.Set("t.u64", Scalar(MetaType::kU64, std::numeric_limits<uint64_t>::max()));
  m.Set("t.i64", Scalar(MetaType::kI64, 0, std::numeric_limits<int64_t>::min()));
  m.Set("t.f64", Scalar(MetaType::kF64, 0, 0, 3.141592653589793));
  m.Set("a.u8", IntArray(MetaType::kU8, {0, 1, 255}));
  m.Set("a.i8", IntArray(MetaType::kI8, {-128, 0, 127}));
  m.Set("a.u16", IntArray(MetaType::kU16, {65535, 7}));
  m.Set("a.i16", IntArray(MetaType::kI16, {-32768, 32767}));
  m.Set("a.u32", IntArray(MetaType::kU32, {0xFFFFFFFFll, 0}));
  m.Set("a.i32", IntArray(MetaType::kI32, {-5, 2147483647}));
  m.Set("a.bool", IntArray(MetaType::kBool, {1, 0, 1}));
  // Unsigned 64-bit values are held bit-cast in `ints`.
  m.Set("a.u64", IntArray(MetaType::kU64, {-1, 1}));
  m.Set("a.i64", IntArray(MetaType::kI64, {std::numeric_limits<int64_t>::min(), 42}));
  m.Set("a.f32", FloatArray(MetaType::kF32, {0.25, -1e10, 1.0f / 3.0f}));
  m.Set("a.f64", FloatArray(MetaType::kF64, {0.1, -2.5e-300}));
  m.Set("a.empty_i32", IntArray(MetaType::kI32, {}));
  m.SetStringArray("a.strings", {"", "\xE4\xB8\xAD", std::string(300, 'x')});
  m.SetStringArray("a.empty_strings", {});
  return m;
}

// Odd shapes of each block geometry, with byte sizes worked out by hand from the block tables:
// f16 2 B/elem; q8_0 34 B per 32; q4_K 144 B per 256; q4_0 18 B per 32; mxfp4 17 B per 32.
struct ShapeCase {
  const char* name;
  GgmlType type;
  std::vector<int64_t> ne;
  uint64_t nbytes;
};
const std::vector<ShapeCase>& Shapes() {
  static const std::vector<ShapeCase> kShapes = {
      {"f32.vec", GgmlType::kF32, {3}, 12},          {"f16.mat", GgmlType::kF16, {5, 3}, 30},
      {"q8_0.3d", GgmlType::kQ8_0, {32, 3, 2}, 204}, {"q4_K.row", GgmlType::kQ4_K, {256, 1}, 144},
      {"i8.4d", GgmlType::kI8, {7, 1, 1, 2}, 14},    {"bf16.one", GgmlType::kBF16, {1}, 2},
      {"q4_0.3d", GgmlType::kQ4_0, {64, 3, 5}, 540}, {"mxfp4.mat", GgmlType::kMXFP4, {32, 2}, 34},
      {"f64.mat", GgmlType::kF64, {1, 9}, 72},
  };
  return kShapes;
}

std::vector<TestTensor> ShapeTensors() {
  std::vector<TestTensor> out;
  uint32_t seed = 1;
  for (const ShapeCase& s : Shapes()) out.push_back(RandomTensor(s.name, s.type, s.ne, seed++));
  return out;
}

class RoundTrip : public ::testing::TestWithParam<std::tuple<uint32_t, uint32_t>> {};

TEST_P(RoundTrip, EveryMetadataTypeAndShapeSurvives) {
  const auto [version, alignment] = GetParam();
  TempDir dir;
  const std::string path = dir.File("m.gguf");
  const Metadata meta = EveryType();
  const std::vector<TestTensor> tensors = ShapeTensors();
  ASSERT_TRUE(WriteGguf(path, meta, tensors, {.version = version, .alignment = alignment}).ok());
  EXPECT_EQ(dir.List(), std::vector<std::string>{"m.gguf"}) << "no temporary file left behind";

  Result<std::unique_ptr<GgufFile>> file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  const GgufFile& f = **file;
  EXPECT_EQ(f.version(), version);
  EXPECT_EQ(f.alignment(), alignment);
  EXPECT_EQ(f.data_offset() % alignment, 0u);

  // Same keys in the same order; general.alignment appended only when not the default.
  std::vector<std::string> want_keys = meta.keys();
  if (alignment != 32) want_keys.push_back("general.alignment");
  EXPECT_EQ(f.metadata().keys(), want_keys);
  for (const std::string& key : meta.keys()) {
    ASSERT_NE(f.metadata().Find(key), nullptr) << key;
    ExpectSameValue(key, *meta.Find(key), *f.metadata().Find(key));
  }
  EXPECT_EQ(f.metadata().source(), path);

  ASSERT_EQ(f.tensors().size(), Shapes().size());
  for (size_t i = 0; i < Shapes().size(); ++i) {
    const ShapeCase& want = Shapes()[i];
    const GgufTensorInfo& t = f.tensors()[i];
    SCOPED_TRACE(want.name);
    EXPECT_EQ(t.name, want.name);
    EXPECT_EQ(t.type, want.type);
    EXPECT_EQ(t.n_dims, static_cast<int>(want.ne.size()));
    for (int d = 0; d < 4; ++d) {
      EXPECT_EQ(t.ne[d], d < t.n_dims ? want.ne[d] : 1) << "dim " << d;
    }
    EXPECT_EQ(t.nbytes, want.nbytes);
    EXPECT_EQ(t.file_offset % alignment, 0u);
    EXPECT_EQ(t.file_offset, f.data_offset() + t.relative_offset);
    EXPECT_EQ(f.FindTensor(want.name), &t);
    ASSERT_EQ(tensors[i].bytes.size(), t.nbytes);
    EXPECT_EQ(std::memcmp(f.TensorData(t), tensors[i].bytes.data(), t.nbytes), 0);
  }
  EXPECT_EQ(f.FindTensor("absent"), nullptr);
  // Tensors are padded to the alignment, the last one too, so the file ends on a boundary.
  EXPECT_EQ(f.file_size() % alignment, 0u);
}

INSTANTIATE_TEST_SUITE_P(VersionsAndAlignments, RoundTrip,
                         ::testing::Combine(::testing::Values(2u, 3u),
                                            ::testing::Values(1u, 8u, 32u, 64u, 4096u)));

TEST(GgufWriter, StreamingAppendsInPiecesEqualWholeTensorWrites) {
  TempDir dir;
  const std::vector<TestTensor> tensors = ShapeTensors();
  const Metadata meta = EveryType();
  ASSERT_TRUE(WriteGguf(dir.File("whole.gguf"), meta, tensors).ok());

  std::vector<GgufTensorSpec> specs;
  for (const TestTensor& t : tensors) specs.push_back(t.spec);
  auto writer = GgufWriter::Create(dir.File("pieces.gguf"), meta, specs);
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  const uint64_t pieces[] = {1, 7, 1000, 3};
  size_t k = 0;
  for (const TestTensor& t : tensors) {
    for (uint64_t at = 0; at < t.bytes.size();) {
      const uint64_t n = std::min<uint64_t>(pieces[k++ % 4], t.bytes.size() - at);
      ASSERT_TRUE((*writer)->Append(t.bytes.data() + at, n).ok());
      at += n;
    }
  }
  EXPECT_EQ((*writer)->next_tensor(), tensors.size());
  ASSERT_TRUE((*writer)->Finish().ok());
  const std::vector<uint8_t> whole = ReadBytes(dir.File("whole.gguf"));
  EXPECT_EQ(whole, ReadBytes(dir.File("pieces.gguf")));
  EXPECT_EQ(whole.size(), (*writer)->total_bytes());
}

TEST(GgufWriter, VocabularyOnlyFileWithoutTensors) {
  TempDir dir;
  Metadata meta;
  meta.SetStringArray("tokenizer.ggml.tokens", {"a", "b"});
  ASSERT_TRUE(WriteGguf(dir.File("v.gguf"), meta, {}).ok());
  auto file = GgufFile::Open(dir.File("v.gguf"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE((*file)->tensors().empty());
  EXPECT_EQ(*(*file)->metadata().GetStringArray("tokenizer.ggml.tokens"),
            (std::vector<std::string>{"a", "b"}));
}

TEST(GgufWriter, MisuseIsRefusedAndLeavesNoFiles) {
  TempDir dir;
  const std::vector<TestTensor> tensors = ShapeTensors();
  std::vector<GgufTensorSpec> specs;
  for (const TestTensor& t : tensors) specs.push_back(t.spec);
  {
    auto writer = GgufWriter::Create(dir.File("m.gguf"), Metadata(), specs);
    ASSERT_TRUE(writer.ok());
    GgufWriter& w = **writer;
    Status st = w.WriteTensor("f16.mat", tensors[1].bytes.data(), tensors[1].bytes.size());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_NE(st.message().find("'f32.vec'"), std::string::npos) << st.message();
    st = w.WriteTensor("f32.vec", tensors[0].bytes.data(), 11);
    EXPECT_NE(st.message().find("needs 12"), std::string::npos) << st.message();
    st = w.Append(tensors[0].bytes.data(), 13);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.message();
    ASSERT_TRUE(w.Append(tensors[0].bytes.data(), 12).ok());
    st = w.Finish();
    EXPECT_NE(st.message().find("'f16.mat'"), std::string::npos) << st.message();
    EXPECT_EQ(dir.List().size(), 1u) << "only the temporary file exists while writing";
  }
  EXPECT_TRUE(dir.List().empty()) << "an unfinished writer removes its temporary file";

  auto bad_shape =
      GgufWriter::Create(dir.File("m.gguf"), Metadata(), {{"bad", GgmlType::kQ4_K, {100, 2}}});
  ASSERT_FALSE(bad_shape.ok());
  EXPECT_NE(bad_shape.status().message().find("'bad'"), std::string::npos);
  auto twice = GgufWriter::Create(dir.File("m.gguf"), Metadata(),
                                  {{"x", GgmlType::kF32, {1}}, {"x", GgmlType::kF32, {2}}});
  EXPECT_FALSE(twice.ok());
  auto five_dims =
      GgufWriter::Create(dir.File("m.gguf"), Metadata(), {{"x", GgmlType::kF32, {1, 1, 1, 1, 1}}});
  EXPECT_FALSE(five_dims.ok());
  auto bad_alignment = GgufWriter::Create(dir.File("m.gguf"), Metadata(), {}, {.alignment = 48});
  EXPECT_FALSE(bad_alignment.ok());
  auto bad_version = GgufWriter::Create(dir.File("m.gguf"), Metadata(), {}, {.version = 1});
  EXPECT_FALSE(bad_version.ok());
  EXPECT_TRUE(dir.List().empty());
}

TEST(GgufFile, OpenReportsMissingAndNonRegularFiles) {
  TempDir dir;
  auto missing = GgufFile::Open(dir.File("nope.gguf"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.gguf"), std::string::npos);
  auto directory = GgufFile::Open(dir.path());
  EXPECT_FALSE(directory.ok());
  testing::WriteBytes(dir.File("empty.gguf"), {});
  auto empty = GgufFile::Open(dir.File("empty.gguf"));
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(empty.status().message().find("empty.gguf"), std::string::npos);
}

}  // namespace
}  // namespace sluice
