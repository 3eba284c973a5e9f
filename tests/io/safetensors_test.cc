// Safetensors: what the writer writes the reader reads back exactly (names, dtypes, shapes,
// bytes, metadata); every malformed file is refused with an error naming the file, the tensor and
// the problem, and nothing is read outside the file.
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "io/safetensors_writer.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {
namespace {

std::string LengthPrefix(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(n >> (8 * i));
  return s;
}

// A file of the given header text followed by `data_bytes` zero bytes.
std::string Image(const std::string& header, uint64_t data_bytes) {
  return LengthPrefix(header.size()) + header + std::string(data_bytes, '\0');
}

Result<SafetensorsLayout> Parse(const std::string& image) {
  return ParseSafetensors(reinterpret_cast<const uint8_t*>(image.data()), image.size(), "x.st");
}

TEST(Safetensors, WriterAndReaderAgree) {
  TempDir dir;
  const std::string path = dir.File("m.safetensors");
  auto w = SafetensorsWriter::Create(path);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  w->SetMetadata("format", "pt");
  ASSERT_TRUE(w->Declare("a.weight", SafetensorsDtype::kF32, {2, 3}).ok());
  ASSERT_TRUE(w->Declare("b", SafetensorsDtype::kF16, {5}).ok());
  ASSERT_TRUE(w->Declare("scalar", SafetensorsDtype::kI64, {}).ok());
  EXPECT_FALSE(w->Declare("b", SafetensorsDtype::kF16, {1}).ok());  // duplicate
  ASSERT_TRUE(w->Begin().ok());
  const float a[6] = {1, 2, 3, 4, 5, 6};
  const uint16_t b[5] = {1, 2, 3, 4, 5};
  const int64_t s = -7;
  ASSERT_TRUE(w->Write(a, sizeof(a)).ok());
  ASSERT_TRUE(w->Write(b, sizeof(b)).ok());
  ASSERT_TRUE(w->Write(&s, sizeof(s)).ok());
  ASSERT_TRUE(w->Finish().ok());

  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  ASSERT_EQ((*f)->tensors().size(), 3u);
  const SafetensorsTensor* ta = (*f)->Find("a.weight");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->dtype, SafetensorsDtype::kF32);
  EXPECT_EQ(ta->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(0, std::memcmp((*f)->Data(*ta), a, sizeof(a)));
  EXPECT_EQ(ta->offset % 8, 0u);  // the header is padded to 8
  const SafetensorsTensor* tb = (*f)->Find("b");
  ASSERT_NE(tb, nullptr);
  EXPECT_EQ(0, std::memcmp((*f)->Data(*tb), b, sizeof(b)));
  const SafetensorsTensor* ts = (*f)->Find("scalar");
  ASSERT_NE(ts, nullptr);
  EXPECT_TRUE(ts->shape.empty());
  EXPECT_EQ(ts->elements(), 1);
  EXPECT_EQ(0, std::memcmp((*f)->Data(*ts), &s, sizeof(s)));
  EXPECT_EQ((*f)->Find("nope"), nullptr);
  EXPECT_EQ(dir.List().size(), 1u) << "no temporary file left";
}

TEST(Safetensors, AnUnfinishedWriteLeavesNothing) {
  TempDir dir;
  {
    auto w = SafetensorsWriter::Create(dir.File("m.safetensors"));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE(w->Declare("a", SafetensorsDtype::kF32, {4}).ok());
    ASSERT_TRUE(w->Begin().ok());
    EXPECT_FALSE(w->Finish().ok());  // no data written
  }
  EXPECT_TRUE(dir.List().empty());
}

TEST(Safetensors, MalformedFilesAreRefusedNamingTheProblem) {
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  struct Case {
    std::string image;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"", "8-byte header length"},
      {LengthPrefix(1000) + "{}", "exceeds the file"},
      {LengthPrefix(uint64_t{1} << 40) + "{}", "exceeds the 100 MB limit"},
      {Image("{not json", 0), "not a JSON object"},
      {Image("[1,2]", 0), "not a JSON object"},
      {Image(R"({"t":3})", 0), "tensor 't': its entry is not an object"},
      {Image(R"({"t":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4), "dtype 'F33'"},
      {Image(R"({"t":{"shape":[1],"data_offsets":[0,4]}})", 4), "no dtype"},
      {Image(R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4), "dimension"},
      {Image(R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4), "dimension"},
      {Image(R"({"t":{"dtype":"F32","shape":"x","data_offsets":[0,4]}})", 4), "shape must be"},
      {Image(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "needs 12 bytes"},
      {Image(
           R"({"t":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,8]}})",
           8),
       "more than 2^64"},
      {Image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "inside the 4-byte"},
      {Image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "not a range"},
      {Image(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), "data_offsets must be"},
      {Image("{" + ok_entry + R"(,"u":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "overlaps"},
      {Image(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "belong to no tensor"},
      {Image("{" + ok_entry + "}", 12), "4 bytes after the last tensor"},
      {Image(R"({"__metadata__":{"a":1}})", 0), "not a string"},
  };
  for (const Case& c : cases) {
    Result<SafetensorsLayout> r = Parse(c.image);
    ASSERT_FALSE(r.ok()) << "accepted: " << c.image.substr(8, 120);
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << r.status().ToString() << "  lacks  " << c.says;
    EXPECT_NE(r.status().message().find("x.st"), std::string::npos) << "names the file";
  }
  // And a valid one of the same kind parses.
  Result<SafetensorsLayout> good = Parse(Image("{" + ok_entry + "}", 8));
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(good->tensors[0].offset, 8u + ("{" + ok_entry + "}").size());
}

TEST(Safetensors, OpenRefusesWhatIsNotAFile) {
  TempDir dir;
  EXPECT_EQ(SafetensorsFile::Open(dir.File("missing")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(SafetensorsFile::Open(dir.path()).status().code(), StatusCode::kInvalidArgument);
  std::ofstream(dir.File("short")) << "abc";
  EXPECT_EQ(SafetensorsFile::Open(dir.File("short")).status().code(), StatusCode::kCorrupt);
}

}  // namespace
}  // namespace sluice::testing
