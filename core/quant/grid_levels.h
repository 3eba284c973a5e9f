// The grid ("i-quant") formats IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S and IQ1_M decoded to
// integers: every weight of a block is kernel_d * scale[e / 16] * level[e], with small integer
// levels and odd integer scales. The scalar kernels (the twins of the SIMD ones) and the
// dequantizers are built on this one decoder per format.
//
// Why integers: each format's value is d * (a half-integer or odd scale) * (a grid magnitude, or a
// grid value shifted by +-1/8) * sign; scaling the scale and the shift to integers moves only a
// power of two into kernel_d, so a dot product against Q8_K activations is an exact integer sum
// per block and one float multiply-add, like the K-quants.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "core/quant/blocks.h"

namespace sluice {

struct GridLevels {
  float d;             // the block's f16 scale
  float kernel_d;      // d / 2^k (exact): 1/8 for IQ2_* and IQ1_*, 1/4 for IQ3_XXS, 1 for IQ3_S
  int8_t level[kQkK];  // |level| <= 62
  uint8_t scale[kQkK / 16];  // per 16 weights, odd, 1..31
};

void DecodeGridLevels(const BlockIq2Xxs& b, GridLevels* out);
void DecodeGridLevels(const BlockIq2Xs& b, GridLevels* out);
void DecodeGridLevels(const BlockIq2S& b, GridLevels* out);
void DecodeGridLevels(const BlockIq3Xxs& b, GridLevels* out);
void DecodeGridLevels(const BlockIq3S& b, GridLevels* out);
void DecodeGridLevels(const BlockIq1S& b, GridLevels* out);
void DecodeGridLevels(const BlockIq1M& b, GridLevels* out);

}  // namespace sluice
