// Round trip and error tests for the GGUF KV encoding (io/metadata_codec.h).
#include "io/metadata_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <limits>

namespace sluice {
namespace {

Metadata SampleMetadata() {
  Metadata m("sample");
  m.SetString("general.architecture", "qwen3moe");
  m.SetU32("qwen3moe.block_count", 94);
  m.SetU64("big", 1ull << 40);
  m.SetI32("neg", -7);
  m.SetF32("qwen3moe.rope.freq_base", 1000000.0f);
  m.SetBool("flag", true);
  m.SetStringArray("tokenizer.ggml.tokens", {"a", "", "\xe4\xbd\xa0", "<|im_end|>"});
  m.SetF32Array("tokenizer.ggml.scores", {0.5f, -1.25f, 3.0e-8f});
  m.SetI32Array("tokenizer.ggml.token_type", {1, 3, -2});
  MetaValue u8;
  u8.type = MetaType::kU8;
  u8.u = 255;
  m.Set("u8", u8);
  MetaValue i16;
  i16.type = MetaType::kI16;
  i16.i = -32768;
  m.Set("i16", i16);
  MetaValue f64;
  f64.type = MetaType::kF64;
  f64.f = 3.141592653589793;
  m.Set("f64", f64);
  MetaValue u64arr;
  u64arr.type = MetaType::kArray;
  u64arr.array_type = MetaType::kU64;
  u64arr.ints = {0, -1 /* 2^64-1 bit-cast */, 42};
  m.Set("u64arr", u64arr);
  MetaValue boolarr;
  boolarr.type = MetaType::kArray;
  boolarr.array_type = MetaType::kBool;
  boolarr.ints = {1, 0, 1};
  m.Set("boolarr", boolarr);
  return m;
}

TEST(MetadataCodec, RoundTripIsByteExact) {
  Metadata m = SampleMetadata();
  std::string bytes;
  EncodeMetadataKv(m, &bytes);
  uint64_t consumed = 0;
  Result<Metadata> back = DecodeMetadataKv(reinterpret_cast<const uint8_t*>(bytes.data()),
                                           bytes.size(), m.size(), "x.gguf", 100, &consumed);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(consumed, bytes.size());
  EXPECT_EQ(back->keys(), m.keys());
  EXPECT_EQ(back->source(), "x.gguf");
  EXPECT_EQ(*back->GetString("general.architecture"), "qwen3moe");
  EXPECT_EQ(*back->GetUint("qwen3moe.block_count"), 94u);
  EXPECT_EQ(*back->GetUint("big"), 1ull << 40);
  EXPECT_EQ(*back->GetInt("neg"), -7);
  EXPECT_EQ(*back->GetFloat("qwen3moe.rope.freq_base"), 1000000.0);
  EXPECT_TRUE(*back->GetBool("flag"));
  EXPECT_EQ(*back->GetUint("u8"), 255u);
  EXPECT_EQ(*back->GetInt("i16"), -32768);
  EXPECT_EQ(*back->GetFloat("f64"), 3.141592653589793);
  EXPECT_EQ(back->GetStringArray("tokenizer.ggml.tokens")->at(2), "\xe4\xbd\xa0");
  EXPECT_EQ(back->GetFloatArray("tokenizer.ggml.scores")->at(2), static_cast<double>(3.0e-8f));
  EXPECT_EQ(back->GetIntArray("tokenizer.ggml.token_type")->at(2), -2);
  EXPECT_EQ(static_cast<uint64_t>(back->GetIntArray("u64arr")->at(1)),
            std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(back->Find("boolarr")->array_type, MetaType::kBool);
  std::string again;
  EncodeMetadataKv(*back, &again);
  EXPECT_EQ(again, bytes);
}

TEST(MetadataCodec, KnownBytesForOneKey) {
  Metadata m;
  m.SetU32("ab", 0x01020304);
  std::string bytes;
  EncodeMetadataKv(m, &bytes);
  const unsigned char expected[] = {2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 4, 0, 0, 0, 4, 3, 2, 1};
  ASSERT_EQ(bytes.size(), sizeof(expected));
  EXPECT_EQ(std::memcmp(bytes.data(), expected, sizeof(expected)), 0);
}

TEST(MetadataCodec, EveryTruncationIsAnErrorNamingSourceAndOffset) {
  Metadata m = SampleMetadata();
  std::string bytes;
  EncodeMetadataKv(m, &bytes);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    Result<Metadata> r = DecodeMetadataKv(reinterpret_cast<const uint8_t*>(bytes.data()), cut,
                                          m.size(), "cut.gguf", 1000, nullptr);
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_NE(r.status().message().find("cut.gguf"), std::string::npos);
    EXPECT_NE(r.status().message().find("offset"), std::string::npos);
  }
}

TEST(MetadataCodec, BadTypeNamesKeyAndAbsoluteOffset) {
  Metadata m;
  m.SetU32("general.alignment", 32);
  std::string bytes;
  EncodeMetadataKv(m, &bytes);
  bytes[8 + 17] = 99;  // the type id after the 17-byte key
  Result<Metadata> r = DecodeMetadataKv(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size(), 1, "t.gguf", 24, nullptr);
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.status().message();
  EXPECT_NE(msg.find("general.alignment"), std::string::npos) << msg;
  EXPECT_NE(msg.find("unknown value type 99"), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset 49"), std::string::npos) << msg;  // 24 + 8 + 17
}

TEST(MetadataCodec, HugeArrayCountIsRejectedWithoutAllocating) {
  Metadata m;
  m.SetI32Array("arr", {1, 2});
  std::string bytes;
  EncodeMetadataKv(m, &bytes);
  uint64_t huge = 1ull << 60;
  std::memcpy(&bytes[8 + 3 + 4 + 4], &huge, 8);
  Result<Metadata> r = DecodeMetadataKv(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size(), 1, "t.gguf", 0, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("array count"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("'arr'"), std::string::npos) << r.status().message();
}

TEST(MetadataCodec, NestedArrayIsUnsupported) {
  std::string bytes;
  uint64_t len = 1;
  bytes.append(reinterpret_cast<const char*>(&len), 8);
  bytes += 'k';
  uint32_t t = 9;
  bytes.append(reinterpret_cast<const char*>(&t), 4);
  bytes.append(reinterpret_cast<const char*>(&t), 4);
  uint64_t n = 0;
  bytes.append(reinterpret_cast<const char*>(&n), 8);
  Result<Metadata> r = DecodeMetadataKv(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size(), 1, "t.gguf", 0, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnsupported);
}

TEST(MetadataCodec, DuplicateKeyIsCorrupt) {
  Metadata m;
  m.SetU32("k", 1);
  std::string bytes;
  EncodeMetadataKv(m, &bytes);
  bytes += bytes;
  Result<Metadata> r = DecodeMetadataKv(reinterpret_cast<const uint8_t*>(bytes.data()),
                                        bytes.size(), 2, "t.gguf", 0, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("duplicate key"), std::string::npos);
}

}  // namespace
}  // namespace sluice
