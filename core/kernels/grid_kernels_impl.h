// Kernels for the grid formats (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M) against Q8_K
// activations, written once and compiled twice: grid_avx2.cc and grid_avx512.cc (where
// maddubs + madd fuse into vpdpwssd). Include only from those two files.
//
// Per super-block the weights are decoded once (for up to 32 tokens in MatMul) into the integer
// form of core/quant/grid_levels.h: 8 chunks of 32 levels, each as unsigned magnitudes plus a sign
// source, and the odd integer scale of each 16 weights as int16 lanes. Per token and chunk: the
// signs move onto the activations (sign_epi8), maddubs multiplies magnitudes (<= 62) by them (a
// pair stays below 2 * 62 * 127 < 32767: no saturation), madd weights each 16 by its scale into 8
// int32 lanes (exact). One FMA per super-block folds d_a * kernel_d in.
//
// Grid entries are fetched with scalar loads into vector lanes (_mm256_set_epi64x/epi32): 4 or 8
// loads per 32 weights from tables of 1-16 KiB that stay in L1/L2.
#pragma once

#include <cstring>

#include "core/kernels/simd_avx2.h"
#include "core/quant/blocks.h"
#include "core/quant/iq_grids.h"

namespace sluice {
namespace {

inline uint32_t GridU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

inline long long Entry(uint64_t v) { return static_cast<long long>(v); }
inline int Entry32(uint32_t v) { return static_cast<int>(v); }

// 32 signs from a u32 of 4 full sign bytes (bit j of byte l negates element 8l + j): +1 / -1 bytes.
inline __m256i SignsFromBits(uint32_t bits) {
  return _mm256_or_si256(BitsToBytes(bits), _mm256_set1_epi8(1));
}

// The full sign word of 4 sub-groups stored as 7-bit codes at bits 7l of s (IQ2_XXS, IQ3_XXS).
inline uint32_t SignWord7(uint32_t s) {
  return kIqSignBytes.v[s & 127] | (kIqSignBytes.v[(s >> 7) & 127] << 8) |
         (kIqSignBytes.v[(s >> 14) & 127] << 16) |
         (static_cast<uint32_t>(kIqSignBytes.v[(s >> 21) & 127]) << 24);
}

// 16 int16 lanes: 8 x lo (the chunk's first 16 weights), then 8 x hi.
inline __m256i HalfScales(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)),
                          _mm_set1_epi16(static_cast<int16_t>(lo)));
}

struct DecodedGrid {
  __m256i mag[8];      // unsigned magnitudes
  __m256i sgn[8];      // sign sources: the sign of each byte is the weight's sign (never 0)
  __m256i scale16[8];  // odd scale per 16 weights
  float kernel_d;
};

struct Iq2XxsDecoder {
  using Block = BlockIq2Xxs;
  static void Decode(const Block& b, DecodedGrid* out) {
    for (int c = 0; c < 8; ++c) {
      const uint8_t* idx = b.qs + 8 * c;
      const uint32_t s = GridU32(idx + 4);
      out->mag[c] = _mm256_set_epi64x(Entry(kIq2XxsGrid[idx[3]]), Entry(kIq2XxsGrid[idx[2]]),
                                      Entry(kIq2XxsGrid[idx[1]]), Entry(kIq2XxsGrid[idx[0]]));
      out->sgn[c] = SignsFromBits(SignWord7(s));
      out->scale16[c] = _mm256_set1_epi16(static_cast<int16_t>(2 * (s >> 28) + 1));
    }
    out->kernel_d = LoadF16(b.d) * 0.125f;
  }
};

struct Iq2XsDecoder {
  using Block = BlockIq2Xs;
  static void Decode(const Block& b, DecodedGrid* out) {
    for (int c = 0; c < 8; ++c) {
      uint16_t v[4];
      std::memcpy(v, b.qs + 8 * c, sizeof(v));
      out->mag[c] = _mm256_set_epi64x(Entry(kIq2XsGrid[v[3] & 511]), Entry(kIq2XsGrid[v[2] & 511]),
                                      Entry(kIq2XsGrid[v[1] & 511]), Entry(kIq2XsGrid[v[0] & 511]));
      const uint32_t word = kIqSignBytes.v[v[0] >> 9] | (kIqSignBytes.v[v[1] >> 9] << 8) |
                            (kIqSignBytes.v[v[2] >> 9] << 16) |
                            (static_cast<uint32_t>(kIqSignBytes.v[v[3] >> 9]) << 24);
      out->sgn[c] = SignsFromBits(word);
      out->scale16[c] = HalfScales(2 * (b.scales[c] & 0xf) + 1, 2 * (b.scales[c] >> 4) + 1);
    }
    out->kernel_d = LoadF16(b.d) * 0.125f;
  }
};

struct Iq2SDecoder {
  using Block = BlockIq2S;
  static void Decode(const Block& b, DecodedGrid* out) {
    for (int c = 0; c < 8; ++c) {
      const uint8_t* q = b.qs + 4 * c;
      const int h = b.qh[c];
      out->mag[c] = _mm256_set_epi64x(
          Entry(kIq2SGrid[q[3] | ((h << 2) & 0x300)]), Entry(kIq2SGrid[q[2] | ((h << 4) & 0x300)]),
          Entry(kIq2SGrid[q[1] | ((h << 6) & 0x300)]), Entry(kIq2SGrid[q[0] | ((h << 8) & 0x300)]));
      out->sgn[c] = SignsFromBits(GridU32(b.qs + 32 + 4 * c));
      out->scale16[c] = HalfScales(2 * (b.scales[c] & 0xf) + 1, 2 * (b.scales[c] >> 4) + 1);
    }
    out->kernel_d = LoadF16(b.d) * 0.125f;
  }
};

struct Iq3XxsDecoder {
  using Block = BlockIq3Xxs;
  static void Decode(const Block& b, DecodedGrid* out) {
    for (int c = 0; c < 8; ++c) {
      const uint8_t* q = b.qs + 8 * c;
      const uint32_t s = GridU32(b.qs + 64 + 4 * c);
      out->mag[c] = _mm256_set_epi32(Entry32(kIq3XxsGrid[q[7]]), Entry32(kIq3XxsGrid[q[6]]),
                                     Entry32(kIq3XxsGrid[q[5]]), Entry32(kIq3XxsGrid[q[4]]),
                                     Entry32(kIq3XxsGrid[q[3]]), Entry32(kIq3XxsGrid[q[2]]),
                                     Entry32(kIq3XxsGrid[q[1]]), Entry32(kIq3XxsGrid[q[0]]));
      out->sgn[c] = SignsFromBits(SignWord7(s));
      out->scale16[c] = _mm256_set1_epi16(static_cast<int16_t>(2 * (s >> 28) + 1));
    }
    out->kernel_d = LoadF16(b.d) * 0.25f;
  }
};

struct Iq3SDecoder {
  using Block = BlockIq3S;
  static void Decode(const Block& b, DecodedGrid* out) {
    for (int c = 0; c < 8; ++c) {
      const uint8_t* q = b.qs + 8 * c;
      const int h = b.qh[c];
      auto at = [&](int i) { return Entry32(kIq3SGrid[q[i] | (((h >> i) & 1) << 8)]); };
      out->mag[c] = _mm256_set_epi32(at(7), at(6), at(5), at(4), at(3), at(2), at(1), at(0));
      out->sgn[c] = SignsFromBits(GridU32(b.signs + 4 * c));
      const int nibble = (b.scales[c / 2] >> (4 * (c % 2))) & 0xf;
      out->scale16[c] = _mm256_set1_epi16(static_cast<int16_t>(2 * nibble + 1));
    }
    out->kernel_d = LoadF16(b.d);
  }
};

// IQ1 levels = 8 * grid value (-1, 0, 1) + delta (+-1): never zero, |level| <= 9.
inline void ShiftedLevels(__m256i grid, __m256i delta, __m256i* mag, __m256i* sgn) {
  const __m256i level = _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), grid), delta);
  *mag = _mm256_abs_epi8(level);
  *sgn = level;
}

inline long long Delta8(bool minus) {
  return minus ? Entry(0xffffffffffffffffull) : Entry(0x0101010101010101ull);
}

struct Iq1SDecoder {
  using Block = BlockIq1S;
  static void Decode(const Block& b, DecodedGrid* out) {
    for (int c = 0; c < 8; ++c) {
      const uint8_t* q = b.qs + 4 * c;
      const int qh = b.qh[2 * c] | (b.qh[2 * c + 1] << 8);
      const __m256i grid = _mm256_set_epi64x(Entry(kIq1SGrid[q[3] | ((qh >> 1) & 0x700)]),
                                             Entry(kIq1SGrid[q[2] | ((qh << 2) & 0x700)]),
                                             Entry(kIq1SGrid[q[1] | ((qh << 5) & 0x700)]),
                                             Entry(kIq1SGrid[q[0] | ((qh << 8) & 0x700)]));
      ShiftedLevels(grid, _mm256_set1_epi64x(Delta8((qh & 0x8000) != 0)), &out->mag[c],
                    &out->sgn[c]);
      out->scale16[c] = _mm256_set1_epi16(static_cast<int16_t>(2 * ((qh >> 12) & 7) + 1));
    }
    out->kernel_d = LoadF16(b.d) * 0.125f;
  }
};

struct Iq1MDecoder {
  using Block = BlockIq1M;
  static void Decode(const Block& b, DecodedGrid* out) {
    uint16_t sc[4];
    std::memcpy(sc, b.scales, sizeof(sc));
    for (int c = 0; c < 8; ++c) {
      const uint8_t* q = b.qs + 4 * c;
      const int h0 = b.qh[2 * c], h1 = b.qh[2 * c + 1];
      const __m256i grid = _mm256_set_epi64x(Entry(kIq1SGrid[q[3] | ((h1 << 4) & 0x700)]),
                                             Entry(kIq1SGrid[q[2] | ((h1 << 8) & 0x700)]),
                                             Entry(kIq1SGrid[q[1] | ((h0 << 4) & 0x700)]),
                                             Entry(kIq1SGrid[q[0] | ((h0 << 8) & 0x700)]));
      const __m256i delta = _mm256_set_epi64x(Delta8(h1 & 0x80), Delta8(h1 & 0x08),
                                              Delta8(h0 & 0x80), Delta8(h0 & 0x08));
      ShiftedLevels(grid, delta, &out->mag[c], &out->sgn[c]);
      const int word = sc[c / 2] >> (6 * (c % 2));
      out->scale16[c] = HalfScales(2 * (word & 7) + 1, 2 * ((word >> 3) & 7) + 1);
    }
    const uint16_t d16 = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                               ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    out->kernel_d = _cvtsh_ss(d16) * 0.125f;
  }
};

template <typename Decoder>
struct GridKernel {
  template <int kMax>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int n_tokens, int64_t nb,
                  float* out) {
    const int nt = TileTokens<kMax>(n_tokens);
    const auto* x = reinterpret_cast<const typename Decoder::Block*>(w);
    __m256 acc[kMax];
    for (int t = 0; t < nt; ++t) acc[t] = _mm256_setzero_ps();
    DecodedGrid dec;
    for (int64_t i = 0; i < nb; ++i) {
      Decoder::Decode(x[i], &dec);
      for (int t = 0; t < nt; ++t) {
        const BlockQ8_K& a = reinterpret_cast<const BlockQ8_K*>(act[t])[i];
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 8; ++c) {
          const __m256i signed_a = _mm256_sign_epi8(LoadU256(a.qs + 32 * c), dec.sgn[c]);
          isum = MaddAccumulate(isum, _mm256_maddubs_epi16(dec.mag[c], signed_a), dec.scale16[c]);
        }
        acc[t] =
            _mm256_fmadd_ps(_mm256_set1_ps(a.d * dec.kernel_d), _mm256_cvtepi32_ps(isum), acc[t]);
      }
    }
    for (int t = 0; t < nt; ++t) out[t] = HsumPs(acc[t]);
  }
};

template <typename Decoder>
void GridRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  BatchedRows<GridKernel<Decoder>>(a, row_begin, row_end, a.cols / kQkK);
}

constexpr int GridId(GgmlType id) { return static_cast<int>(id); }

void FillGridTable(KernelTable* t) {
  t->rows[GridId(GgmlType::kIQ2_XXS)] = GridRows<Iq2XxsDecoder>;
  t->rows[GridId(GgmlType::kIQ2_XS)] = GridRows<Iq2XsDecoder>;
  t->rows[GridId(GgmlType::kIQ2_S)] = GridRows<Iq2SDecoder>;
  t->rows[GridId(GgmlType::kIQ3_XXS)] = GridRows<Iq3XxsDecoder>;
  t->rows[GridId(GgmlType::kIQ3_S)] = GridRows<Iq3SDecoder>;
  t->rows[GridId(GgmlType::kIQ1_S)] = GridRows<Iq1SDecoder>;
  t->rows[GridId(GgmlType::kIQ1_M)] = GridRows<Iq1MDecoder>;
}

}  // namespace
}  // namespace sluice
