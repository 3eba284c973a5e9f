// Scalar reference kernels for the super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS and
// the grid formats IQ1_S..IQ3_S) against Q8_K activations.
//
// Each super-block is decoded to 256 integer levels and per-group integer scales (and mins); the
// integer sums are exact and the float accumulation is, per super-block,
//   acc += (d_a * d) * sum_g(scale_g * dot_g) - (d_a * dmin) * sum_g(min_g * bsum_g)
// where bsum_g is the sum of the group's activation levels (from Q8_K's 16-element bsums).
// The SIMD Q4_K kernels run this exact float sequence and give these bits (tested).
#include <cstring>

#include "core/base/ggml_type.h"
#include "core/kernels/kernel_table.h"
#include "core/quant/blocks.h"
#include "core/quant/fp16.h"
#include "core/quant/grid_levels.h"

namespace sluice {
namespace {

// One decoded super-block: value of element e = d * scale[g] * level[e] - dmin * min[g], with
// g = e / group_size.
struct Decoded {
  int8_t level[kQkK];
  int scale[16];
  int min[16];
  int group_size;
  float d;
  float dmin;  // 0 for the symmetric formats
};

void Decode(const BlockQ2_K& b, Decoded* out) {
  out->group_size = 16;
  out->d = LoadFp16(b.d);
  out->dmin = LoadFp16(b.dmin);
  for (int e = 0; e < kQkK; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    out->level[e] = static_cast<int8_t>((b.qs[32 * h + l] >> (2 * s)) & 3);
  }
  for (int g = 0; g < 16; ++g) {
    out->scale[g] = b.scales[g] & 0xf;
    out->min[g] = b.scales[g] >> 4;
  }
}

void Decode(const BlockQ3_K& b, Decoded* out) {
  out->group_size = 16;
  out->d = LoadFp16(b.d);
  out->dmin = 0;
  for (int e = 0; e < kQkK; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    const int low = (b.qs[32 * h + l] >> (2 * s)) & 3;
    const int high = (b.hmask[l] >> (e / 32)) & 1;
    out->level[e] = static_cast<int8_t>(low - (high ? 0 : 4));
  }
  for (int g = 0; g < 16; ++g) {
    out->scale[g] = Q3KScale(b.scales, g);
    out->min[g] = 0;
  }
}

template <typename Block>
void DecodeK4Scales(const Block& b, Decoded* out) {
  out->group_size = 32;
  out->d = LoadFp16(b.d);
  out->dmin = LoadFp16(b.dmin);
  for (int g = 0; g < 8; ++g) UnpackScaleMinK4(b.scales, g, &out->scale[g], &out->min[g]);
}

void Decode(const BlockQ4_K& b, Decoded* out) {
  DecodeK4Scales(b, out);
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      out->level[64 * p + l] = static_cast<int8_t>(b.qs[32 * p + l] & 0xf);
      out->level[64 * p + 32 + l] = static_cast<int8_t>(b.qs[32 * p + l] >> 4);
    }
  }
}

void Decode(const BlockQ5_K& b, Decoded* out) {
  DecodeK4Scales(b, out);
  for (int p = 0; p < 4; ++p) {
    for (int l = 0; l < 32; ++l) {
      const int h0 = (b.qh[l] >> (2 * p)) & 1;
      const int h1 = (b.qh[l] >> (2 * p + 1)) & 1;
      out->level[64 * p + l] = static_cast<int8_t>((b.qs[32 * p + l] & 0xf) | (h0 << 4));
      out->level[64 * p + 32 + l] = static_cast<int8_t>((b.qs[32 * p + l] >> 4) | (h1 << 4));
    }
  }
}

void Decode(const BlockQ6_K& b, Decoded* out) {
  out->group_size = 16;
  out->d = LoadFp16(b.d);
  out->dmin = 0;
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    int8_t* lv = out->level + 128 * h;
    for (int l = 0; l < 32; ++l) {
      lv[l] = static_cast<int8_t>(((ql[l] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
      lv[l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
      lv[l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
      lv[l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
    }
  }
  for (int g = 0; g < 16; ++g) {
    out->scale[g] = b.scales[g];
    out->min[g] = 0;
  }
}

void Decode(const BlockIq4Xs& b, Decoded* out) {
  out->group_size = 32;
  out->d = LoadFp16(b.d);
  out->dmin = 0;
  for (int g = 0; g < 8; ++g) {
    out->scale[g] = Iq4XsScale(b, g);
    out->min[g] = 0;
    const uint8_t* qs = b.qs + 16 * g;
    for (int j = 0; j < 16; ++j) {
      out->level[32 * g + j] = kIq4nlValues[qs[j] & 0xf];
      out->level[32 * g + 16 + j] = kIq4nlValues[qs[j] >> 4];
    }
  }
}

// The grid formats, through their integer decoder (core/quant/grid_levels.h).
template <typename Block>
requires requires(const Block& b, GridLevels* g) { DecodeGridLevels(b, g); }
void Decode(const Block& b, Decoded* out) {
  GridLevels g;
  DecodeGridLevels(b, &g);
  out->group_size = 16;
  out->d = g.kernel_d;
  out->dmin = 0;
  std::memcpy(out->level, g.level, sizeof(g.level));
  for (int h = 0; h < 16; ++h) {
    out->scale[h] = g.scale[h];
    out->min[h] = 0;
  }
}

template <typename Block>
float DotQ8_KAct(const uint8_t* w, const uint8_t* act, int64_t nb) {
  const auto* x = reinterpret_cast<const Block*>(w);
  const auto* a = reinterpret_cast<const BlockQ8_K*>(act);
  Decoded dec;
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    Decode(x[i], &dec);
    const int groups = kQkK / dec.group_size;
    const int bsums_per_group = dec.group_size / 16;
    int isum = 0;
    int msum = 0;
    for (int g = 0; g < groups; ++g) {
      int dot = 0;
      for (int l = 0; l < dec.group_size; ++l) {
        const int e = g * dec.group_size + l;
        dot += dec.level[e] * a[i].qs[e];
      }
      isum += dec.scale[g] * dot;
      int bsum = 0;
      for (int k = 0; k < bsums_per_group; ++k) bsum += a[i].bsums[g * bsums_per_group + k];
      msum += dec.min[g] * bsum;
    }
    acc += (a[i].d * dec.d) * static_cast<float>(isum) -
           (a[i].d * dec.dmin) * static_cast<float>(msum);
  }
  return acc;
}

template <float (*Dot)(const uint8_t*, const uint8_t*, int64_t)>
void ScalarRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  const int64_t nb = a.cols / kQkK;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* w = a.w + static_cast<uint64_t>(r) * a.w_row_bytes;
    for (int64_t t = 0; t < a.n_tokens; ++t) {
      a.y[t * a.y_stride + r] = Dot(w, a.act + static_cast<uint64_t>(t) * a.act_row_bytes, nb);
    }
  }
}

constexpr int Id(GgmlType id) { return static_cast<int>(id); }

}  // namespace

void FillScalarKQuantKernels(KernelTable* t) {
  t->rows[Id(GgmlType::kQ2_K)] = ScalarRows<DotQ8_KAct<BlockQ2_K>>;
  t->rows[Id(GgmlType::kQ3_K)] = ScalarRows<DotQ8_KAct<BlockQ3_K>>;
  t->rows[Id(GgmlType::kQ4_K)] = ScalarRows<DotQ8_KAct<BlockQ4_K>>;
  t->rows[Id(GgmlType::kQ5_K)] = ScalarRows<DotQ8_KAct<BlockQ5_K>>;
  t->rows[Id(GgmlType::kQ6_K)] = ScalarRows<DotQ8_KAct<BlockQ6_K>>;
  t->rows[Id(GgmlType::kIQ4_XS)] = ScalarRows<DotQ8_KAct<BlockIq4Xs>>;
  t->rows[Id(GgmlType::kIQ2_XXS)] = ScalarRows<DotQ8_KAct<BlockIq2Xxs>>;
  t->rows[Id(GgmlType::kIQ2_XS)] = ScalarRows<DotQ8_KAct<BlockIq2Xs>>;
  t->rows[Id(GgmlType::kIQ2_S)] = ScalarRows<DotQ8_KAct<BlockIq2S>>;
  t->rows[Id(GgmlType::kIQ3_XXS)] = ScalarRows<DotQ8_KAct<BlockIq3Xxs>>;
  t->rows[Id(GgmlType::kIQ3_S)] = ScalarRows<DotQ8_KAct<BlockIq3S>>;
  t->rows[Id(GgmlType::kIQ1_S)] = ScalarRows<DotQ8_KAct<BlockIq1S>>;
  t->rows[Id(GgmlType::kIQ1_M)] = ScalarRows<DotQ8_KAct<BlockIq1M>>;
}

}  // namespace sluice
