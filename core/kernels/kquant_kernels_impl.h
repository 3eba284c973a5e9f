// Kernels for the super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K
// activations, written once and compiled twice: kquants_avx2.cc and kquants_avx512.cc (where the
// int16 x int16 accumulation fuses into vpdpwssd). Include only from those two files.
//
// Q2_K, Q3_K, Q6_K (KKernel): per super-block and token, the weight levels are decoded once
// (8 vectors of 32 bytes; in MatMul once for up to 32 tokens), then each 32-level chunk is
// multiplied with the activations by maddubs and weighted by its group scale(s) with madd, summing
// into 8 int32 lanes (exact). One FMA per super-block folds d_a * d into 8 float lanes; the min
// terms (sum_g min_g * bsum_g, from Q8_K's bsums) go through a second FMA into another 8 lanes.
// Formats with signed levels (Q3_K: -4..3, Q6_K: -32..31) use the unsigned level + offset and
// subtract offset * sum_g scale_g * bsum_g, also exact.
// Q4_K and Q5_K have their own 8-row kernels (Q4KRows, at the end) that follow the scalar twin's
// float order.
#pragma once

#include <cstddef>

#include "core/base/ggml_type.h"
#include "core/kernels/simd_avx2.h"
#include "core/quant/blocks.h"

namespace sluice {
namespace {

const BlockQ8_K& ActBlock(const uint8_t* act, int64_t i) {
  return reinterpret_cast<const BlockQ8_K*>(act)[i];
}

// The 8 levels-chunk products of one token: sum_c madd(maddubs(q[c], a[c]), scale16[c]).
inline __m256i ChunkSums(const __m256i* q, const __m256i* scale16, const int8_t* a) {
  __m256i sum = _mm256_setzero_si256();
  for (int c = 0; c < 8; ++c) {
    const __m256i p16 = _mm256_maddubs_epi16(q[c], LoadU256(a + 32 * c));
    sum = MaddAccumulate(sum, p16, scale16[c]);
  }
  return sum;
}

// Common driver: Decode(block, q[8], scale16[8], &mins16, &offset16) and Scales(block) (lanes d,
// dmin) per super-block.
// mins16 (16 int16 lanes, paired with Q8_K's 16 bsums) carries min_g for asymmetric formats;
// offset16 carries offset * scale_g for formats with a level offset. Either may be zero.
template <typename Decoder>
struct KKernel {
  template <int kMax>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int n_tokens, int64_t nb,
                  float* out) {
    const int nt = TileTokens<kMax>(n_tokens);
    const auto* x = reinterpret_cast<const typename Decoder::Block*>(w);
    __m256 acc[kMax], acc_min[kMax];
    for (int t = 0; t < nt; ++t) acc[t] = acc_min[t] = _mm256_setzero_ps();
    __m256i q[8], scale16[8];
    for (int64_t i = 0; i < nb; ++i) {
      __m256i mins16, offset16;
      Decoder::Decode(x[i], q, scale16, &mins16, &offset16);
      const __m128 d_dmin = Decoder::Scales(x[i]);  // lanes: d, dmin
      for (int t = 0; t < nt; ++t) {
        const BlockQ8_K& a = ActBlock(act[t], i);
        const __m256i bsums = LoadU256(a.bsums);
        __m256i isum = ChunkSums(q, scale16, a.qs);
        if constexpr (Decoder::kHasOffset) {
          isum = _mm256_sub_epi32(isum, _mm256_madd_epi16(bsums, offset16));
        }
        // d_a * d and d_a * dmin in one multiply (each lane rounds like the scalar product).
        const __m128 scales = _mm_mul_ps(d_dmin, _mm_set1_ps(a.d));
        acc[t] = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), _mm256_cvtepi32_ps(isum), acc[t]);
        if constexpr (Decoder::kHasMin) {
          const __m256i msum = _mm256_madd_epi16(bsums, mins16);
          const __m256 dmin_a = _mm256_broadcastss_ps(_mm_movehdup_ps(scales));
          acc_min[t] = _mm256_fnmadd_ps(dmin_a, _mm256_cvtepi32_ps(msum), acc_min[t]);
        }
      }
    }
    for (int t = 0; t < nt; ++t) out[t] = HsumPs(acc[t]) + HsumPs(acc_min[t]);
  }
};

// The 8 6-bit scales (bytes 0..7) and mins (bytes 8..15) of a Q4_K/Q5_K block, unpacked with
// word-wide masks (the layout is described at UnpackScaleMinK4 in core/quant/blocks.h).
inline __m128i ScalesAndMinsK4(const uint8_t* packed) {
  uint64_t u01;  // bytes 0..7
  uint32_t u2;   // bytes 8..11
  std::memcpy(&u01, packed, sizeof(u01));
  std::memcpy(&u2, packed + 8, sizeof(u2));
  constexpr uint64_t kLow4 = 0x0f0f0f0f, kLow2 = 0x0303030303030303;
  const uint64_t top2 = (u01 >> 6) & kLow2;  // top bits of bytes 0..7, in place at bit 0
  const uint64_t u22 = static_cast<uint64_t>(u2) | (static_cast<uint64_t>(u2 >> 4) << 32);
  // scales: 0..3 = bytes 0..3 & 63; 4..7 = low nibbles of bytes 8..11 | top bits of bytes 0..3.
  const uint64_t scales = (u01 & 0x3f3f3f3f) | (((u22 & kLow4) | ((top2 & 0x03030303) << 4)) << 32);
  // mins: 0..3 = bytes 4..7 & 63; 4..7 = high nibbles of bytes 8..11 | top bits of bytes 4..7.
  const uint64_t mins = ((u01 >> 32) & 0x3f3f3f3f) |
                        ((((u22 >> 32) & kLow4) | (((top2 >> 32) & 0x03030303) << 4)) << 32);
  return _mm_set_epi64x(static_cast<long long>(mins), static_cast<long long>(scales));
}

// The 8 scales of ScalesAndMinsK4 widened to int16 in both 128-bit lanes, ready for ScaleOfGroup.
inline __m256i WideScalesK4(__m128i scales_mins) {
  return _mm256_permute4x64_epi64(_mm256_cvtepu8_epi16(scales_mins), 0x44);
}

// 16 int16 lanes equal to scale g of WideScalesK4's result (one shuffle).
inline __m256i ScaleOfGroup(__m256i wide_scales, int g) {
  const int16_t pair = static_cast<int16_t>((2 * g) | ((2 * g + 1) << 8));
  return _mm256_shuffle_epi8(wide_scales, _mm256_set1_epi16(pair));
}

// 16 int16 lanes: 8 x signed byte lo of v, then 8 x signed byte hi (a chunk of two 16-groups).
inline __m256i TwoGroupScalesS8(__m128i v, int lo, int hi) {
  const __m128i pick = _mm_setr_epi8(
      static_cast<char>(lo), static_cast<char>(lo), static_cast<char>(lo), static_cast<char>(lo),
      static_cast<char>(lo), static_cast<char>(lo), static_cast<char>(lo), static_cast<char>(lo),
      static_cast<char>(hi), static_cast<char>(hi), static_cast<char>(hi), static_cast<char>(hi),
      static_cast<char>(hi), static_cast<char>(hi), static_cast<char>(hi), static_cast<char>(hi));
  return _mm256_cvtepi8_epi16(_mm_shuffle_epi8(v, pick));
}

// Mins of a Q4_K/Q5_K block as 16 int16 lanes paired with Q8_K's bsums: lanes 2g, 2g+1 = min g.
inline __m256i PairedMinsK4(__m128i scales_mins) {
  const __m128i pick = _mm_setr_epi8(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
  return _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scales_mins, pick));
}

struct Q4KDecoder {
  using Block = BlockQ4_K;
  static constexpr bool kHasMin = true;
  static constexpr bool kHasOffset = false;
  static __m128 Scales(const Block& b) { return LoadF16Pair(b.d); }
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i* mins16, __m256i*) {
    const __m128i scales_mins = ScalesAndMinsK4(b.scales);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int p = 0; p < 4; ++p) {
      const __m256i bytes = LoadU256(b.qs + 32 * p);
      q[2 * p] = _mm256_and_si256(bytes, low4);
      q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
    }
    const __m256i wide_scales = WideScalesK4(scales_mins);
    for (int g = 0; g < 8; ++g) scale16[g] = ScaleOfGroup(wide_scales, g);
    *mins16 = PairedMinsK4(scales_mins);
  }
};

struct Q6KDecoder {
  using Block = BlockQ6_K;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasOffset = true;  // level = u - 32
  static __m128 Scales(const Block& b) { return _mm_set_ss(LoadF16(b.d)); }
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i*, __m256i* offset16) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i two_bits = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = LoadU256(b.ql + 64 * h);
      const __m256i ql1 = LoadU256(b.ql + 64 * h + 32);
      const __m256i qh = LoadU256(b.qh + 32 * h);
      auto high = [&](int shift) {
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift), two_bits), 4);
      };
      q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), high(0));
      q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), high(2));
      q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), high(4));
      q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), high(6));
    }
    const __m128i scales = LoadU128(b.scales);
    for (int c = 0; c < 8; ++c) scale16[c] = TwoGroupScalesS8(scales, 2 * c, 2 * c + 1);
    *offset16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(scales), 5);  // 32 * scale_g
  }
};

struct Q2KDecoder {
  using Block = BlockQ2_K;
  static constexpr bool kHasMin = true;
  static constexpr bool kHasOffset = false;
  static __m128 Scales(const Block& b) { return LoadF16Pair(b.d); }  // d, dmin adjacent
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i* mins16, __m256i*) {
    const __m256i three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = LoadU256(b.qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        q[4 * h + s] = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * s), three);
      }
    }
    const __m128i packed = LoadU128(b.scales);
    const __m128i scales = _mm_and_si128(packed, _mm_set1_epi8(0x0f));
    for (int c = 0; c < 8; ++c) scale16[c] = TwoGroupScalesS8(scales, 2 * c, 2 * c + 1);
    *mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0f)));
  }
};

struct Q3KDecoder {
  using Block = BlockQ3_K;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasOffset = true;  // level = u - 4, u = low2 + 4 * hbit
  static __m128 Scales(const Block& b) { return _mm_set_ss(LoadF16(b.d)); }
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i*, __m256i* offset16) {
    const __m256i three = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i hmask = LoadU256(b.hmask);
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = LoadU256(b.qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        const int c = 4 * h + s;
        const __m256i low2 = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * s), three);
        const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hmask, c), one);
        q[c] = _mm256_or_si256(low2, _mm256_slli_epi16(hbit, 2));
      }
    }
    // 16 6-bit scales: low nibbles from bytes 0..7, top 2 bits from bytes 8..11 (blocks.h).
    uint32_t u[4];
    std::memcpy(u, b.scales, 12);
    constexpr uint32_t kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
    const uint32_t top = u[2];
    const uint32_t s0 = (u[0] & kLow4) | (((top >> 0) & kLow2) << 4);
    const uint32_t s1 = (u[1] & kLow4) | (((top >> 2) & kLow2) << 4);
    const uint32_t s2 = ((u[0] >> 4) & kLow4) | (((top >> 4) & kLow2) << 4);
    const uint32_t s3 = ((u[1] >> 4) & kLow4) | (((top >> 6) & kLow2) << 4);
    const __m128i scales = _mm_sub_epi8(_mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1),
                                                       static_cast<int>(s2), static_cast<int>(s3)),
                                        _mm_set1_epi8(32));
    for (int c = 0; c < 8; ++c) scale16[c] = TwoGroupScalesS8(scales, 2 * c, 2 * c + 1);
    *offset16 = _mm256_slli_epi16(_mm256_cvtepi8_epi16(scales), 2);  // 4 * scale_g
  }
};

// IQ4_XS levels are signed (-127..113): the sign trick per chunk, so it has its own kernel.
struct Iq4XsKernel {
  template <int kMax>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int n_tokens, int64_t nb,
                  float* out) {
    const int nt = TileTokens<kMax>(n_tokens);
    const auto* x = reinterpret_cast<const BlockIq4Xs*>(w);
    const __m256i table = _mm256_broadcastsi128_si256(LoadU128(kIq4nlValues));
    __m256 acc[kMax];
    for (int t = 0; t < nt; ++t) acc[t] = _mm256_setzero_ps();
    __m256i q[8], abs_q[8], scale16[8];
    for (int64_t i = 0; i < nb; ++i) {
      for (int g = 0; g < 8; ++g) {
        q[g] = _mm256_shuffle_epi8(table, UnpackNibbles16(x[i].qs + 16 * g));
        abs_q[g] = _mm256_sign_epi8(q[g], q[g]);
        scale16[g] = _mm256_set1_epi16(static_cast<int16_t>(Iq4XsScale(x[i], g)));
      }
      const float d = LoadF16(x[i].d);
      for (int t = 0; t < nt; ++t) {
        const BlockQ8_K& a = ActBlock(act[t], i);
        __m256i isum = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
          const __m256i signed_a = _mm256_sign_epi8(LoadU256(a.qs + 32 * g), q[g]);
          const __m256i p16 = _mm256_maddubs_epi16(abs_q[g], signed_a);
          isum = MaddAccumulate(isum, p16, scale16[g]);
        }
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(isum), acc[t]);
      }
    }
    for (int t = 0; t < nt; ++t) out[t] = HsumPs(acc[t]);
  }
};

template <typename Kernel>
void Rows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  BatchedRows<Kernel>(a, row_begin, row_end, a.cols / kQkK);
}

// --- MatMul for the KKernel formats: row x token register tiles ---------------------------------
//
// KKernel::Dot<kTokenBatch> spends most of its time on the activations: every token's 256 levels
// per super-block are loaded once per row from L2 (32 tokens x 292 bytes do not fit in L1 for a
// whole row), and each 32-byte chunk feeds one maddubs. KMatMulRows decodes kKRowTile rows of one
// super-block at a time, then multiplies them with the same super-block of every token of the
// batch (9.3 KiB for 32 tokens, L1-resident) in register tiles of kKTileRows rows x kKTileTokens
// tokens: per chunk, kKTileTokens activation loads and kKTileRows weight loads serve
// kKTileRows * kKTileTokens maddubs, and the int32 sums stay in registers.
//
// Bit-exactness with MatVec (KKernel::Dot<1>): per (row, token) and super-block the int32 lanes
// hold the same integer sums (exact, so the order of the adds does not matter), and the float
// operations are the same sequence on the same values: scales = d_dmin * d_a, acc += scales[0] *
// float(isum), acc_min -= scales[1] * float(msum), and HsumPs(acc) + HsumPs(acc_min) at the end.

// One super-block of one row, decoded once for all the tokens of the batch.
struct DecodedK {
  __m256i q[8];
  __m256i scale16[8];
  __m256i mins16;
  __m256i offset16;
  __m128 d_dmin;
};

// Register tile: 8 int32 accumulators, 2 activation chunks, a weight chunk and a scale vector.
// Hot Q4_K MatMul of 32 tokens x 1024 x 4096 on one Zen 3 core, ns per super-block and token:
// 4x2 tiles 4.7-4.9, 3x3 5.2, 4x1 5.3, 2x3 5.4, 4x3 5.4, 2x4 6.0, 1x4 7.0 (Dot<32>: 6.9).
inline constexpr int kKRowTile = 4;  // rows decoded per pass (4 x 592 bytes of decoded blocks)
inline constexpr int kKTileRows = 4;
inline constexpr int kKTileTokens = 2;

// acc[r * kTokenBatch + t] / acc_min[...] for the tile's rows r < NR and tokens t < NT;
// blocks[t] = token t's Q8_K block of this super-block.
// Not inlined: once Q4_K and Q5_K left KTile, gcc inlined all 8 tile shapes of Q2_K into
// KMatMulRows, and Q2_K's hot MatMul measured 9% and 24% slower than before in two back-to-back
// pairs (the machine's noise is of that order, so this keeps the code shape that was measured).
template <typename Decoder, int NR, int NT>
__attribute__((noinline)) void KTile(const DecodedK* dec, const BlockQ8_K* const* blocks,
                                     __m256* acc, __m256* acc_min) {
  __m256i isum[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) isum[r][t] = _mm256_setzero_si256();
      // Not unrolled: unrolled, gcc reassociates the int32 adds into a tree over all 8 chunks and
      // spills the 8 x NR x NT products to the stack.
#pragma GCC unroll 1
  for (int c = 0; c < 8; ++c) {
    __m256i av[NT];
    for (int t = 0; t < NT; ++t) av[t] = LoadU256(blocks[t]->qs + 32 * c);
    for (int r = 0; r < NR; ++r) {
      const __m256i q = dec[r].q[c];
      const __m256i scale = dec[r].scale16[c];
      for (int t = 0; t < NT; ++t)
        isum[r][t] = MaddAccumulate(isum[r][t], _mm256_maddubs_epi16(q, av[t]), scale);
    }
  }
  for (int t = 0; t < NT; ++t) {
    const __m256i bsums = LoadU256(blocks[t]->bsums);
    const __m128 d_a = _mm_set1_ps(blocks[t]->d);
    for (int r = 0; r < NR; ++r) {
      __m256i sum = isum[r][t];
      if constexpr (Decoder::kHasOffset) {
        sum = _mm256_sub_epi32(sum, _mm256_madd_epi16(bsums, dec[r].offset16));
      }
      __m256& a = acc[r * kTokenBatch + t];
      const __m128 scales = _mm_mul_ps(dec[r].d_dmin, d_a);
      a = _mm256_fmadd_ps(_mm256_broadcastss_ps(scales), _mm256_cvtepi32_ps(sum), a);
      if constexpr (Decoder::kHasMin) {
        const __m256i msum = _mm256_madd_epi16(bsums, dec[r].mins16);
        const __m256 dmin_a = _mm256_broadcastss_ps(_mm_movehdup_ps(scales));
        __m256& m = acc_min[r * kTokenBatch + t];
        m = _mm256_fnmadd_ps(dmin_a, _mm256_cvtepi32_ps(msum), m);
      }
    }
  }
}

template <typename Decoder, int NR>
void KTileTokens(int nt, const DecodedK* dec, const BlockQ8_K* const* blocks, __m256* acc,
                 __m256* acc_min) {
  static_assert(kKTileTokens >= 1 && kKTileTokens <= 4, "the cases below cover 1..4 tokens");
  if constexpr (kKTileTokens >= 4) {
    if (nt == 4) return KTile<Decoder, NR, 4>(dec, blocks, acc, acc_min);
  }
  if constexpr (kKTileTokens >= 3) {
    if (nt == 3) return KTile<Decoder, NR, 3>(dec, blocks, acc, acc_min);
  }
  if constexpr (kKTileTokens >= 2) {
    if (nt == 2) return KTile<Decoder, NR, 2>(dec, blocks, acc, acc_min);
  }
  KTile<Decoder, NR, 1>(dec, blocks, acc, acc_min);
}

template <typename Decoder>
void KTileRowsTokens(int nr, int nt, const DecodedK* dec, const BlockQ8_K* const* blocks,
                     __m256* acc, __m256* acc_min) {
  static_assert(kKTileRows >= 1 && kKTileRows <= 4, "the cases below cover 1..4 rows");
  if constexpr (kKTileRows >= 4) {
    if (nr >= 4) return KTileTokens<Decoder, 4>(nt, dec, blocks, acc, acc_min);
  }
  if constexpr (kKTileRows >= 3) {
    if (nr == 3) return KTileTokens<Decoder, 3>(nt, dec, blocks, acc, acc_min);
  }
  if constexpr (kKTileRows >= 2) {
    if (nr == 2) return KTileTokens<Decoder, 2>(nt, dec, blocks, acc, acc_min);
  }
  KTileTokens<Decoder, 1>(nt, dec, blocks, acc, acc_min);
}

template <typename Decoder>
void KMatMulRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  static_assert(kKRowTile % kKTileRows == 0, "whole register tiles per decoded row tile");
  using Block = typename Decoder::Block;
  const int64_t nb = a.cols / kQkK;
  DecodedK dec[kKRowTile];
  __m256 acc[kKRowTile * kTokenBatch], acc_min[kKRowTile * kTokenBatch];
  const BlockQ8_K* act_rows[kTokenBatch];
  const BlockQ8_K* blocks[kKTileTokens];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kKRowTile) {
    const int nr = static_cast<int>(row_end - r0 < kKRowTile ? row_end - r0 : kKRowTile);
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kTokenBatch) {
      const int nt =
          static_cast<int>(a.n_tokens - t0 < kTokenBatch ? a.n_tokens - t0 : kTokenBatch);
      for (int k = 0; k < nt; ++k) {
        act_rows[k] = reinterpret_cast<const BlockQ8_K*>(a.act + static_cast<uint64_t>(t0 + k) *
                                                                     a.act_row_bytes);
      }
      for (int k = 0; k < nr * kTokenBatch; ++k) acc[k] = acc_min[k] = _mm256_setzero_ps();
      for (int64_t i = 0; i < nb; ++i) {
        for (int r = 0; r < nr; ++r) {
          const Block& b = reinterpret_cast<const Block*>(a.w + static_cast<uint64_t>(r0 + r) *
                                                                    a.w_row_bytes)[i];
          Decoder::Decode(b, dec[r].q, dec[r].scale16, &dec[r].mins16, &dec[r].offset16);
          dec[r].d_dmin = Decoder::Scales(b);
        }
        for (int r = 0; r < nr; r += kKTileRows) {
          __m256* acc_r = acc + r * kTokenBatch;
          __m256* acc_min_r = acc_min + r * kTokenBatch;
          for (int t = 0; t < nt; t += kKTileTokens) {
            const int tile_tokens = nt - t < kKTileTokens ? nt - t : kKTileTokens;
            for (int k = 0; k < tile_tokens; ++k) blocks[k] = act_rows[t + k] + i;
            const int tile_rows = nr - r < kKTileRows ? nr - r : kKTileRows;
            KTileRowsTokens<Decoder>(tile_rows, tile_tokens, dec + r, blocks, acc_r + t,
                                     acc_min_r + t);
          }
        }
      }
      for (int r = 0; r < nr; ++r) {
        for (int k = 0; k < nt; ++k) {
          a.y[(t0 + k) * a.y_stride + r0 + r] =
              HsumPs(acc[r * kTokenBatch + k]) + HsumPs(acc_min[r * kTokenBatch + k]);
        }
      }
    }
  }
}

// MatVec (one token) keeps KKernel::Dot<1>; MatMul uses the register tiles above.
template <typename Decoder>
void KRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  if (a.n_tokens == 1) {
    BatchedRows<KKernel<Decoder>>(a, row_begin, row_end, a.cols / kQkK);
  } else {
    KMatMulRows<Decoder>(a, row_begin, row_end);
  }
}

// --- Q4_K, Q5_K: 8 rows interleaved ------------------------------------------------------------
//
// (Written for Q4_K; Q5_K runs the same code with the fifth bit ORed into the levels and two int16
// partial sums per group, see kFifthBit and kGroupPartials.)
//
// The KKernel path spends two multiplies per 32 weights and token (maddubs, then madd by the
// group scale) plus a float epilogue per (row, token). Q4_K levels are 0..15, so a maddubs lane
// (two products) stays within 2 * 15 * 127 = 3810 and 8 of them add up exactly in int16 (30480).
// MatMul (Q4KTile, Q4KDot) therefore interleaves 8 rows: vector k of group g holds, in dword l,
// row l's levels 4k..4k+3 of the group, so the 8 maddubs of a group (each against the 4 matching
// activation bytes broadcast to every dword) add up in int16 to the group's sums of all 8 rows, and
// one madd by the rows' scales (int16 lanes 2l, 2l+1 = scale of row l) turns them into int32 lane
// l. Per group and token that is 9 multiplies for 8 rows instead of 16, and the float step runs
// once per 8 rows: lane l of
//   acc += (d_a * d) * float(isum) - (d_a * dmin) * float(msum)
// with isum, msum the row's exact int32 totals: the scalar twin's sequence (scalar_kquants.cc).
// MatVec (Q4KMatVec8) computes the same totals for 8 rows from the transposed levels as it
// unpacks them (no tile in memory), then the same float step: MatVec, MatMul and the scalar
// reference give the same bits. The decoded tile is built once per super-block and 32 tokens.
//
// MatMul multiplies 2 tiles (16 rows) by 2 tokens per call (Q4KDot<Block, 2, 2>): per group and
// k, 2 tile loads and 2 activation broadcasts feed 4 maddubs (1 tile, 2 tokens: 1 load and 2
// broadcasts for 2). The loop is bound by the vector ops it issues (maddubs + add + loads and
// broadcasts, ~3 cycles per 4 maddubs on Zen 3), so sharing the broadcasts is what pays: Q4_K
// 32 tokens +13%, on top of +11% from KeepSerial (GCC spilled the maddubs results otherwise).
// Measured and dropped: 3 tiles x 2 tokens (+2.6%, within noise); the min sums as 4 madd of
// (min_g, min_g+1) pairs against hadd'ed group sums instead of 8 (+1%).

inline constexpr int kQ4KRows = 8;

// ScalesAndMinsK4 of two blocks (one per 128-bit half) in vector code. Reads 16 bytes at each
// `scales` (the 12 scale bytes and 4 bytes of qs behind them in the block).
inline __m256i ScalesAndMinsK4x2(const uint8_t* scales0, const uint8_t* scales1) {
  const __m256i x = _mm256_set_m128i(LoadU128(scales1), LoadU128(scales0));
  // Bytes of each half: scales 0..3 <- 0..3, scales 4..7 <- 8..11, mins 0..3 <- 4..7,
  // mins 4..7 <- 8..11; the top two bits for scales/mins 4..7 come from bytes 0..3 / 4..7.
  const __m256i lo =
      _mm256_shuffle_epi8(x, _mm256_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11, 0,
                                              1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m256i hi = _mm256_shuffle_epi8(
      x, _mm256_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 0,
                          1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  const __m256i keep = _mm256_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0,
                                        63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0);
  const __m256i high_nibble = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15,
                                               0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15);
  const __m256i top =
      _mm256_setr_epi8(0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0,
                       0, 0, 0x30, 0x30, 0x30, 0x30, 0, 0, 0, 0, 0x30, 0x30, 0x30, 0x30);
  const __m256i part1 = _mm256_and_si256(lo, keep);
  const __m256i part2 = _mm256_and_si256(_mm256_srli_epi16(lo, 4), high_nibble);
  const __m256i part3 = _mm256_and_si256(_mm256_srli_epi16(hi, 2), top);  // (b >> 6) << 4
  return _mm256_or_si256(_mm256_or_si256(part1, part2), part3);
}

struct Q4KTile {
  __m256i q[8][8];   // [group][k]: dword l = levels 4k..4k+3 of row l
  __m256i scale[8];  // [group]: int16 lanes 2l, 2l+1 = scale of row l
  __m256i min[8];    // [group]: int16 lanes 2l, 2l+1 = min of row l
  __m256 d, dmin;    // lane l: row l's d, dmin
};

// The 32 bytes at byte `offset` of the 8 rows' blocks, transposed: v[k] dword l = row l's dword k.
template <typename Block>
inline void TransposeRows32(const Block* const* rows, size_t offset, __m256i* v) {
  __m256i t[8], u[8];
  for (int j = 0; j < 4; ++j) {
    const __m256i r0 = LoadU256(reinterpret_cast<const uint8_t*>(rows[2 * j]) + offset);
    const __m256i r1 = LoadU256(reinterpret_cast<const uint8_t*>(rows[2 * j + 1]) + offset);
    t[2 * j] = _mm256_unpacklo_epi32(r0, r1);
    t[2 * j + 1] = _mm256_unpackhi_epi32(r0, r1);
  }
  for (int j = 0; j < 2; ++j) {
    u[4 * j + 0] = _mm256_unpacklo_epi64(t[4 * j], t[4 * j + 2]);
    u[4 * j + 1] = _mm256_unpackhi_epi64(t[4 * j], t[4 * j + 2]);
    u[4 * j + 2] = _mm256_unpacklo_epi64(t[4 * j + 1], t[4 * j + 3]);
    u[4 * j + 3] = _mm256_unpackhi_epi64(t[4 * j + 1], t[4 * j + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
    v[k + 4] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
  }
}

// Scales, mins (int16 lanes 2l, 2l+1 = row l, per group) and d, dmin (lane l = row l).
template <typename Block>
inline void DecodeQ4KScales(const Block* const* rows, __m256i* scale, __m256i* min, __m256* d,
                            __m256* dmin) {
  // 8 rows x 16 bytes (8 scales, 8 mins) transposed to 16 x 8 rows.
  __m128i sm[8];
  for (int j = 0; j < 4; ++j) {
    const __m256i both = ScalesAndMinsK4x2(rows[2 * j]->scales, rows[2 * j + 1]->scales);
    sm[2 * j] = _mm256_castsi256_si128(both);
    sm[2 * j + 1] = _mm256_extracti128_si256(both, 1);
  }
  __m128i a[8];
  for (int j = 0; j < 4; ++j) {
    a[2 * j] = _mm_unpacklo_epi8(sm[2 * j], sm[2 * j + 1]);      // scales of rows 2j, 2j+1
    a[2 * j + 1] = _mm_unpackhi_epi8(sm[2 * j], sm[2 * j + 1]);  // mins
  }
  for (int m = 0; m < 2; ++m) {                             // m = 0: scales, 1: mins
    const __m128i b0 = _mm_unpacklo_epi16(a[m], a[2 + m]);  // groups 0..3, rows 0..3
    const __m128i b1 = _mm_unpackhi_epi16(a[m], a[2 + m]);  // groups 4..7, rows 0..3
    const __m128i b2 = _mm_unpacklo_epi16(a[4 + m], a[6 + m]);
    const __m128i b3 = _mm_unpackhi_epi16(a[4 + m], a[6 + m]);
    const __m128i c[4] = {_mm_unpacklo_epi32(b0, b2), _mm_unpackhi_epi32(b0, b2),
                          _mm_unpacklo_epi32(b1, b3), _mm_unpackhi_epi32(b1, b3)};
    __m256i* out = m == 0 ? scale : min;
    for (int j = 0; j < 4; ++j) {  // c[j]: bytes 0..7 group 2j rows 0..7, bytes 8..15 group 2j+1
      out[2 * j] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(c[j], c[j]));
      out[2 * j + 1] = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(c[j], c[j]));
    }
  }
  // d, dmin: the f16 pairs of the 8 rows -> lanes.
  alignas(32) uint32_t pairs[8];
  for (int l = 0; l < 8; ++l) std::memcpy(&pairs[l], rows[l]->d, sizeof(uint32_t));
  const __m256i h = _mm256_load_si256(reinterpret_cast<const __m256i*>(pairs));
  // Per 128-bit half: the 4 d halves, then the 4 dmin halves; then d0..7 | dmin0..7.
  const __m256i split = _mm256_shuffle_epi8(
      h, _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9,
                          12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
  const __m256i ordered = _mm256_permute4x64_epi64(split, 0xd8);
  *d = _mm256_cvtph_ps(_mm256_castsi256_si128(ordered));
  *dmin = _mm256_cvtph_ps(_mm256_extracti128_si256(ordered, 1));
}

// Q5_K adds a fifth bit: element 64p + j has bit 2p of qh[j], element 64p + 32 + j bit 2p + 1.
template <typename Block>
inline constexpr bool kFifthBit = std::is_same_v<Block, BlockQ5_K>;

// Levels of groups 2p (lo) and 2p + 1 (hi) from the transposed qs dwords v and qh dwords h.
template <typename Block>
inline void LevelsQ45K(__m256i v, __m256i h, int p, __m256i* lo, __m256i* hi) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  *lo = _mm256_and_si256(v, low4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
  if constexpr (kFifthBit<Block>) {
    const __m256i one = _mm256_set1_epi8(1);
    *lo = _mm256_or_si256(*lo,
                          _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * p), one), 4));
    *hi = _mm256_or_si256(
        *hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * p + 1), one), 4));
  } else {
    static_cast<void>(h);
    static_cast<void>(p);
  }
}

// rows[l] = row l's block (rows may repeat to fill a tile).
template <typename Block>
inline void DecodeQ4KTile(const Block* const* rows, Q4KTile* tile) {
  __m256i h[8] = {};
  if constexpr (kFifthBit<Block>) TransposeRows32(rows, offsetof(Block, qh), h);
  for (int p = 0; p < 4; ++p) {
    __m256i v[8];
    TransposeRows32(rows, offsetof(Block, qs) + 32 * p, v);
    for (int k = 0; k < 8; ++k) {
      LevelsQ45K<Block>(v[k], h[k], p, &tile->q[2 * p][k], &tile->q[2 * p + 1][k]);
    }
  }
  DecodeQ4KScales(rows, tile->scale, tile->min, &tile->d, &tile->dmin);
}

// 4 bytes at p in every dword.
inline __m256i Broadcast4(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return _mm256_set1_epi32(v);
}

// msum of the 8 rows: sum_g min_g * (bsum 2g + bsum 2g+1), lane l = row l.
inline __m256i Q4KMinSums(const __m256i* min, const BlockQ8_K& a) {
  __m256i msum = _mm256_setzero_si256();
  for (int g = 0; g < 8; ++g) {
    msum = MaddAccumulate(msum, min[g], Broadcast4(a.bsums + 2 * g));  // (min, min) x bsum pair
  }
  return msum;
}

// The float step, lane l = row l (the scalar twin's sequence).
inline __m256 Q4KFloatStep(__m256 acc, __m256 d, __m256 dmin, float d_a, __m256i isum,
                           __m256i msum) {
  const __m256 a = _mm256_set1_ps(d_a);
  const __m256 p = _mm256_mul_ps(_mm256_mul_ps(a, d), _mm256_cvtepi32_ps(isum));
  const __m256 m = _mm256_mul_ps(_mm256_mul_ps(a, dmin), _mm256_cvtepi32_ps(msum));
  return _mm256_add_ps(acc, _mm256_sub_ps(p, m));
}

// int16 partial sums per group: Q4_K's 8 maddubs fit one (30480), Q5_K's levels (<= 31) need a
// partial per 4 maddubs (4 x 2 x 31 x 127 = 31496).
template <typename Block>
inline constexpr int kGroupPartials = kFifthBit<Block> ? 2 : 1;

// An empty asm that claims to change v: the compiler can no longer reassociate a running sum's
// adds into a tree. GCC 12 otherwise issues all of a group's maddubs first and adds their results
// pairwise, which keeps 16-32 products live and spills them (32 tokens: 11% slower with 1 tile,
// 2 tiles were slower than 1).
inline void KeepSerial(__m256i* v) { asm("" : "+v"(*v)); }

// MatMul: NR decoded tiles (8 rows each) x NT tokens; acc[r * kTokenBatch + t] lane l = row l of
// tile r. Each broadcast activation vector feeds the NR tiles, each tile vector the NT tokens.
template <typename Block, int NR, int NT>
void Q4KDot(const Q4KTile* tiles, const BlockQ8_K* const* blocks, __m256* acc) {
  constexpr int kParts = kGroupPartials<Block>;
  constexpr int kSteps = 8 / kParts;  // maddubs per int16 partial
  __m256i isum[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) isum[r][t] = _mm256_setzero_si256();
  for (int g = 0; g < 8; ++g) {
    for (int j = 0; j < kParts; ++j) {
      __m256i s16[NR][NT];
      for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t) s16[r][t] = _mm256_setzero_si256();
      for (int k = j * kSteps; k < (j + 1) * kSteps; ++k) {
        __m256i a[NT];
        for (int t = 0; t < NT; ++t) a[t] = Broadcast4(blocks[t]->qs + 32 * g + 4 * k);
        for (int r = 0; r < NR; ++r) {
          const __m256i q = tiles[r].q[g][k];
          for (int t = 0; t < NT; ++t) {
            const __m256i p = _mm256_maddubs_epi16(q, a[t]);
            s16[r][t] = _mm256_add_epi16(s16[r][t], p);
            KeepSerial(&s16[r][t]);
          }
        }
      }
      for (int r = 0; r < NR; ++r)
        for (int t = 0; t < NT; ++t)
          isum[r][t] = MaddAccumulate(isum[r][t], s16[r][t], tiles[r].scale[g]);
    }
  }
  for (int t = 0; t < NT; ++t) {
    for (int r = 0; r < NR; ++r) {
      __m256* acc_rt = acc + r * kTokenBatch + t;
      *acc_rt = Q4KFloatStep(*acc_rt, tiles[r].d, tiles[r].dmin, blocks[t]->d, isum[r][t],
                             Q4KMinSums(tiles[r].min, *blocks[t]));
    }
  }
}

// MatVec: the same integer sums and float step with the levels used as they are unpacked
// (decoding a tile to memory first costs more than the single token's dot).
//
// The 8 rows are read block by block, a pattern the hardware prefetcher follows poorly for short
// rows (4096 x 1024: half the bandwidth of a row-by-row read), so each step prefetches its share
// of the next tile, [prefetch, prefetch + 8 rows): rows are packed, so that range is contiguous.
template <typename Block>
__m256 Q4KMatVec8(const Block* const* row_starts, const BlockQ8_K* act, int64_t nb,
                  const uint8_t* prefetch, uint64_t prefetch_step) {
  constexpr int kParts = kGroupPartials<Block>;
  __m256 acc = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    for (uint64_t b = 0; b < prefetch_step; b += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(prefetch) + b, _MM_HINT_T0);
    }
    prefetch += prefetch_step;
    const Block* rows[8];
    for (int l = 0; l < 8; ++l) rows[l] = row_starts[l] + i;
    const BlockQ8_K& a = act[i];
    __m256i scale[8], min[8];
    __m256 d, dmin;
    DecodeQ4KScales(rows, scale, min, &d, &dmin);
    __m256i h[8] = {};
    if constexpr (kFifthBit<Block>) TransposeRows32(rows, offsetof(Block, qh), h);
    __m256i isum = _mm256_setzero_si256();
    for (int p = 0; p < 4; ++p) {
      __m256i v[8];
      TransposeRows32(rows, offsetof(Block, qs) + 32 * p, v);
      __m256i s_lo[kParts], s_hi[kParts];
      for (int j = 0; j < kParts; ++j) s_lo[j] = s_hi[j] = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        __m256i q_lo, q_hi;
        LevelsQ45K<Block>(v[k], h[k], p, &q_lo, &q_hi);
        __m256i& lo = s_lo[k * kParts / 8];
        __m256i& hi = s_hi[k * kParts / 8];
        lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(q_lo, Broadcast4(a.qs + 64 * p + 4 * k)));
        hi = _mm256_add_epi16(hi,
                              _mm256_maddubs_epi16(q_hi, Broadcast4(a.qs + 64 * p + 32 + 4 * k)));
      }
      for (int j = 0; j < kParts; ++j) {
        isum = MaddAccumulate(isum, s_lo[j], scale[2 * p]);
        isum = MaddAccumulate(isum, s_hi[j], scale[2 * p + 1]);
      }
    }
    acc = Q4KFloatStep(acc, d, dmin, a.d, isum, Q4KMinSums(min, a));
  }
  return acc;
}

inline constexpr int kQ4KTokens = 2;    // tokens per Q4KDot call in MatMul
inline constexpr int kQ4KMaxTiles = 2;  // 8-row tiles per Q4KDot call in MatMul

// MatMul over NR tiles (rows r0 .. r0 + nr, nr <= 8 * NR; row_starts[8 * NR], a short last tile
// repeating its last row), all tokens.
template <typename Block, int NR>
void Q4KMatMulTiles(const RowsArgs& a, int64_t r0, int nr, const Block* const* row_starts) {
  const int64_t nb = a.cols / kQkK;
  Q4KTile tiles[NR];
  __m256 acc[NR * kTokenBatch];  // [tile][token]
  alignas(32) float lanes[kQ4KRows];
  const BlockQ8_K* act_rows[kTokenBatch];
  for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kTokenBatch) {
    const int nt = static_cast<int>(a.n_tokens - t0 < kTokenBatch ? a.n_tokens - t0 : kTokenBatch);
    for (int k = 0; k < nt; ++k) {
      act_rows[k] = reinterpret_cast<const BlockQ8_K*>(a.act + static_cast<uint64_t>(t0 + k) *
                                                                   a.act_row_bytes);
    }
    for (int k = 0; k < NR * kTokenBatch; ++k) acc[k] = _mm256_setzero_ps();
    // As in MatVec, each super-block step prefetches its share of the next tiles.
    const uint8_t* next = a.w + static_cast<uint64_t>(r0 + NR * kQ4KRows) * a.w_row_bytes;
    for (int64_t i = 0; i < nb; ++i) {
      for (uint64_t b = 0; b < NR * kQ4KRows * sizeof(Block); b += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(next) + i * NR * kQ4KRows * sizeof(Block) + b,
                     _MM_HINT_T0);
      }
      for (int r = 0; r < NR; ++r) {
        const Block* rows[kQ4KRows];
        for (int l = 0; l < kQ4KRows; ++l) rows[l] = row_starts[r * kQ4KRows + l] + i;
        DecodeQ4KTile(rows, &tiles[r]);
      }
      int t = 0;
      const BlockQ8_K* blocks[kQ4KTokens];
      for (; t + kQ4KTokens <= nt; t += kQ4KTokens) {
        for (int k = 0; k < kQ4KTokens; ++k) blocks[k] = act_rows[t + k] + i;
        Q4KDot<Block, NR, kQ4KTokens>(tiles, blocks, acc + t);
      }
      for (; t < nt; ++t) {
        blocks[0] = act_rows[t] + i;
        Q4KDot<Block, NR, 1>(tiles, blocks, acc + t);
      }
    }
    for (int r = 0; r < NR; ++r) {
      const int rows_r = nr - r * kQ4KRows < kQ4KRows ? nr - r * kQ4KRows : kQ4KRows;
      for (int k = 0; k < nt; ++k) {
        _mm256_store_ps(lanes, acc[r * kTokenBatch + k]);
        for (int l = 0; l < rows_r; ++l) {
          a.y[(t0 + k) * a.y_stride + r0 + r * kQ4KRows + l] = lanes[l];
        }
      }
    }
  }
}

template <typename Block>
void Q4KRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  constexpr int kMaxRows = kQ4KMaxTiles * kQ4KRows;
  const int64_t nb = a.cols / kQkK;
  const int step = a.n_tokens == 1 ? kQ4KRows : kMaxRows;
  const Block* row_starts[kMaxRows];
  alignas(32) float lanes[kQ4KRows];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += step) {
    const int nr = static_cast<int>(row_end - r0 < step ? row_end - r0 : step);
    for (int l = 0; l < step; ++l) {  // a short tile repeats its last row
      const int64_t r = r0 + (l < nr ? l : nr - 1);
      row_starts[l] =
          reinterpret_cast<const Block*>(a.w + static_cast<uint64_t>(r) * a.w_row_bytes);
    }
    if (a.n_tokens == 1) {
      // The next tile (prefetching past the matrix end is harmless: prefetches do not fault).
      const uint8_t* next = a.w + static_cast<uint64_t>(r0 + kQ4KRows) * a.w_row_bytes;
      _mm256_store_ps(lanes, Q4KMatVec8(row_starts, reinterpret_cast<const BlockQ8_K*>(a.act), nb,
                                        next, kQ4KRows * sizeof(Block)));
      for (int l = 0; l < nr; ++l) a.y[r0 + l] = lanes[l];
    } else if (nr > kQ4KRows) {
      Q4KMatMulTiles<Block, kQ4KMaxTiles>(a, r0, nr, row_starts);
    } else {
      Q4KMatMulTiles<Block, 1>(a, r0, nr, row_starts);
    }
  }
}

constexpr int Id(GgmlType t) { return static_cast<int>(t); }

void FillTable(KernelTable* t) {
  t->rows[Id(GgmlType::kQ2_K)] = KRows<Q2KDecoder>;
  t->rows[Id(GgmlType::kQ3_K)] = KRows<Q3KDecoder>;
  t->rows[Id(GgmlType::kQ4_K)] = Q4KRows<BlockQ4_K>;
  t->rows[Id(GgmlType::kQ5_K)] = Q4KRows<BlockQ5_K>;
  t->rows[Id(GgmlType::kQ6_K)] = KRows<Q6KDecoder>;
  t->rows[Id(GgmlType::kIQ4_XS)] = Rows<Iq4XsKernel>;
}

}  // namespace
}  // namespace sluice
