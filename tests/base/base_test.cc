#include <gtest/gtest.h>

#include "core/base/aligned_buffer.h"
#include "core/base/byte_size.h"
#include "core/base/ggml_type.h"
#include "core/base/status.h"

namespace sluice {
namespace {

TEST(ByteSize, ParsesSuffixes) {
  EXPECT_EQ(ParseByteSize("4096").value(), 4096u);
  EXPECT_EQ(ParseByteSize("12G").value(), 12ull << 30);
  EXPECT_EQ(ParseByteSize("512m").value(), 512ull << 20);
  EXPECT_EQ(ParseByteSize("1.5GiB").value(), 3ull << 29);
  EXPECT_EQ(ParseByteSize("2KB").value(), 2048u);
}

TEST(ByteSize, RejectsGarbage) {
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("abc").ok());
  EXPECT_FALSE(ParseByteSize("12X").ok());
  EXPECT_FALSE(ParseByteSize("-1G").ok());
  EXPECT_NE(ParseByteSize("12X").status().message().find("12X"), std::string::npos);
}

TEST(ByteSize, Formats) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(3ull << 29), "1.50 GiB");
}

TEST(GgmlType, BlockGeometryMatchesGguf) {
  // Independent figures: Q4_K = 2 + 2 + 12 + 128 bytes per 256; Q6_K = 128 + 64 + 16 + 2.
  EXPECT_EQ(RowBytes(GgmlType::kQ4_K, 4096), 4096u / 256 * (2 + 2 + 12 + 128));
  EXPECT_EQ(RowBytes(GgmlType::kQ6_K, 256), 128u + 64 + 16 + 2);
  EXPECT_EQ(RowBytes(GgmlType::kQ8_0, 64), 2u * (2 + 32));
  EXPECT_FALSE(IsValidRowLength(GgmlType::kQ4_0, 33));
  EXPECT_FALSE(GetTypeTraits(4).has_value());  // removed Q4_2
  EXPECT_EQ(ParseTypeName("Q4_k"), GgmlType::kQ4_K);
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: ", x);
  return x / 2;
}

Status Chain(int x, int* out) {
  ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(Status, PropagatesErrors) {
  int v = 0;
  EXPECT_TRUE(Chain(4, &v).ok());
  EXPECT_EQ(v, 2);
  Status s = Chain(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "invalid argument: odd: 3");
}

TEST(AlignedBuffer, IsAlignedAndZeroed) {
  for (size_t size : {size_t{100}, size_t{3} << 20}) {
    AlignedBuffer b(size);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 4096, 0u);
    for (size_t i = 0; i < size; i += 997) EXPECT_EQ(b.data()[i], 0);
  }
}

}  // namespace
}  // namespace sluice
