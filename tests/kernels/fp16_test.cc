// f16 / bf16 / E8M0 conversions: exhaustive over the 65,536 half values, and rounding checked
// against the definition (nearest representable value, ties to even) computed in double.
#include "core/quant/fp16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace sluice {
namespace {

TEST(Fp16, EveryHalfRoundTripsExactly) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(Fp16ToFp32(Fp32ToFp16(f)))) << h;
      continue;
    }
    EXPECT_EQ(Fp32ToFp16(f), h) << "half 0x" << std::hex << h;
  }
}

TEST(Fp16, DecodesKnownValues) {
  EXPECT_EQ(Fp16ToFp32(0x3c00), 1.0f);
  EXPECT_EQ(Fp16ToFp32(0xc000), -2.0f);
  EXPECT_EQ(Fp16ToFp32(0x7bff), 65504.0f);
  EXPECT_EQ(Fp16ToFp32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(Fp16ToFp32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_TRUE(std::isinf(Fp16ToFp32(0x7c00)));
}

// Nearest half to f by brute force over the sorted finite halves of f's sign.
uint16_t NearestHalfByDefinition(float f) {
  const double target = std::fabs(static_cast<double>(f));
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (target >= 65520.0) return sign | 0x7c00;  // 65504 + half an ulp (32): rounds to inf
  // Halves 0..0x7bff are increasing in value; binary search the first >= target.
  uint32_t lo = 0, hi = 0x7bff;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (Fp16ToFp32(static_cast<uint16_t>(mid)) < target) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo == 0) return sign;
  const double above = Fp16ToFp32(static_cast<uint16_t>(lo));
  const double below = Fp16ToFp32(static_cast<uint16_t>(lo - 1));
  uint32_t pick;
  if (above - target < target - below) {
    pick = lo;
  } else if (above - target > target - below) {
    pick = lo - 1;
  } else {
    pick = (lo % 2 == 0) ? lo : lo - 1;  // tie: even mantissa
  }
  return static_cast<uint16_t>(sign | pick);
}

TEST(Fp16, RoundsToNearestEven) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    // Random f32 bit patterns restricted to the f16 range, plus exact midpoints.
    uint32_t u = bits(rng);
    const uint32_t exponent = 100 + (u >> 24) % 45;  // 2^-27 .. 2^17
    u = (u & 0x807fffffu) | (exponent << 23);
    if (i % 4 == 0) u = (u & 0xffffe000u) | 0x1000u;  // exactly halfway between two halves
    const float f = F32FromBits(u);
    ASSERT_EQ(Fp32ToFp16(f), NearestHalfByDefinition(f)) << "f = " << f;
    ++checked;
  }
  EXPECT_EQ(checked, 200000);
}

TEST(Bf16, RoundsToNearestEvenAndKeepsNan) {
  EXPECT_EQ(Fp32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Fp32ToBf16(F32FromBits(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(Fp32ToBf16(F32FromBits(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(Fp32ToBf16(F32FromBits(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(Bf16ToFp32(Fp32ToBf16(std::nanf("")))));
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = Bf16ToFp32(static_cast<uint16_t>(h));
    if (!std::isnan(f)) {
      EXPECT_EQ(Fp32ToBf16(f), h);
    }
  }
}

TEST(E8m0, IsTwoToTheEMinus128) {
  for (int e = 0; e < 255; ++e) {
    EXPECT_EQ(E8m0ToFp32Half(static_cast<uint8_t>(e)), std::ldexp(1.0f, e - 128)) << e;
  }
}

}  // namespace
}  // namespace sluice
