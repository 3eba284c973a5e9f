// Reference quantizers and decoders of Q4_K, Q5_K, Q6_K and Q8_K (256-element super-blocks).
// Quantizers follow GGUF's reference (no importance matrix) step for step: a per-group fit, the
// group scales quantized to 6 or 8 bits against a super-block scale, then a final re-rounding of
// every element against the scales as stored. Decoders keep GGUF's operation order (e.g. Q4_K is
// (d * sc) * q - dmin * m) so dequantized tensors are bit-identical to theirs.
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

// Steps shared by Q4_K and Q5_K: fit each group of 32 as scale * L - min, then store the 8
// scales and mins as 6-bit multiples of d and dmin. Returns the levels re-rounded against the
// stored scales in L (0..nmax).
void QuantizeK4Scales(const float* x, int nmax, float rmin, int nstep, uint8_t* d_out,
                      uint8_t* dmin_out, uint8_t* packed, uint8_t* L) {
  float scales[8];
  float mins[8];
  float weights[32];
  uint8_t laux[32];
  float max_scale = 0;  // scales are positive since the min is subtracted
  float max_min = 0;
  for (int g = 0; g < 8; ++g) {
    const float* xg = x + 32 * g;
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xg[l] * xg[l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xg[l]);
    scales[g] = FitScaleMin(32, nmax, xg, weights, L + 32 * g, &mins[g], laux, rmin, 0.1f, nstep,
                            /*use_mad=*/false);
    max_scale = std::max(max_scale, scales[g]);
    max_min = std::max(max_min, mins[g]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(packed, 0, 12);
  for (int g = 0; g < 8; ++g) {
    const uint8_t ls =
        std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(inv_scale * scales[g])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(NearestInt(inv_min * mins[g])));
    if (g < 4) {
      packed[g] = ls;
      packed[g + 4] = lm;
    } else {
      packed[g + 4] = static_cast<uint8_t>((ls & 0xf) | ((lm & 0xf) << 4));
      packed[g - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[g] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  StoreFp16(d_out, max_scale / 63.f);
  StoreFp16(dmin_out, max_min / 63.f);
  const float d_all = LoadFp16(d_out);
  const float dmin_all = LoadFp16(dmin_out);
  for (int g = 0; g < 8; ++g) {
    int sc, m;
    UnpackScaleMinK4(packed, g, &sc, &m);
    const float d = d_all * static_cast<float>(sc);
    if (d == 0.0f) continue;
    const float dm = dmin_all * static_cast<float>(m);
    for (int l = 0; l < 32; ++l) {
      const int q = NearestInt((x[32 * g + l] + dm) / d);
      L[32 * g + l] = static_cast<uint8_t>(std::max(0, std::min(nmax, q)));
    }
  }
}

}  // namespace

void QuantizeQ4_K(const float* x, BlockQ4_K* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  uint8_t L[kQkK];
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    QuantizeK4Scales(x, 15, -1.f, 20, y[i].d, y[i].dmin, y[i].scales, L);
    for (int p = 0; p < 4; ++p) {
      for (int l = 0; l < 32; ++l) {
        y[i].qs[32 * p + l] = static_cast<uint8_t>(L[64 * p + l] | (L[64 * p + 32 + l] << 4));
      }
    }
  }
}

void QuantizeQ5_K(const float* x, BlockQ5_K* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  uint8_t L[kQkK];
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    QuantizeK4Scales(x, 31, -0.5f, 15, y[i].d, y[i].dmin, y[i].scales, L);
    std::memset(y[i].qh, 0, sizeof(y[i].qh));
    for (int p = 0; p < 4; ++p) {
      for (int l = 0; l < 32; ++l) {
        const int lo = L[64 * p + l];
        const int hi = L[64 * p + 32 + l];
        y[i].qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * p)) | ((hi >> 4) << (2 * p + 1)));
        y[i].qs[32 * p + l] = static_cast<uint8_t>((lo & 0xf) | ((hi & 0xf) << 4));
      }
    }
  }
}

void QuantizeQ6_K(const float* x, BlockQ6_K* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  int8_t L[kQkK];
  float scales[16];
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int g = 0; g < 16; ++g) {
      scales[g] = FitSymmetricScale(16, 32, x + 16 * g, L + 16 * g);
      if (std::fabs(scales[g]) > max_abs_scale) {
        max_abs_scale = std::fabs(scales[g]);
        max_scale = scales[g];
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof(y[i]));
      continue;
    }
    const float iscale = -128.f / max_scale;
    StoreFp16(y[i].d, 1 / iscale);
    for (int g = 0; g < 16; ++g) {
      y[i].scales[g] = static_cast<int8_t>(std::min(127, NearestInt(iscale * scales[g])));
    }
    const float d_all = LoadFp16(y[i].d);
    for (int g = 0; g < 16; ++g) {
      const float d = d_all * y[i].scales[g];
      if (d == 0.0f) continue;
      for (int l = 0; l < 16; ++l) {
        const int q = NearestInt(x[16 * g + l] / d);
        L[16 * g + l] = static_cast<int8_t>(std::max(-32, std::min(31, q)) + 32);
      }
    }
    for (int h = 0; h < 2; ++h) {
      const int8_t* lh = L + 128 * h;
      uint8_t* ql = y[i].ql + 64 * h;
      uint8_t* qh = y[i].qh + 32 * h;
      for (int l = 0; l < 32; ++l) {
        ql[l] = static_cast<uint8_t>((lh[l] & 0xf) | ((lh[l + 64] & 0xf) << 4));
        ql[l + 32] = static_cast<uint8_t>((lh[l + 32] & 0xf) | ((lh[l + 96] & 0xf) << 4));
        qh[l] = static_cast<uint8_t>((lh[l] >> 4) | ((lh[l + 32] >> 4) << 2) |
                                     ((lh[l + 64] >> 4) << 4) | ((lh[l + 96] >> 4) << 6));
      }
    }
  }
}

void QuantizeQ8_K(const float* x, BlockQ8_K* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  for (int64_t i = 0; i < nb; ++i, x += kQkK) {
    float max = 0;
    float amax = 0;
    for (int j = 0; j < kQkK; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    if (amax == 0.0f) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    // -127 (not -128) keeps every level symmetric, which the sign trick of the SIMD dots needs.
    const float iscale = -127.f / max;
    for (int j = 0; j < kQkK; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::min(127, NearestInt(iscale * x[j])));
    }
    for (int g = 0; g < 16; ++g) {
      int sum = 0;
      for (int l = 0; l < 16; ++l) sum += y[i].qs[16 * g + l];
      y[i].bsums[g] = static_cast<int16_t>(sum);
    }
    y[i].d = 1 / iscale;
  }
}

void DequantizeQ4_K(const BlockQ4_K* x, float* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = LoadFp16(x[i].d);
    const float dmin = LoadFp16(x[i].dmin);
    for (int p = 0; p < 4; ++p) {
      int sc, m;
      UnpackScaleMinK4(x[i].scales, 2 * p, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      UnpackScaleMinK4(x[i].scales, 2 * p + 1, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      const uint8_t* q = x[i].qs + 32 * p;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xf) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

void DequantizeQ5_K(const BlockQ5_K* x, float* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = LoadFp16(x[i].d);
    const float dmin = LoadFp16(x[i].dmin);
    for (int p = 0; p < 4; ++p) {
      int sc, m;
      UnpackScaleMinK4(x[i].scales, 2 * p, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      UnpackScaleMinK4(x[i].scales, 2 * p + 1, &sc, &m);
      const float d2 = d * static_cast<float>(sc), m2 = dmin * static_cast<float>(m);
      const uint8_t* q = x[i].qs + 32 * p;
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] & 0xf) + (((x[i].qh[l] >> (2 * p)) & 1) << 4);
        *y++ = d1 * static_cast<float>(v) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int v = (q[l] >> 4) + (((x[i].qh[l] >> (2 * p + 1)) & 1) << 4);
        *y++ = d2 * static_cast<float>(v) - m2;
      }
    }
  }
}

void DequantizeQ6_K(const BlockQ6_K* x, float* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    const float d = LoadFp16(x[i].d);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = x[i].ql + 64 * h;
      const uint8_t* qh = x[i].qh + 32 * h;
      const int8_t* sc = x[i].scales + 8 * h;
      float* yh = y + 256 * i + 128 * h;
      for (int l = 0; l < 32; ++l) {
        const int g = l / 16;
        const int q1 = ((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        yh[l] = d * sc[g] * static_cast<float>(q1);
        yh[l + 32] = d * sc[g + 2] * static_cast<float>(q2);
        yh[l + 64] = d * sc[g + 4] * static_cast<float>(q3);
        yh[l + 96] = d * sc[g + 6] * static_cast<float>(q4);
      }
    }
  }
}

void DequantizeQ8_K(const BlockQ8_K* x, float* y, int64_t n) {
  const int64_t nb = SuperBlocks(n);
  for (int64_t i = 0; i < nb; ++i) {
    for (int j = 0; j < kQkK; ++j) *y++ = x[i].d * static_cast<float>(x[i].qs[j]);
  }
}

}  // namespace sluice
