// Quantizers and decoders of IQ4_NL, IQ4_XS (the 16-level non-linear grid) and MXFP4.
// IQ4_NL / IQ4_XS follow the search GGUF's quantize tool runs without an importance matrix
// (weights x^2, 15 trial scales); MXFP4 follows GGUF's reference (power-of-two scale from amax,
// nearest E2M1 level, first one on ties).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/base/check.h"
#include "core/quant/fp16.h"
#include "core/quant/kquant_search.h"
#include "core/quant/quantize.h"

namespace sluice {
namespace {

constexpr int kIq4Tries = 7;  // trial inverse scales (values[0] + t) / max, t in [-7, 7]

// Index of the grid level nearest to v (upper one on exact midpoints): a branchless binary
// search on midpoints, computed in doubled units so the midpoints are exact.
int NearestLevel(float v) {
  const float v2 = v + v;
  int idx = 0;
  for (int step = 8; step > 0; step >>= 1) {
    const int j = idx + step;
    idx = (v2 >= static_cast<float>(kIq4nlValues[j - 1] + kIq4nlValues[j])) ? j : idx;
  }
  return idx;
}

// Best scale for one group of 32 (weighted least squares over the trial scales), or 0 for an
// all-zero group.
float FitIq4Group(const float* x) {
  float amax = 0, max = 0;
  for (int j = 0; j < 32; ++j) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  if (amax < kGroupMaxEps) return 0;
  float d = -max / kIq4nlValues[0];
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < 32; ++j) {
    const float q = kIq4nlValues[NearestLevel(id * x[j])];
    const float w = x[j] * x[j];
    sumqx += w * q * x[j];
    sumq2 += w * q * q;
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
  float best = d * sumqx;
  for (int t = -kIq4Tries; t <= kIq4Tries; ++t) {
    id = (t + kIq4nlValues[0]) / max;
    sumqx = sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float q = kIq4nlValues[NearestLevel(id * x[j])];
      const float w = x[j] * x[j];
      sumqx += w * q * x[j];
      sumq2 += w * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// Packs 32 levels as nibbles: element j low nibble of qs[j], element j + 16 high nibble.
void PackNibbles(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

int Mxfp4Level(float x, float d) {
  int best = 0;
  float best_err = std::fabs(kMxfp4Values[0] * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(kMxfp4Values[i] * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return best;
}

}  // namespace

void QuantizeIq4Nl(const float* x, BlockIq4Nl* y, int64_t n) {
  CHECK_EQ(n % kQk, 0);
  uint8_t L[32];
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    const float d = FitIq4Group(x);
    StoreFp16(y[i].d, d);
    const float id = d != 0.0f ? 1 / d : 0;
    for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(NearestLevel(id * x[j]));
    PackNibbles(L, y[i].qs);
  }
}

void QuantizeIq4Xs(const float* x, BlockIq4Xs* y, int64_t n) {
  CHECK_EQ(n % kQkK, 0);
  uint8_t L[32];
  float scales[8];
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    float max_scale = 0, amax_scale = 0;
    for (int g = 0; g < 8; ++g) {
      scales[g] = FitIq4Group(x + 32 * g);
      if (std::fabs(scales[g]) > amax_scale) {
        amax_scale = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    // Group scales become 6-bit signed multiples of d; the sign of d makes the largest one -32.
    const float d = -max_scale / 32;
    StoreFp16(y[i].d, d);
    const float id = d != 0.0f ? 1 / d : 0.f;
    uint16_t scales_h = 0;
    std::memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
    for (int g = 0; g < 8; ++g) {
      int l = NearestInt(id * scales[g]);
      l = std::max(-32, std::min(31, l));
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0.0f ? 1 / dl : 0.f;
      for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(NearestLevel(idl * x[32 * g + j]));
      PackNibbles(L, y[i].qs + 16 * g);
      l += 32;
      y[i].scales_l[g / 2] |= static_cast<uint8_t>((l & 0xf) << (4 * (g % 2)));
      scales_h |= static_cast<uint16_t>((l >> 4) << (2 * g));
    }
    std::memcpy(y[i].scales_h, &scales_h, sizeof(scales_h));
  }
}

void QuantizeMxfp4(const float* x, BlockMxfp4* y, int64_t n) {
  CHECK_EQ(n % kQk, 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float amax = 0.0f;
    for (int j = 0; j < kQk; ++j) amax = std::max(amax, std::fabs(x[j]));
    // The largest level (6 = 2^2 * 1.5) must cover amax: exponent floor(log2(amax)) - 2.
    const uint8_t e = amax > 0.0f ? static_cast<uint8_t>(std::floor(std::log2(amax)) - 2 + 127) : 0;
    const float d = E8m0ToFp32Half(e);
    y[i].e = e;
    for (int j = 0; j < kQk / 2; ++j) {
      y[i].qs[j] = static_cast<uint8_t>(Mxfp4Level(x[j], d) | (Mxfp4Level(x[j + 16], d) << 4));
    }
  }
}

void DequantizeIq4Nl(const BlockIq4Nl* x, float* y, int64_t n) {
  CHECK_EQ(n % kQk, 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = LoadFp16(x[i].d);
    for (int j = 0; j < 16; ++j) {
      y[j] = d * kIq4nlValues[x[i].qs[j] & 0xf];
      y[j + 16] = d * kIq4nlValues[x[i].qs[j] >> 4];
    }
  }
}

void DequantizeIq4Xs(const BlockIq4Xs* x, float* y, int64_t n) {
  CHECK_EQ(n % kQkK, 0);
  for (int64_t i = 0; i < n / kQkK; ++i) {
    const float d = LoadFp16(x[i].d);
    for (int g = 0; g < 8; ++g, y += 32) {
      const float dl = d * static_cast<float>(Iq4XsScale(x[i], g));
      const uint8_t* qs = x[i].qs + 16 * g;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIq4nlValues[qs[j] & 0xf];
        y[j + 16] = dl * kIq4nlValues[qs[j] >> 4];
      }
    }
  }
}

void DequantizeMxfp4(const BlockMxfp4* x, float* y, int64_t n) {
  CHECK_EQ(n % kQk, 0);
  for (int64_t i = 0; i < n / kQk; ++i, y += kQk) {
    const float d = E8m0ToFp32Half(x[i].e);
    for (int j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(kMxfp4Values[x[i].qs[j] & 0xf]) * d;
      y[j + 16] = static_cast<float>(kMxfp4Values[x[i].qs[j] >> 4]) * d;
    }
  }
}

}  // namespace sluice
