// Reference quantizers and decoders of Q2_K and Q3_K, the 2- and 3-bit K-quants the largest
// models ship in. Same rules as kquants.cc: GGUF's reference arithmetic step for step.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/base/check.h"
#include "core/quant/fp16.h"
#include "core/quant/kquant_search.h"
#include "core/quant/quantize.h"

namespace sluice {
namespace {

int64_t SuperBlocks(int64_t n) {
  CHECK_EQ(n % kQkK, 0) << "row length must be a whole number of 256-element super-blocks";
  return n / kQkK;
}

// Packs 256 2-bit levels: element 128*h + 32*s + l goes to bits 2s of qs[32*h + l].
void Pack2Bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h) {
    for (int l = 0; l < 32; ++l) {
      const uint8_t* lh = L + 128 * h;
      qs[32 * h + l] =
          static_cast<uint8_t>(lh[l] | (lh[l + 32] << 2) | (lh[l + 64] << 4) | (lh[l + 96] << 6));
    }
  }
}

}  // namespace

void QuantizeQ2_K(const float* x, BlockQ2_K* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  uint8_t L[kQkK];
  uint8_t laux[16];
  float weights[16];
  float mins[16];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    float max_scale = 0;
    float max_min = 0;
    for (int g = 0; g < 16; ++g) {
      for (int l = 0; l < 16; ++l) weights[l] = std::fabs(x[16 * g + l]);
      scales[g] = FitScaleMin(16, 3, x + 16 * g, weights, L + 16 * g, &mins[g], laux, -0.5f, 0.1f,
                              15, /*use_mad=*/true);
      max_scale = std::max(max_scale, scales[g]);
      max_min = std::max(max_min, mins[g]);
    }
    if (max_scale > 0) {
      const float iscale = 15.f / max_scale;
      for (int g = 0; g < 16; ++g) {
        y[i].scales[g] = static_cast<uint8_t>(NearestInt(iscale * scales[g]));
      }
      StoreFp16(y[i].d, max_scale / 15.f);
    } else {
      std::memset(y[i].scales, 0, sizeof(y[i].scales));
      StoreFp16(y[i].d, 0.f);
    }
    if (max_min > 0) {
      const float iscale = 15.f / max_min;
      for (int g = 0; g < 16; ++g) {
        y[i].scales[g] |= static_cast<uint8_t>(NearestInt(iscale * mins[g]) << 4);
      }
      StoreFp16(y[i].dmin, max_min / 15.f);
    } else {
      StoreFp16(y[i].dmin, 0.f);
    }
    const float d_all = LoadFp16(y[i].d);
    const float dmin_all = LoadFp16(y[i].dmin);
    for (int g = 0; g < 16; ++g) {
      const float d = d_all * static_cast<float>(y[i].scales[g] & 0xf);
      if (d == 0.0f) continue;
      const float dm = dmin_all * static_cast<float>(y[i].scales[g] >> 4);
      for (int l = 0; l < 16; ++l) {
        const int q = NearestInt((x[16 * g + l] + dm) / d);
        L[16 * g + l] = static_cast<uint8_t>(std::max(0, std::min(3, q)));
      }
    }
    Pack2Bit(L, y[i].qs);
  }
}

void QuantizeQ3_K(const float* x, BlockQ3_K* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  int8_t L[kQkK];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    float max_scale = 0;
    float amax = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = FitQ3Scale(16, 4, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > amax) {
        amax = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    std::memset(y[i].scales, 0, sizeof(y[i].scales));
    if (max_scale != 0.0f) {
      const float iscale = -32.f / max_scale;
      for (int g = 0; g < 16; ++g) {
        int l = static_cast<int8_t>(NearestInt(iscale * scales[g]));
        l = std::max(-32, std::min(31, l)) + 32;
        if (g < 8) {
          y[i].scales[g] = static_cast<uint8_t>(l & 0xf);
        } else {
          y[i].scales[g - 8] |= static_cast<uint8_t>((l & 0xf) << 4);
        }
        y[i].scales[8 + g % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (g / 4)));
      }
      StoreFp16(y[i].d, 1 / iscale);
    } else {
      StoreFp16(y[i].d, 0.f);
    }
    const float d_all = LoadFp16(y[i].d);
    for (int g = 0; g < 16; ++g) {
      const float d = d_all * static_cast<float>(Q3KScale(y[i].scales, g));
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        const int q = NearestInt(x[16 * g + l] / d);
        L[16 * g + l] = static_cast<int8_t>(std::max(-4, std::min(3, q)) + 4);
      }
    }
    // High bit of element e -> bit e / 32 of hmask[e % 32]; the low 2 bits stay in L.
    std::memset(y[i].hmask, 0, sizeof(y[i].hmask));
    uint8_t low[kQkK];
    for (int e = 0; e < kQkK; ++e) {
      if (L[e] > 3) y[i].hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
      low[e] = static_cast<uint8_t>(L[e] > 3 ? L[e] - 4 : L[e]);
    }
    Pack2Bit(low, y[i].qs);
  }
}

void DequantizeQ2_K(const BlockQ2_K* x, float* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = LoadFp16(x[i].d);
    const float dmin = LoadFp16(x[i].dmin);
    for (int e = 0; e < kQkK; ++e) {
      const int h = e / 128, s = (e % 128) / 32, l = e % 32;
      const uint8_t sc = x[i].scales[e / 16];
      const float dl = d * static_cast<float>(sc & 0xf);
      const float ml = dmin * static_cast<float>(sc >> 4);
      const int q = (x[i].qs[32 * h + l] >> (2 * s)) & 3;
      *y++ = dl * static_cast<float>(q) - ml;
    }
  }
}

void DequantizeQ3_K(const BlockQ3_K* x, float* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = LoadFp16(x[i].d);
    for (int e = 0; e < kQkK; ++e) {
      const int h = e / 128, s = (e % 128) / 32, l = e % 32;
      const float dl = d * static_cast<float>(Q3KScale(x[i].scales, e / 16));
      const int low = (x[i].qs[32 * h + l] >> (2 * s)) & 3;
      const int high = (x[i].hmask[l] >> (e / 32)) & 1;
      *y++ = dl * static_cast<float>(low - (high ? 0 : 4));
    }
  }
}

}  // namespace sluice
