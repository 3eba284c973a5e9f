// Malformed GGUFs: each defect of a small valid file gives a Status naming the file, the field and
// its offset; truncations at every length and thousands of random byte flips never crash or read
// outside the image (run under ASan+UBSan in the sanitizer build: each parse gets its own
// exactly-sized heap copy, so one byte of over-read is caught).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "io/gguf_reader.h"
#include "io/metadata_codec.h"
#include "tests/gguf/gguf_test_util.h"

namespace sluice {
namespace {

using testing::RandomTensor;
using testing::ReadBytes;
using testing::TempDir;
using testing::WriteGguf;

constexpr const char* kSource = "mem.gguf";

// A valid file: 4 metadata keys (the first is general.architecture, so its string value's length
// sits at offset 24 + 8 + 20 + 4 = 56) and three tensors a (f32 [4, 2]), b (q8_0 [32, 2]) and
// c (f16 [3]).
std::vector<uint8_t> ValidFile() {
  TempDir dir;
  Metadata meta;
  meta.SetString("general.architecture", "test");
  meta.SetString("test.str", "hello");
  meta.SetI32Array("test.arr", {1, 2, 3});
  meta.SetStringArray("test.strs", {"x", "yz"});
  Status st = WriteGguf(
      dir.File("v.gguf"), meta,
      {RandomTensor("a", GgmlType::kF32, {4, 2}, 1), RandomTensor("b", GgmlType::kQ8_0, {32, 2}, 2),
       RandomTensor("c", GgmlType::kF16, {3}, 3)});
  EXPECT_TRUE(st.ok()) << st.ToString();
  return ReadBytes(dir.File("v.gguf"));
}

Result<GgufLayout> Parse(const std::vector<uint8_t>& bytes) {
  // An exact-size heap copy, so ASan flags any read past the end.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() ? bytes.size() : 1]);
  if (!bytes.empty()) std::memcpy(copy.get(), bytes.data(), bytes.size());
  return ParseGguf(copy.get(), bytes.size(), kSource);
}

template <typename T>
void Poke(std::vector<uint8_t>& bytes, uint64_t offset, T value) {
  ASSERT_LE(offset + sizeof(T), bytes.size());
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

// Where the fields of tensor `i`'s info record are, from the valid file's own layout.
struct InfoOffsets {
  uint64_t n_dims, ne0, type, offset;
};
InfoOffsets FieldsOf(const GgufLayout& layout, size_t i) {
  const GgufTensorInfo& t = layout.tensors[i];
  InfoOffsets o;
  o.n_dims = t.info_offset + 8 + t.name.size();
  o.ne0 = o.n_dims + 4;
  o.type = o.ne0 + 8 * t.n_dims;
  o.offset = o.type + 4;
  return o;
}

// Expects a failure of `code` whose message names the source, `field_text` and `offset_text`.
void ExpectError(const std::vector<uint8_t>& bytes, StatusCode code, const std::string& field_text,
                 const std::string& offset_text) {
  Result<GgufLayout> r = Parse(bytes);
  ASSERT_FALSE(r.ok()) << "parsed a file with a defect in " << field_text;
  const std::string& msg = r.status().message();
  EXPECT_EQ(r.status().code(), code) << msg;
  EXPECT_EQ(msg.rfind(std::string(kSource) + ": ", 0), 0u) << msg;
  EXPECT_NE(msg.find(field_text), std::string::npos) << "want '" << field_text << "' in: " << msg;
  EXPECT_NE(msg.find(offset_text), std::string::npos) << "want '" << offset_text << "' in: " << msg;
}

class Malformed : public ::testing::Test {
 protected:
  void SetUp() override {
    valid_ = ValidFile();
    Result<GgufLayout> layout = Parse(valid_);
    ASSERT_TRUE(layout.ok()) << layout.status().ToString();
    layout_ = std::move(layout).value();
    ASSERT_EQ(layout_.tensors.size(), 3u);
    for (const GgufTensorInfo& t : layout_.tensors) {
      data_end_ = std::max(data_end_, t.file_offset + t.nbytes);
    }
  }
  std::vector<uint8_t> valid_;
  GgufLayout layout_;
  uint64_t data_end_ = 0;  // end of the last tensor's bytes (only padding follows)
};

TEST_F(Malformed, HeaderFields) {
  auto bytes = valid_;
  bytes[0] = 'X';
  ExpectError(bytes, StatusCode::kCorrupt, "magic", "offset 0");
  ExpectError({'G', 'G'}, StatusCode::kCorrupt, "magic", "offset 0");
  ExpectError({}, StatusCode::kCorrupt, "magic", "offset 0");

  for (uint32_t version : {0u, 1u, 4u, 0x03000000u}) {
    bytes = valid_;
    Poke<uint32_t>(bytes, 4, version);
    ExpectError(bytes, StatusCode::kUnsupported, "version", "offset 4");
  }
  bytes = valid_;
  Poke<uint32_t>(bytes, 4, 0x03000000u);
  EXPECT_NE(Parse(bytes).status().message().find("big-endian"), std::string::npos);

  bytes = valid_;
  Poke<uint64_t>(bytes, 8, 1ull << 40);
  ExpectError(bytes, StatusCode::kCorrupt, "tensor_count", "offset 8");
  bytes = valid_;
  Poke<uint64_t>(bytes, 16, 1ull << 62);
  ExpectError(bytes, StatusCode::kCorrupt, "metadata", "offset 24");
  ExpectError(std::vector<uint8_t>(valid_.begin(), valid_.begin() + 20), StatusCode::kCorrupt,
              "metadata_kv_count", "offset 16");
}

TEST_F(Malformed, MetadataLengthsAndTypes) {
  auto bytes = valid_;
  Poke<uint64_t>(bytes, 24, 1ull << 63);  // the first key's length
  ExpectError(bytes, StatusCode::kCorrupt, "key", "offset 24");
  bytes = valid_;
  Poke<uint64_t>(bytes, 56, 1ull << 63);  // general.architecture's string length
  ExpectError(bytes, StatusCode::kCorrupt, "general.architecture", "offset 56");
  bytes = valid_;
  Poke<uint64_t>(bytes, 56, valid_.size());  // below the codec's limit, beyond the file
  ExpectError(bytes, StatusCode::kCorrupt, "general.architecture", "offset 24");
  bytes = valid_;
  Poke<uint32_t>(bytes, 52, 13);  // general.architecture's value type
  ExpectError(bytes, StatusCode::kCorrupt, "general.architecture", "offset 52");
}

// Hand-built files for what the writer cannot produce: nested arrays, a bad general.alignment.
std::vector<uint8_t> Handmade(const std::string& kv_bytes, uint64_t kv_count) {
  std::string out("GGUF", 4);
  const uint32_t version = 3;
  const uint64_t tensors = 0;
  out.append(reinterpret_cast<const char*>(&version), 4);
  out.append(reinterpret_cast<const char*>(&tensors), 8);
  out.append(reinterpret_cast<const char*>(&kv_count), 8);
  out += kv_bytes;
  out.resize(out.size() + 32, '\0');
  return std::vector<uint8_t>(out.begin(), out.end());
}

TEST_F(Malformed, NestedArraysAndBadAlignmentKey) {
  std::string kv;
  const uint64_t key_len = 6, count = 1;
  const uint32_t array = 9;
  kv.append(reinterpret_cast<const char*>(&key_len), 8);
  kv += "nested";
  kv.append(reinterpret_cast<const char*>(&array), 4);
  kv.append(reinterpret_cast<const char*>(&array), 4);  // element type: array
  kv.append(reinterpret_cast<const char*>(&count), 8);
  ExpectError(Handmade(kv, 1), StatusCode::kUnsupported, "nested", "offset 42");

  Metadata meta;
  meta.SetString("general.alignment", "32");
  kv.clear();
  EncodeMetadataKv(meta, &kv);
  ExpectError(Handmade(kv, 1), StatusCode::kCorrupt, "general.alignment", "offsets 24..");
  for (uint32_t bad : {0u, 48u}) {
    Metadata m;
    m.SetU32("general.alignment", bad);
    kv.clear();
    EncodeMetadataKv(m, &kv);
    ExpectError(Handmade(kv, 1), StatusCode::kCorrupt, "power of two", "offsets 24..");
  }
}

TEST_F(Malformed, TensorInfoFields) {
  const InfoOffsets a = FieldsOf(layout_, 0), b = FieldsOf(layout_, 1), c = FieldsOf(layout_, 2);
  const std::string at_a = "offset " + std::to_string(a.n_dims);

  auto bytes = valid_;
  Poke<uint32_t>(bytes, a.n_dims, 7);
  ExpectError(bytes, StatusCode::kCorrupt, "tensor 0 ('a') n_dims", at_a);
  bytes = valid_;
  Poke<uint32_t>(bytes, a.n_dims, 0);
  ExpectError(bytes, StatusCode::kCorrupt, "n_dims", at_a);

  bytes = valid_;
  Poke<uint32_t>(bytes, c.type, 99);
  ExpectError(bytes, StatusCode::kUnsupported, "tensor 2 ('c') type",
              "offset " + std::to_string(c.type));
  bytes = valid_;
  Poke<uint32_t>(bytes, c.type, 4);  // a retired ggml type id
  ExpectError(bytes, StatusCode::kUnsupported, "type", "offset " + std::to_string(c.type));

  bytes = valid_;
  Poke<uint64_t>(bytes, b.ne0, 33);  // not a whole q8_0 block
  ExpectError(bytes, StatusCode::kCorrupt, "('b') ne", "offset " + std::to_string(b.ne0));
  for (uint64_t ne : {0ull, 1ull << 63, ~0ull}) {
    bytes = valid_;
    Poke<uint64_t>(bytes, a.ne0 + 8, ne);
    ExpectError(bytes, StatusCode::kCorrupt, "('a') ne", "offset " + std::to_string(a.ne0 + 8));
  }
  bytes = valid_;
  Poke<uint64_t>(bytes, a.ne0, 1ull << 62);  // 2^62 f32 elements overflow a byte count
  ExpectError(bytes, StatusCode::kCorrupt, "overflows", "offset " + std::to_string(a.ne0));
  bytes = valid_;
  Poke<uint64_t>(bytes, a.ne0 + 8, 1ull << 40);  // fits 64 bits, not the file
  ExpectError(bytes, StatusCode::kCorrupt, "beyond the end", "offset " + std::to_string(a.offset));

  bytes = valid_;
  Poke<uint64_t>(bytes, c.offset, 8);
  ExpectError(bytes, StatusCode::kCorrupt, "not a multiple of the alignment",
              "offset " + std::to_string(c.offset));
  for (uint64_t off : {uint64_t{valid_.size()} / 32 * 32 + 32, ~uint64_t{31}}) {
    bytes = valid_;
    Poke<uint64_t>(bytes, c.offset, off);
    ExpectError(bytes, StatusCode::kCorrupt, "('c') offset", "offset " + std::to_string(c.offset));
  }

  bytes = valid_;
  bytes[layout_.tensors[1].info_offset + 8] = 'a';  // rename b to a
  ExpectError(bytes, StatusCode::kCorrupt, "appears twice",
              "offset " + std::to_string(layout_.tensors[1].info_offset));
  bytes = valid_;
  Poke<uint64_t>(bytes, layout_.tensors[2].info_offset, 1ull << 63);  // c's name length
  ExpectError(bytes, StatusCode::kCorrupt, "tensor 2 name",
              "offset " + std::to_string(layout_.tensors[2].info_offset));

  bytes = valid_;
  Poke<uint64_t>(bytes, layout_.tensors[2].info_offset, 0);  // c's name length
  ExpectError(bytes, StatusCode::kCorrupt, "empty tensor name",
              "offset " + std::to_string(layout_.tensors[2].info_offset));

  bytes = valid_;
  Poke<uint64_t>(bytes, 8, 4);  // one tensor more than the infos hold
  ExpectError(bytes, StatusCode::kCorrupt, "tensor 3", "offset");
}

TEST_F(Malformed, EveryTruncationFailsCleanly) {
  for (uint64_t size = 0; size < valid_.size(); ++size) {
    std::vector<uint8_t> cut(valid_.begin(), valid_.begin() + size);
    Result<GgufLayout> r = Parse(cut);
    if (size < data_end_) {
      ASSERT_FALSE(r.ok()) << "truncated to " << size << " bytes but parsed";
      const std::string& msg = r.status().message();
      EXPECT_EQ(msg.rfind(std::string(kSource) + ": ", 0), 0u) << msg;
      EXPECT_NE(msg.find("offset"), std::string::npos) << msg;
    } else {
      // Only the padding after the last tensor is missing: every byte of data is still there.
      EXPECT_TRUE(r.ok()) << size << ": " << r.status().ToString();
    }
  }
}

TEST_F(Malformed, TruncatedFilesOnDiskFailCleanly) {
  TempDir dir;
  const std::string path = dir.File("t.gguf");
  for (uint64_t size = 0; size < data_end_; size += 13) {
    testing::WriteBytes(path, std::vector<uint8_t>(valid_.begin(), valid_.begin() + size));
    Result<std::unique_ptr<GgufFile>> f = GgufFile::Open(path);
    ASSERT_FALSE(f.ok()) << size;
    EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
  }
}

// Random flips of 1-4 bytes, mostly in the header and tensor infos (where the structure is).
// Whatever the outcome, a parse that succeeds must describe tensors inside the image.
TEST_F(Malformed, RandomByteFlipsNeverCrash) {
  std::mt19937 rng(1234);
  const uint64_t structure = layout_.data_offset;
  int failures = 0;
  constexpr int kIterations = 4000;
  for (int iter = 0; iter < kIterations; ++iter) {
    auto bytes = valid_;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const uint64_t range = (rng() % 8 == 0) ? bytes.size() : structure;
      bytes[rng() % range] ^= static_cast<uint8_t>(1 + rng() % 255);
    }
    Result<GgufLayout> r = Parse(bytes);
    if (!r.ok()) {
      ++failures;
      const std::string& msg = r.status().message();
      ASSERT_EQ(msg.rfind(std::string(kSource) + ": ", 0), 0u) << msg;
      ASSERT_NE(msg.find("offset"), std::string::npos) << msg;
      continue;
    }
    for (const GgufTensorInfo& t : r->tensors) {
      ASSERT_LE(t.file_offset + t.nbytes, bytes.size()) << t.name;
      ASSERT_EQ(t.file_offset % r->alignment, 0u) << t.name;
      ASSERT_GE(t.n_dims, 1);
      ASSERT_LE(t.n_dims, 4);
    }
  }
  // Most flips land in lengths, counts, types and shapes, which must be caught.
  EXPECT_GT(failures, kIterations / 4);
}

}  // namespace
}  // namespace sluice
