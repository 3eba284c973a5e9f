// AVX-512 (VL/BW/VNNI) build of the K-quant kernels (kquant_kernels_impl.h), and on top of it
// 16-row VNNI kernels for the symmetric super-block formats Q6_K, Q3_K and IQ4_XS.
//
// Why: their 256-bit kernels spend per (row, token) and 32 weights a maddubs, a madd by the group
// scale and the loads of both operands (Q6_K's MatMul ran at half of Q4_K's speed). Here, as in
// block32_avx512.cc, 16 rows share the 16 int32 lanes of a zmm: per super-block the 16 rows'
// levels are decoded once (the AVX2 decoders), transposed so that dword l of vector k holds row
// l's levels 4k..4k+3, and kept in a 4 KiB tile while every token of the call passes over it:
// per 16-element group and token, 4 vpdpbusd against the activation bytes broadcast give the 16
// rows' group sums, one vpmulld applies the rows' group scales. Levels enter as unsigned u =
// level + offset (Q6_K 32, Q3_K 4, IQ4_XS 128 through a shifted table), and each group's sum
// starts from -offset * bsum_g (Q8_K's 16-element sums), so isum = sum_g scale_g * dot_g is
// exact in int32. The float step is the scalar twin's (scalar_kquants.cc), lane l = row l:
// acc += (d_a * d) * float(isum) (its min term is zero for these formats and never changes the
// sum's bits: acc never holds -0). MatVec runs the same code, so every path gives the scalar bits.
//
// GCC 12's false "may be used uninitialized" on avx512fintrin.h's pass-through operands (see
// block32_avx512.cc): the pragma has to precede the first include of the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#if defined(__x86_64__)

#include "core/kernels/kquant_kernels_impl.h"
#include "core/kernels/simd_avx512.h"

namespace sluice {
namespace {

// --- formats: 256 unsigned levels (8 chunks of 32, element order), 16 group scales, d ---------

// One row's exact isum = sum_g scale_g * dot_g of a super-block against one token, from the AVX2
// decoders' levels and scales (maddubs of levels <= 63 and activations cannot saturate; the madd
// by the group scales and the offset term are exact in int32): MatVec's path, where a 16-row
// tile would be built for a single token.
// The unsigned levels of an AVX2 decoder (its scales are read apart, as int32 per group).
template <typename Decoder>
inline void DecoderLevels(const typename Decoder::Block& b, __m256i* q) {
  __m256i scale16[8], mins16, offset16;
  Decoder::Decode(b, q, scale16, &mins16, &offset16);
}

template <typename Decoder>
inline int32_t DecoderSum(const typename Decoder::Block& b, const BlockQ8_K& a) {
  __m256i q[8], scale16[8], mins16, offset16;
  Decoder::Decode(b, q, scale16, &mins16, &offset16);
  __m256i isum = ChunkSums(q, scale16, a.qs);
  isum = _mm256_sub_epi32(isum, _mm256_madd_epi16(LoadU256(a.bsums), offset16));
  return HsumEpi32(isum);
}

struct Q6K16 {
  using Block = BlockQ6_K;
  static constexpr int kShift = 5;  // offset 32
  static void Levels(const Block& b, __m256i* q) { DecoderLevels<Q6KDecoder>(b, q); }
  static void Scales(const Block& b, int32_t* s) {
    for (int g = 0; g < 16; ++g) s[g] = b.scales[g];
  }
  static float D(const Block& b) { return LoadF16(b.d); }
  static int32_t ExactSum(const Block& b, const BlockQ8_K& a) {
    return DecoderSum<Q6KDecoder>(b, a);
  }
};

struct Q3K16 {
  using Block = BlockQ3_K;
  static constexpr int kShift = 2;  // offset 4
  static void Levels(const Block& b, __m256i* q) { DecoderLevels<Q3KDecoder>(b, q); }
  static void Scales(const Block& b, int32_t* s) {
    for (int g = 0; g < 16; ++g) s[g] = Q3KScale(b.scales, g);
  }
  static float D(const Block& b) { return LoadF16(b.d); }
  static int32_t ExactSum(const Block& b, const BlockQ8_K& a) {
    return DecoderSum<Q3KDecoder>(b, a);
  }
};

struct Iq4Xs16 {
  using Block = BlockIq4Xs;
  static constexpr int kShift = 7;  // offset 128
  static void Levels(const Block& b, __m256i* q) {
    const __m256i table = _mm256_xor_si256(_mm256_broadcastsi128_si256(LoadU128(kIq4nlValues)),
                                           _mm256_set1_epi8(static_cast<char>(0x80)));
    for (int c = 0; c < 8; ++c) q[c] = _mm256_shuffle_epi8(table, UnpackNibbles16(b.qs + 16 * c));
  }
  static void Scales(const Block& b, int32_t* s) {  // one scale per 32: both 16-element halves
    for (int g = 0; g < 8; ++g) s[2 * g] = s[2 * g + 1] = Iq4XsScale(b, g);
  }
  static float D(const Block& b) { return LoadF16(b.d); }
  // The sign trick (levels within 127 in magnitude, so maddubs cannot saturate), as Iq4XsKernel.
  static int32_t ExactSum(const Block& b, const BlockQ8_K& a) {
    const __m256i table = _mm256_broadcastsi128_si256(LoadU128(kIq4nlValues));
    __m256i isum = _mm256_setzero_si256();
    for (int g = 0; g < 8; ++g) {
      const __m256i q = _mm256_shuffle_epi8(table, UnpackNibbles16(b.qs + 16 * g));
      const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q),
                                               _mm256_sign_epi8(LoadU256(a.qs + 32 * g), q));
      isum = MaddAccumulate(isum, p16, _mm256_set1_epi16(static_cast<int16_t>(Iq4XsScale(b, g))));
    }
    return HsumEpi32(isum);
  }
};

inline constexpr int kRows16 = kTileRows16;

// One super-block of 16 rows, decoded and transposed.
struct Tile16 {
  __m512i v[8][8];    // [chunk c][k]: dword l = row l's levels 32c + 4k .. + 3
  __m512i scale[16];  // [group]: lane l = row l's scale
  __m512 d;           // lane l = row l's d
};

template <typename F>
void BuildTile(const typename F::Block* const* rows, int64_t i, Tile16* tile) {
  alignas(64) int32_t scales[16][kRows16];
  alignas(64) float d[kRows16];
  __m256i levels[kRows16][8];
  for (int l = 0; l < kRows16; ++l) {
    F::Levels(rows[l][i], levels[l]);
    int32_t s[16];
    F::Scales(rows[l][i], s);
    for (int g = 0; g < 16; ++g) scales[g][l] = s[g];
    d[l] = F::D(rows[l][i]);
  }
  for (int c = 0; c < 8; ++c) {
    __m256i chunk[kRows16];
    for (int l = 0; l < kRows16; ++l) chunk[l] = levels[l][c];
    Transpose16x8(chunk, tile->v[c]);
  }
  for (int g = 0; g < 16; ++g) tile->scale[g] = _mm512_load_si512(scales[g]);
  tile->d = _mm512_load_ps(d);
}

// acc += (d_a * d) * float(isum) for one token's Q8_K block against the tile.
template <int kShift>
inline __m512 TileStep(const Tile16& tile, const BlockQ8_K& a, __m512 acc) {
  __m512i isum = _mm512_setzero_si512();
  for (int g = 0; g < 16; ++g) {
    const int c = g / 2, k0 = (g % 2) * 4;
    __m512i sum = _mm512_set1_epi32(-(static_cast<int32_t>(a.bsums[g]) << kShift));
    for (int j = 0; j < 4; ++j) {
      int32_t four;
      std::memcpy(&four, a.qs + 16 * g + 4 * j, sizeof(four));
      sum = _mm512_dpbusd_epi32(sum, tile.v[c][k0 + j], _mm512_set1_epi32(four));
    }
    isum = _mm512_add_epi32(isum, _mm512_mullo_epi32(sum, tile.scale[g]));
  }
  const __m512 scale = _mm512_mul_ps(_mm512_set1_ps(a.d), tile.d);
  return _mm512_add_ps(acc, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(isum)));
}

// Tokens per pass over a tile's super-blocks: their float accumulators live in an L1 array.
inline constexpr int kK16Tokens = 64;

template <typename F>
void K16Rows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  using Block = typename F::Block;
  const int64_t nb = a.cols / kQkK;
  if (a.n_tokens == 1) {  // MatVec: row by row, the same integer sums and float step
    const auto* act = reinterpret_cast<const BlockQ8_K*>(a.act);
    for (int64_t r = row_begin; r < row_end; ++r) {
      const auto* x =
          reinterpret_cast<const Block*>(a.w + static_cast<uint64_t>(r) * a.w_row_bytes);
      float acc = 0;
      for (int64_t i = 0; i < nb; ++i) {
        acc += (act[i].d * F::D(x[i])) * static_cast<float>(F::ExactSum(x[i], act[i]));
      }
      a.y[r] = acc;
    }
    return;
  }
  const Block* rows[kRows16];
  alignas(64) Tile16 tile;
  alignas(64) float lanes[kRows16];
  __m512 acc[kK16Tokens];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kRows16) {
    const int nr = static_cast<int>(row_end - r0 < kRows16 ? row_end - r0 : kRows16);
    for (int l = 0; l < kRows16; ++l) {  // a short tile repeats its last row
      const int64_t r = r0 + (l < nr ? l : nr - 1);
      rows[l] = reinterpret_cast<const Block*>(a.w + static_cast<uint64_t>(r) * a.w_row_bytes);
    }
    const uint8_t* next = a.w + static_cast<uint64_t>(r0 + kRows16) * a.w_row_bytes;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kK16Tokens) {
      const int nt = static_cast<int>(a.n_tokens - t0 < kK16Tokens ? a.n_tokens - t0 : kK16Tokens);
      for (int t = 0; t < nt; ++t) acc[t] = _mm512_setzero_ps();
      for (int64_t i = 0; i < nb; ++i) {
        PrefetchNextTile(next, i, sizeof(Block));
        BuildTile<F>(rows, i, &tile);
        for (int t = 0; t < nt; ++t) {
          const uint8_t* act = a.act + static_cast<uint64_t>(t0 + t) * a.act_row_bytes;
          acc[t] = TileStep<F::kShift>(tile, ActBlock(act, i), acc[t]);
        }
      }
      for (int t = 0; t < nt; ++t) {
        _mm512_store_ps(lanes, acc[t]);
        for (int l = 0; l < nr; ++l) a.y[(t0 + t) * a.y_stride + r0 + l] = lanes[l];
      }
    }
  }
}

}  // namespace

void FillAvx512KQuantKernels(KernelTable* table) {
  FillTable(table);
  table->rows[Id(GgmlType::kQ6_K)] = K16Rows<Q6K16>;
  table->rows[Id(GgmlType::kQ3_K)] = K16Rows<Q3K16>;
  table->rows[Id(GgmlType::kIQ4_XS)] = K16Rows<Iq4Xs16>;
}

}  // namespace sluice

#endif  // __x86_64__
