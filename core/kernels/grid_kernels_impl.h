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
// Grid entries and 7-bit sign codes are fetched with scalar loads into vector lanes
// (_mm256_set_epi64x/epi32): 4 or 8 loads per 32 weights from tables of 1-16 KiB that stay in
// L1/L2 (gathers are slower on the CPUs we target, and much slower under the GDS mitigation).
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

// The signs of 4 sub-groups stored as 7-bit codes at bits 7l of s (IQ2_XXS, IQ3_XXS).
inline __m256i Signs7(uint32_t s) {
  return _mm256_set_epi64x(Entry(kIqSigns8.v[(s >> 21) & 127]), Entry(kIqSigns8.v[(s >> 14) & 127]),
                           Entry(kIqSigns8.v[(s >> 7) & 127]), Entry(kIqSigns8.v[s & 127]));
}

// 16 int16 lanes: 8 x lo (the chunk's first 16 weights), then 8 x hi.
inline __m256i HalfScales(int lo, int hi) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(hi)),
                          _mm_set1_epi16(static_cast<int16_t>(lo)));
}

// A decoder gives, per block, KernelD (the float factor) and per chunk c of 32 weights: unsigned
// magnitudes, a sign source (each byte's sign is the weight's; never 0) and the odd scale of each
// 16 weights as int16 lanes.
struct Chunk {
  __m256i mag, sgn, scale16;
};

struct Iq2XxsDecoder {
  using Block = BlockIq2Xxs;
  static float KernelD(const Block& b) { return LoadF16(b.d) * 0.125f; }
  static Chunk Decode(const Block& b, int c) {
    const uint8_t* idx = b.qs + 8 * c;
    const uint32_t s = GridU32(idx + 4);
    return {_mm256_set_epi64x(Entry(kIq2XxsGrid[idx[3]]), Entry(kIq2XxsGrid[idx[2]]),
                              Entry(kIq2XxsGrid[idx[1]]), Entry(kIq2XxsGrid[idx[0]])),
            Signs7(s), _mm256_set1_epi16(static_cast<int16_t>(2 * (s >> 28) + 1))};
  }
};

struct Iq2XsDecoder {
  using Block = BlockIq2Xs;
  static float KernelD(const Block& b) { return LoadF16(b.d) * 0.125f; }
  static Chunk Decode(const Block& b, int c) {
    uint64_t v;
    std::memcpy(&v, b.qs + 8 * c, sizeof(v));
    auto grid = [&](int l) { return Entry(kIq2XsGrid[(v >> (16 * l)) & 511]); };
    auto sign = [&](int l) { return Entry(kIqSigns8.v[(v >> (16 * l + 9)) & 127]); };
    return {_mm256_set_epi64x(grid(3), grid(2), grid(1), grid(0)),
            _mm256_set_epi64x(sign(3), sign(2), sign(1), sign(0)),
            HalfScales(2 * (b.scales[c] & 0xf) + 1, 2 * (b.scales[c] >> 4) + 1)};
  }
};

struct Iq2SDecoder {
  using Block = BlockIq2S;
  static float KernelD(const Block& b) { return LoadF16(b.d) * 0.125f; }
  static Chunk Decode(const Block& b, int c) {
    const uint8_t* q = b.qs + 4 * c;
    const int h = b.qh[c];
    return {_mm256_set_epi64x(Entry(kIq2SGrid[q[3] | ((h << 2) & 0x300)]),
                              Entry(kIq2SGrid[q[2] | ((h << 4) & 0x300)]),
                              Entry(kIq2SGrid[q[1] | ((h << 6) & 0x300)]),
                              Entry(kIq2SGrid[q[0] | ((h << 8) & 0x300)])),
            SignsFromBits(GridU32(b.qs + 32 + 4 * c)),
            HalfScales(2 * (b.scales[c] & 0xf) + 1, 2 * (b.scales[c] >> 4) + 1)};
  }
};

struct Iq3XxsDecoder {
  using Block = BlockIq3Xxs;
  static float KernelD(const Block& b) { return LoadF16(b.d) * 0.25f; }
  static Chunk Decode(const Block& b, int c) {
    const uint8_t* q = b.qs + 8 * c;
    const uint32_t s = GridU32(b.qs + 64 + 4 * c);
    return {_mm256_set_epi32(Entry32(kIq3XxsGrid[q[7]]), Entry32(kIq3XxsGrid[q[6]]),
                             Entry32(kIq3XxsGrid[q[5]]), Entry32(kIq3XxsGrid[q[4]]),
                             Entry32(kIq3XxsGrid[q[3]]), Entry32(kIq3XxsGrid[q[2]]),
                             Entry32(kIq3XxsGrid[q[1]]), Entry32(kIq3XxsGrid[q[0]])),
            Signs7(s), _mm256_set1_epi16(static_cast<int16_t>(2 * (s >> 28) + 1))};
  }
};

struct Iq3SDecoder {
  using Block = BlockIq3S;
  static float KernelD(const Block& b) { return LoadF16(b.d); }
  static Chunk Decode(const Block& b, int c) {
    const uint8_t* q = b.qs + 8 * c;
    const int h = b.qh[c];
    auto at = [&](int i) { return Entry32(kIq3SGrid[q[i] | (((h >> i) & 1) << 8)]); };
    const int nibble = (b.scales[c / 2] >> (4 * (c % 2))) & 0xf;
    return {_mm256_set_epi32(at(7), at(6), at(5), at(4), at(3), at(2), at(1), at(0)),
            SignsFromBits(GridU32(b.signs + 4 * c)),
            _mm256_set1_epi16(static_cast<int16_t>(2 * nibble + 1))};
  }
};

// IQ1 levels = 8 * grid value (-1, 0, 1) + delta (+-1): never zero, |level| <= 9.
inline void ShiftedLevels(__m256i grid, __m256i delta, Chunk* out) {
  const __m256i level = _mm256_add_epi8(_mm256_sign_epi8(_mm256_set1_epi8(8), grid), delta);
  out->mag = _mm256_abs_epi8(level);
  out->sgn = level;
}

inline long long Delta8(bool minus) {
  return minus ? Entry(0xffffffffffffffffull) : Entry(0x0101010101010101ull);
}

struct Iq1SDecoder {
  using Block = BlockIq1S;
  static float KernelD(const Block& b) { return LoadF16(b.d) * 0.125f; }
  static Chunk Decode(const Block& b, int c) {
    const uint8_t* q = b.qs + 4 * c;
    const int qh = b.qh[2 * c] | (b.qh[2 * c + 1] << 8);
    const __m256i grid = _mm256_set_epi64x(
        Entry(kIq1SGrid[q[3] | ((qh >> 1) & 0x700)]), Entry(kIq1SGrid[q[2] | ((qh << 2) & 0x700)]),
        Entry(kIq1SGrid[q[1] | ((qh << 5) & 0x700)]), Entry(kIq1SGrid[q[0] | ((qh << 8) & 0x700)]));
    Chunk out;
    ShiftedLevels(grid, _mm256_set1_epi64x(Delta8((qh & 0x8000) != 0)), &out);
    out.scale16 = _mm256_set1_epi16(static_cast<int16_t>(2 * ((qh >> 12) & 7) + 1));
    return out;
  }
};

struct Iq1MDecoder {
  using Block = BlockIq1M;
  static float KernelD(const Block& b) {
    uint16_t sc[4];
    std::memcpy(sc, b.scales, sizeof(sc));
    const uint16_t d16 = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                               ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
    return _cvtsh_ss(d16) * 0.125f;
  }
  static Chunk Decode(const Block& b, int c) {
    const uint8_t* q = b.qs + 4 * c;
    const int h0 = b.qh[2 * c], h1 = b.qh[2 * c + 1];
    const __m256i grid = _mm256_set_epi64x(
        Entry(kIq1SGrid[q[3] | ((h1 << 4) & 0x700)]), Entry(kIq1SGrid[q[2] | ((h1 << 8) & 0x700)]),
        Entry(kIq1SGrid[q[1] | ((h0 << 4) & 0x700)]), Entry(kIq1SGrid[q[0] | ((h0 << 8) & 0x700)]));
    // Sub-group l's delta sign is bit 3 (l even) or 7 (l odd) of qh byte l / 2: spread those two
    // bytes over the sub-groups' 8-byte lanes, test the bit, and make -1 / +1 bytes.
    const __m256i bytes = _mm256_set_epi64x(h1, h1, h0, h0);
    const __m256i spread = _mm256_shuffle_epi8(bytes, _mm256_setzero_si256());
    const __m256i bit = _mm256_set_epi64x(Entry(0x8080808080808080ull), 0x0808080808080808,
                                          Entry(0x8080808080808080ull), 0x0808080808080808);
    const __m256i minus = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    const __m256i delta = _mm256_or_si256(minus, _mm256_set1_epi8(1));
    Chunk out;
    ShiftedLevels(grid, delta, &out);
    const int word = (b.scales[c & ~1] | (b.scales[(c & ~1) + 1] << 8)) >> (6 * (c % 2));
    out.scale16 = HalfScales(2 * (word & 7) + 1, 2 * ((word >> 3) & 7) + 1);
    return out;
  }
};

inline __m256i ChunkDot(__m256i isum, const Chunk& w, const int8_t* a) {
  const __m256i signed_a = _mm256_sign_epi8(LoadU256(a), w.sgn);
  return MaddAccumulate(isum, _mm256_maddubs_epi16(w.mag, signed_a), w.scale16);
}

// MatVec decodes each chunk and uses it at once (nothing goes through memory); MatMul decodes a
// super-block's 8 chunks once for all the tokens of the batch. Both run the same operations per
// (row, token), so MatMul == MatVec bit for bit.
template <typename Decoder>
struct GridKernel {
  template <int kMax>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int n_tokens, int64_t nb,
                  float* out) {
    const int nt = TileTokens<kMax>(n_tokens);
    const auto* x = reinterpret_cast<const typename Decoder::Block*>(w);
    __m256 acc[kMax];
    for (int t = 0; t < nt; ++t) acc[t] = _mm256_setzero_ps();
    Chunk chunks[8];
    for (int64_t i = 0; i < nb; ++i) {
      // The decode's table lookups hold the out-of-order window, so the hardware prefetcher
      // alone leaves DRAM latency exposed: 2048x7168 IQ2_XXS MatVec took 3.3 ms without this
      // line and 1.0 ms with it (one thread).
      PrefetchWeights(&x[i]);
      const float kernel_d = Decoder::KernelD(x[i]);
      if constexpr (kMax == 1) {
        const BlockQ8_K& a = reinterpret_cast<const BlockQ8_K*>(act[0])[i];
        __m256i isum = _mm256_setzero_si256();
        for (int c = 0; c < 8; ++c) isum = ChunkDot(isum, Decoder::Decode(x[i], c), a.qs + 32 * c);
        acc[0] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * kernel_d), _mm256_cvtepi32_ps(isum), acc[0]);
      } else {
        for (int c = 0; c < 8; ++c) chunks[c] = Decoder::Decode(x[i], c);
        for (int t = 0; t < nt; ++t) {
          const BlockQ8_K& a = reinterpret_cast<const BlockQ8_K*>(act[t])[i];
          __m256i isum = _mm256_setzero_si256();
          for (int c = 0; c < 8; ++c) isum = ChunkDot(isum, chunks[c], a.qs + 32 * c);
          acc[t] =
              _mm256_fmadd_ps(_mm256_set1_ps(a.d * kernel_d), _mm256_cvtepi32_ps(isum), acc[t]);
        }
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
