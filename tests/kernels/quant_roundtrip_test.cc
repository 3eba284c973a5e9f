// Quantize -> dequantize round trips for every format, against the error bound the format's
// layout implies (analytic where the grid is uniform) and an NMSE ceiling per format; plus the
// invariants of the block layouts (sizes, idempotence, all-zero blocks).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/kernels/matmul.h"
#include "core/quant/blocks.h"
#include "tests/kernels/kernel_test_util.h"

namespace sluice {
namespace {

struct Bound {
  GgmlType type;
  // Per element: |x - x'| <= abs_of_amax * amax(block) + abs_of_range * (max - min)(block).
  double abs_of_amax;
  double abs_of_range;
  // Over the whole row: sum (x - x')^2 / sum x^2 for Gaussian data.
  double max_nmse;
};

// Analytic element bounds (with 1% slack for the f16 rounding of scales):
//  Q8_0  round(x/d), d = amax/127            -> d/2 + 127 d 2^-11
//  Q4_0  levels -8..7, d = amax/8            -> one step d (the +amax end clamps from 8 to 7)
//  Q5_0  levels -16..15, d = amax/16         -> one step d
//  Q4_1  d = range/15, min in f16            -> d/2 + f16 error of min and of 15 d
//  Q5_1  d = range/31                        -> d/2 + f16 errors
//  MXFP4 scale 2^(floor(log2 amax) - 3)      -> clipping at 1.5 * 2^floor(log2 amax): amax/2
//  Q8_K  d = amax/127, f32 scale             -> d/2
// The K-quants, IQ4_NL and IQ4_XS pick scales by search; their element bound is loose (a fraction
// of amax: 6-bit or 4-bit group scales relative to the block maximum) and their NMSE ceiling is
// the tight check: ~1.4x what these formats reach on Gaussian data (measured: see docs/kernels.md).
const Bound kBounds[] = {
    {GgmlType::kF16, 1.0 / 2048, 0, 1e-6},
    {GgmlType::kBF16, 1.0 / 256, 0, 5e-6},
    {GgmlType::kQ8_0, 0.505 / 127 + 1.0 / 2048, 0, 9e-5},
    {GgmlType::kQ4_0, 1.01 / 8, 0, 2e-2},
    {GgmlType::kQ5_0, 1.01 / 16, 0, 5e-3},
    {GgmlType::kQ4_1, 2.0 / 2048, 0.51 / 15 + 1.0 / 2048, 1.2e-2},
    {GgmlType::kQ5_1, 2.0 / 2048, 0.51 / 31 + 1.0 / 2048, 3e-3},
    {GgmlType::kMXFP4, 0.5, 0, 3e-2},
    {GgmlType::kIQ4_NL, 0.25, 0, 1.4e-2},
    {GgmlType::kQ2_K, 0.75, 0, 1.5e-1},
    {GgmlType::kQ3_K, 0.5, 0, 4.9e-2},
    {GgmlType::kQ4_K, 0.25, 0, 1.0e-2},
    {GgmlType::kQ5_K, 0.125, 0, 2.5e-3},
    {GgmlType::kQ6_K, 0.0625, 0, 8e-4},
    {GgmlType::kIQ4_XS, 0.25, 0, 1.4e-2},
    {GgmlType::kQ8_K, 0.505 / 127, 0, 4.2e-4},
};

class RoundTrip : public ::testing::TestWithParam<Bound> {};

TEST_P(RoundTrip, ErrorWithinFormatBound) {
  const Bound& bound = GetParam();
  const int64_t block = TypeTraits(bound.type).block_elements;
  const int64_t n = 256 * 33;  // 33 super-blocks, 264 32-blocks
  const std::vector<float> x = testing::RandomFloats(n, 11);
  std::vector<uint8_t> q(RowBytes(bound.type, n));
  std::vector<float> back(n);
  QuantizeRow(bound.type, x.data(), q.data(), n);
  DequantizeRow(bound.type, q.data(), back.data(), n);

  const int64_t bound_block = std::max<int64_t>(block, 32);  // f16/bf16: per 32 elements
  double err2 = 0, sig2 = 0;
  for (int64_t b = 0; b < n / bound_block; ++b) {
    float amax = 0, mn = x[b * bound_block], mx = x[b * bound_block];
    for (int64_t j = b * bound_block; j < (b + 1) * bound_block; ++j) {
      amax = std::max(amax, std::fabs(x[j]));
      mn = std::min(mn, x[j]);
      mx = std::max(mx, x[j]);
    }
    const double limit = bound.abs_of_amax * amax + bound.abs_of_range * (mx - mn);
    for (int64_t j = b * bound_block; j < (b + 1) * bound_block; ++j) {
      const double e = std::fabs(static_cast<double>(x[j]) - back[j]);
      ASSERT_LE(e, limit) << TypeName(bound.type) << " element " << j << " x=" << x[j]
                          << " back=" << back[j];
      err2 += e * e;
      sig2 += static_cast<double>(x[j]) * x[j];
    }
  }
  const double nmse = err2 / sig2;
  EXPECT_LE(nmse, bound.max_nmse) << TypeName(bound.type);
  RecordProperty("nmse", std::to_string(nmse));
  printf("%-7s nmse %.3e\n", TypeName(bound.type), nmse);
}

class FixedPoint : public ::testing::TestWithParam<GgmlType> {};

TEST_P(FixedPoint, RequantizingDequantizedValuesIsStable) {
  // Dequantized values of the uniform formats lie on the format's grid with a scale that f16
  // represents exactly; quantizing them again must reproduce them.
  const GgmlType type = GetParam();
  const int64_t n = 1024;
  const std::vector<float> x = testing::RandomFloats(n, 5);
  std::vector<uint8_t> q(RowBytes(type, n)), q2(q.size());
  std::vector<float> back(n), back2(n);
  QuantizeRow(type, x.data(), q.data(), n);
  DequantizeRow(type, q.data(), back.data(), n);
  QuantizeRow(type, back.data(), q2.data(), n);
  DequantizeRow(type, q2.data(), back2.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back[i], back2[i]) << TypeName(type) << " " << i;
}

INSTANTIATE_TEST_SUITE_P(UniformFormats, FixedPoint,
                         ::testing::Values(GgmlType::kF16, GgmlType::kBF16, GgmlType::kQ8_0,
                                           GgmlType::kQ4_0, GgmlType::kQ5_0, GgmlType::kMXFP4),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(TypeName(info.param));
                         });

TEST_P(RoundTrip, ZeroBlocksDecodeToZero) {
  const Bound& bound = GetParam();
  const int64_t n = 512;
  std::vector<float> x(n, 0.0f);
  std::vector<uint8_t> q(RowBytes(bound.type, n));
  std::vector<float> back(n, 1.0f);
  QuantizeRow(bound.type, x.data(), q.data(), n);
  DequantizeRow(bound.type, q.data(), back.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(back[i], 0.0f) << TypeName(bound.type) << " " << i;
}

INSTANTIATE_TEST_SUITE_P(AllFormats, RoundTrip, ::testing::ValuesIn(kBounds),
                         [](const ::testing::TestParamInfo<Bound>& info) {
                           return std::string(TypeName(info.param.type));
                         });

TEST(Blocks, SizesMatchTheTypeTable) {
  EXPECT_EQ(sizeof(BlockQ4_0), TypeTraits(GgmlType::kQ4_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_1), TypeTraits(GgmlType::kQ4_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_0), TypeTraits(GgmlType::kQ5_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_1), TypeTraits(GgmlType::kQ5_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_0), TypeTraits(GgmlType::kQ8_0).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_1), TypeTraits(GgmlType::kQ8_1).block_bytes);
  EXPECT_EQ(sizeof(BlockQ2_K), TypeTraits(GgmlType::kQ2_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ3_K), TypeTraits(GgmlType::kQ3_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ4_K), TypeTraits(GgmlType::kQ4_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ5_K), TypeTraits(GgmlType::kQ5_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ6_K), TypeTraits(GgmlType::kQ6_K).block_bytes);
  EXPECT_EQ(sizeof(BlockQ8_K), TypeTraits(GgmlType::kQ8_K).block_bytes);
  EXPECT_EQ(sizeof(BlockIq4Nl), TypeTraits(GgmlType::kIQ4_NL).block_bytes);
  EXPECT_EQ(sizeof(BlockIq4Xs), TypeTraits(GgmlType::kIQ4_XS).block_bytes);
  EXPECT_EQ(sizeof(BlockMxfp4), TypeTraits(GgmlType::kMXFP4).block_bytes);
}

TEST(Blocks, Q4_0LayoutByHand) {
  // One block: d = 0.5, element j (j < 16) = level j - 8, element 16 + j = level 15 - j - 8.
  BlockQ4_0 b;
  b.d[0] = 0x00;
  b.d[1] = 0x38;  // f16 0.5
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[32];
  DequantizeRow(GgmlType::kQ4_0, &b, y, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * (j - 8));
    EXPECT_EQ(y[16 + j], 0.5f * (15 - j - 8));
  }
}

TEST(Blocks, Q4_KScalePackingByHand) {
  // Group g gets scale g + 1 and min 2g (6-bit each, packed as the layout comment says).
  BlockQ4_K b = {};
  b.d[1] = 0x3c;     // f16 1.0
  b.dmin[1] = 0x38;  // f16 0.5
  for (int g = 0; g < 8; ++g) {
    const int sc = 40 + g, m = 20 + 5 * g;  // > 15 so the high bits matter
    if (g < 4) {
      b.scales[g] = static_cast<uint8_t>(sc);
      b.scales[g + 4] = static_cast<uint8_t>(m);
    } else {
      b.scales[g + 4] = static_cast<uint8_t>((sc & 0xf) | ((m & 0xf) << 4));
      b.scales[g - 4] |= static_cast<uint8_t>((sc >> 4) << 6);
      b.scales[g] |= static_cast<uint8_t>((m >> 4) << 6);
    }
  }
  for (int i = 0; i < 128; ++i) b.qs[i] = 0x31;  // low nibble 1, high nibble 3
  float y[256];
  DequantizeRow(GgmlType::kQ4_K, &b, y, 256);
  for (int e = 0; e < 256; ++e) {
    const int g = e / 32;
    const int level = (e % 64) < 32 ? 1 : 3;
    EXPECT_EQ(y[e], (40.0f + g) * level - 0.5f * (20 + 5 * g)) << e;
  }
}

}  // namespace
}  // namespace sluice
