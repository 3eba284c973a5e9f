// GGUF block layouts, byte for byte, with the value tables of the non-linear formats.
//
// A quantized row is an array of blocks; element e of a row lives in block e / block_elements.
// Weight blocks are declared with byte arrays only (alignment 1): the expert cache hands out
// weights at arbitrary byte offsets (MXFP4 blocks are 17 bytes), so no field may assume alignment.
// f16 fields are read with LoadFp16 (core/quant/fp16.h). All multi-byte fields are little-endian.
//
// The grid ("i-quant") formats IQ1_S..IQ3_S pick each group of 8 (or 4) magnitudes from a fixed
// table of the format (core/quant/iq_grids.h) and sign them from a sign byte; their layouts below.
// Non-goals: the ternary formats TQ1_0 / TQ2_0.
// Thread-safety: plain data.
//
// Like fp16.h this header is included by the per-ISA translation units, so it defines data, types
// and `static inline` helpers only, never a function with external linkage.
#pragma once

#include <cstdint>

namespace sluice {

inline constexpr int kQk = 32;    // elements per block of Q4_0..Q8_1, IQ4_NL, MXFP4
inline constexpr int kQkK = 256;  // elements per super-block of the K-quants and IQ4_XS

// Q4_0: x = d * (q - 8), q in [0, 15]. Element j (j < 16) is the low nibble of qs[j], element
// j + 16 the high nibble.
struct BlockQ4_0 {
  uint8_t d[2];         // f16 scale
  uint8_t qs[kQk / 2];  // nibbles
};
static_assert(sizeof(BlockQ4_0) == 18, "q4_0 block");

// Q4_1: x = d * q + m, q in [0, 15]; nibble order as Q4_0.
struct BlockQ4_1 {
  uint8_t d[2];  // f16 scale
  uint8_t m[2];  // f16 minimum
  uint8_t qs[kQk / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "q4_1 block");

// Q5_0: x = d * (q - 16), q in [0, 31]: low 4 bits as Q4_0, bit 4 of element j is bit j of the
// little-endian u32 qh.
struct BlockQ5_0 {
  uint8_t d[2];
  uint8_t qh[4];
  uint8_t qs[kQk / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "q5_0 block");

// Q5_1: x = d * q + m, bits as Q5_0.
struct BlockQ5_1 {
  uint8_t d[2];
  uint8_t m[2];
  uint8_t qh[4];
  uint8_t qs[kQk / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "q5_1 block");

// Q8_0: x = d * q, q in [-127, 127].
struct BlockQ8_0 {
  uint8_t d[2];
  int8_t qs[kQk];
};
static_assert(sizeof(BlockQ8_0) == 34, "q8_0 block");

// Q8_1 (activations for Q4_1/Q5_1): x = d * q, s = f16(d * sum(q)) so the mins cost one multiply.
struct BlockQ8_1 {
  uint8_t d[2];
  uint8_t s[2];
  int8_t qs[kQk];
};
static_assert(sizeof(BlockQ8_1) == 36, "q8_1 block");

// Q2_K: 16 groups of 16; x = d * (scales[g] & 15) * q - dmin * (scales[g] >> 4), q in [0, 3].
// Element 128*h + 32*s + l (h < 2, s < 4, l < 32) is bits 2s..2s+1 of qs[32*h + l]; its group is
// (128*h + 32*s + l) / 16.
struct BlockQ2_K {
  uint8_t scales[kQkK / 16];
  uint8_t qs[kQkK / 4];
  uint8_t d[2];
  uint8_t dmin[2];
};
static_assert(sizeof(BlockQ2_K) == 84, "q2_K block");

// Q3_K: 16 groups of 16; x = d * (sc[g] - 32) * (q - 4 * !hbit), low 2 bits of q as Q2_K, the
// high bit of element e at bit e / 32 of hmask[e % 32]. The 16 6-bit scales are packed in 12
// bytes: low nibbles in bytes 0..7 (groups 0..7 low halves, 8..15 high halves), top 2 bits in
// bytes 8..11 (group g at bits 2*(g/4) of byte 8 + g%4).
struct BlockQ3_K {
  uint8_t hmask[kQkK / 8];
  uint8_t qs[kQkK / 4];
  uint8_t scales[12];
  uint8_t d[2];
};
static_assert(sizeof(BlockQ3_K) == 110, "q3_K block");

// Q4_K: 8 groups of 32; x = d * sc[g] * q - dmin * m[g], q in [0, 15]. 6-bit sc/m packed in 12
// bytes (see UnpackScaleMinK4). Element 64*p + l is the low nibble of qs[32*p + l], element
// 64*p + 32 + l the high nibble (p < 4, l < 32).
struct BlockQ4_K {
  uint8_t d[2];
  uint8_t dmin[2];
  uint8_t scales[12];
  uint8_t qs[kQkK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "q4_K block");

// Q5_K: Q4_K plus a fifth bit: element 64*p + l has bit 2p of qh[l], element 64*p + 32 + l has
// bit 2p+1 of qh[l].
struct BlockQ5_K {
  uint8_t d[2];
  uint8_t dmin[2];
  uint8_t scales[12];
  uint8_t qh[kQkK / 8];
  uint8_t qs[kQkK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "q5_K block");

// Q6_K: 16 groups of 16; x = d * scales[g] * (q - 32), q in [0, 63]. For half h (128 elements)
// and l < 32: elements +l, +32+l, +64+l, +96+l take low nibbles ql[64h+l], ql[64h+32+l] and high
// nibbles ql[64h+l], ql[64h+32+l]; their top 2 bits are bits 0-1, 2-3, 4-5, 6-7 of qh[32h+l].
struct BlockQ6_K {
  uint8_t ql[kQkK / 2];
  uint8_t qh[kQkK / 4];
  int8_t scales[kQkK / 16];
  uint8_t d[2];
};
static_assert(sizeof(BlockQ6_K) == 210, "q6_K block");

// Q8_K (activations for the K-quants and IQ4_XS): x = d * q; bsums[g] = sum of qs[16g..16g+16).
// Only ever created by sluice itself, so its fields keep their natural alignment.
struct BlockQ8_K {
  float d;
  int8_t qs[kQkK];
  int16_t bsums[kQkK / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "q8_K block");

// IQ4_NL: x = d * kIq4nlValues[q]; nibble order as Q4_0.
struct BlockIq4Nl {
  uint8_t d[2];
  uint8_t qs[kQk / 2];
};
static_assert(sizeof(BlockIq4Nl) == 18, "iq4_nl block");

// IQ4_XS: 8 groups of 32; x = d * (ls[g] - 32) * kIq4nlValues[q]. ls[g] is 6 bits: low 4 in
// nibble g%2 of scales_l[g/2], high 2 at bits 2g of the u16 scales_h. Group g's 32 elements use
// qs[16g..16g+16) in Q4_0 nibble order.
struct BlockIq4Xs {
  uint8_t d[2];
  uint8_t scales_h[2];
  uint8_t scales_l[kQkK / 64];
  uint8_t qs[kQkK / 2];
};
static_assert(sizeof(BlockIq4Xs) == 136, "iq4_xs block");

// --- Grid formats (256 weights per block; "group" = 32 weights, "sub-group" = 8) ---------------
// Value of a weight = d * factor(scale) * grid magnitude * sign, see each block. A sign byte's bit
// j negates element j of its sub-group; IQ2_XXS, IQ2_XS and IQ3_XXS store 7 sign bits per sub-group
// and the eighth is the parity that makes the count of minus signs even (IqSignByte).

// IQ2_XXS (2.0625 bits/weight): per group g, bytes 8g..8g+3 = 4 indices into kIq2XxsGrid (8
// magnitudes each), bytes 8g+4..8g+7 = u32 s: sub-group l's 7 sign bits at s >> 7l, the group
// scale (4 bits) at s >> 28. x = d * (0.5 + scale) * 0.25 * magnitude * sign.
struct BlockIq2Xxs {
  uint8_t d[2];
  uint8_t qs[kQkK / 4];
};
static_assert(sizeof(BlockIq2Xxs) == 66, "iq2_xxs block");

// IQ2_XS (2.3125 bpw): qs = 32 little-endian u16, one per sub-group: low 9 bits index kIq2XsGrid,
// high 7 the sign bits. scales[g]: low nibble for the group's first 16 weights, high nibble for
// the last 16. x = d * (0.5 + nibble) * 0.25 * magnitude * sign.
struct BlockIq2Xs {
  uint8_t d[2];
  uint8_t qs[kQkK / 4];
  uint8_t scales[kQkK / 32];
};
static_assert(sizeof(BlockIq2Xs) == 74, "iq2_xs block");

// IQ2_S (2.5625 bpw): qs[0..32) = low 8 bits of each sub-group's index into kIq2SGrid, bits 8-9
// at (qh[g] >> 2l) & 3; qs[32..64) = one full sign byte per sub-group; scales as IQ2_XS.
struct BlockIq2S {
  uint8_t d[2];
  uint8_t qs[kQkK / 4];
  uint8_t qh[kQkK / 32];
  uint8_t scales[kQkK / 32];
};
static_assert(sizeof(BlockIq2S) == 82, "iq2_s block");

// IQ3_XXS (3.0625 bpw): qs[0..64) = indices into kIq3XxsGrid (4 magnitudes each, two per
// sub-group); then per group a u32 s laid out as IQ2_XXS's: x = d * (0.5 + scale) * 0.5 * ...
struct BlockIq3Xxs {
  uint8_t d[2];
  uint8_t qs[3 * kQkK / 8];
};
static_assert(sizeof(BlockIq3Xxs) == 98, "iq3_xxs block");

// IQ3_S (3.4375 bpw): qs = low 8 bits of 64 indices into kIq3SGrid (4 magnitudes each), bit 8 of
// index k at qh[k / 8] >> (k % 8); signs = one full sign byte per sub-group; scales[g/2] nibble
// g%2 = the group's 4-bit scale: x = d * (1 + 2 * scale) * magnitude * sign.
struct BlockIq3S {
  uint8_t d[2];
  uint8_t qs[kQkK / 4];
  uint8_t qh[kQkK / 32];
  uint8_t signs[kQkK / 8];
  uint8_t scales[kQkK / 64];
};
static_assert(sizeof(BlockIq3S) == 110, "iq3_s block");

// IQ1_S (1.5625 bpw): per group g a u16 qh[g]: sub-group l's index into kIq1SGrid (8 values in
// {-1, 0, 1}) = qs[4g + l] | ((qh >> 3l) & 7) << 8; scale = (qh >> 12) & 7; bit 15 picks the
// shift delta = -1/8 (set) or +1/8. x = d * (2 * scale + 1) * (grid value + delta).
struct BlockIq1S {
  uint8_t d[2];
  uint8_t qs[kQkK / 8];
  uint8_t qh[kQkK / 16];  // 8 little-endian u16
};
static_assert(sizeof(BlockIq1S) == 50, "iq1_s block");

// IQ1_M (1.75 bpw): no d field: the f16 d is the top nibbles of the 4 u16 of scales (bits
// 12-15 of u16 k = bits 4k..4k+3 of d). Index of sub-group k = qs[k] | ((qh[k/2] >> 4(k%2)) & 7)
// << 8, its delta sign at bit 3 of that nibble. Per 16 weights a 3-bit scale: half h (0..15) at
// bits 3(h%4) of u16 h/4. x = d * (2 * scale + 1) * (grid value + delta).
struct BlockIq1M {
  uint8_t qs[kQkK / 8];
  uint8_t qh[kQkK / 16];
  uint8_t scales[kQkK / 32];  // 4 little-endian u16
};
static_assert(sizeof(BlockIq1M) == 56, "iq1_m block");

// MXFP4 (OCP microscaling): x = 2^(e-128) * kMxfp4Values[q]; nibble order as Q4_0.
struct BlockMxfp4 {
  uint8_t e;  // E8M0 shared exponent
  uint8_t qs[kQk / 2];
};
static_assert(sizeof(BlockMxfp4) == 17, "mxfp4 block");

// The 16 levels of IQ4_NL / IQ4_XS (a non-uniform grid fitted to weight distributions).
inline constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                            1,    13,   25,  38,  53,  69,  89,  113};

// E2M1 values doubled so they are integers: 0, 0.5, 1, 1.5, 2, 3, 4, 6 and their negatives.
inline constexpr int8_t kMxfp4Values[16] = {0, 1,  2,  3,  4,  6,  8,  12,
                                            0, -1, -2, -3, -4, -6, -8, -12};

// The 6-bit scale and min of group g (< 8) of a Q4_K / Q5_K block: groups 0..3 sit in the low 6
// bits of bytes g and g+4; groups 4..7 keep their low 4 bits in the nibbles of byte g+4 and their
// top 2 bits in the top bits of bytes g-4 (scale) and g (min).
static inline void UnpackScaleMinK4(const uint8_t* scales, int g, int* scale, int* min) {
  if (g < 4) {
    *scale = scales[g] & 63;
    *min = scales[g + 4] & 63;
  } else {
    *scale = (scales[g + 4] & 0xf) | ((scales[g - 4] >> 6) << 4);
    *min = (scales[g + 4] >> 4) | ((scales[g] >> 6) << 4);
  }
}

// The signed scale (-32..31) of group g (< 16) of a Q3_K block (layout above).
static inline int Q3KScale(const uint8_t* scales, int g) {
  const int low = g < 8 ? scales[g] & 0xf : scales[g - 8] >> 4;
  const int high = (scales[8 + g % 4] >> (2 * (g / 4))) & 3;
  return (low | (high << 4)) - 32;
}

// The signed scale (-32..31) of group g (< 8) of an IQ4_XS block.
static inline int Iq4XsScale(const BlockIq4Xs& b, int g) {
  const int scales_h = b.scales_h[0] | (b.scales_h[1] << 8);
  const int low = (b.scales_l[g / 2] >> (4 * (g % 2))) & 0xf;
  const int high = (scales_h >> (2 * g)) & 3;
  return (low | (high << 4)) - 32;
}

}  // namespace sluice
