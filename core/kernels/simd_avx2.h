// x86 SIMD building blocks shared by the *_avx2.cc and *_avx512.cc kernel files, and the
// token-tiling drivers every SIMD row kernel uses. Include only from files compiled with ISA flags.
//
// The kernels use 256-bit vectors on both paths. Compiled with AVX-512 VL + VNNI, the integer dot
// helpers below fuse into vpdpbusd / vpdpwssd (one instruction instead of maddubs + madd). Both
// forms are exact in int32 (no maddubs saturation is possible: weight levels are within 128 in
// magnitude and activation levels within 127, so a pair stays below 32767), so the AVX-512 path
// gives the same bits as the AVX2 path.
//
// Everything is in an anonymous namespace (internal linkage): see the rule in kernel_table.h.
// Thread-safety: pure functions.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/kernels/kernel_table.h"

namespace sluice {
namespace {

// f16 field of a block at any alignment; F16C converts exactly like Fp16ToFp32.
inline float LoadF16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return _cvtsh_ss(h);
}

// Two adjacent f16 fields (e.g. d and dmin) as lanes 0 and 1.
inline __m128 LoadF16Pair(const uint8_t* p) {
  uint32_t pair;
  std::memcpy(&pair, p, sizeof(pair));
  return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(pair)));
}

inline __m256i LoadU256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline __m128i LoadU128(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }

// Weight rows stream from DRAM. For the 32-element formats (one prefetch per 17-34 byte block)
// asking for the line 1 KiB ahead raised 2-thread MatVec from 20 to 27.6 GB/s (Q8_0) and 12.2 to
// 14.0 GB/s (Q4_0) on the reference VM (interleaved A/B, best of 25); for the K-quants every
// distance tried (256 B - 8 KiB) was slower than none (Q4_K 21.8 -> 18.1 GB/s at 1 KiB), so they
// leave it to the hardware prefetcher.
inline constexpr int kPrefetchBytes = 1024;
template <typename Block>
inline void PrefetchWeights(const Block* block) {
  _mm_prefetch(reinterpret_cast<const char*>(block) + kPrefetchBytes, _MM_HINT_T0);
}

// Sum of the 8 lanes, always in the same order: (lo128 + hi128), then pairs, then the last two.
inline float HsumPs(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int HsumEpi32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// 16 bytes of nibbles -> 32 bytes: low nibbles in bytes 0..15, high nibbles in bytes 16..31
// (element order of the 32-element formats).
inline __m256i UnpackNibbles16(const uint8_t* p) {
  const __m128i packed = LoadU128(p);
  const __m256i both = _mm256_set_m128i(_mm_srli_epi16(packed, 4), packed);
  return _mm256_and_si256(both, _mm256_set1_epi8(0x0f));
}

// 32 bits -> 32 bytes, byte j = 0xff if bit j is set.
inline __m256i BitsToBytes(uint32_t bits) {
  const __m256i shuffle = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                            0x0101010101010101, 0x0000000000000000);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), shuffle);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

#if defined(__AVX512VNNI__) && defined(__AVX512VL__)
// u8 x s8 products, 8 int32 lanes each holding the sum of 4 adjacent products.
inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
}
// acc + pairwise sums of int16 x int16 products.
inline __m256i MaddAccumulate(__m256i acc, __m256i a16, __m256i b16) {
  return _mm256_dpwssd_epi32(acc, a16, b16);
}
#else
inline __m256i DotU8S8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
inline __m256i MaddAccumulate(__m256i acc, __m256i a16, __m256i b16) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a16, b16));
}
#endif

// Same for s8 x s8 (|a| <= 127 on both sides, so maddubs cannot saturate).
inline __m256i DotS8S8(__m256i abs_w, __m256i w, __m256i a) {
  return DotU8S8(abs_w, _mm256_sign_epi8(a, w));
}

// Token count inside Kernel::Dot<kMax>(..., nt, ...): drivers call Dot<k> with nt == k for k <=
// kMaxRegisterTile, so the loop bound is a constant and the accumulators stay in registers.
inline constexpr int kMaxRegisterTile = 4;
template <int kMax>
inline int TileTokens(int nt) {
  return kMax <= kMaxRegisterTile ? kMax : nt;
}

// Drives a row kernel over register tiles of kTile tokens: each weight row is read once from
// memory per call and re-read from L1/L2 (and re-decoded) once per tile. Best for formats whose
// decode is a load or two.
template <typename Kernel, int kTile>
void TiledRows(const RowsArgs& a, int64_t row_begin, int64_t row_end, int64_t units) {
  static_assert(kTile <= kMaxRegisterTile, "register tiles only");
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* w = a.w + static_cast<uint64_t>(r) * a.w_row_bytes;
    int64_t t = 0;
    const uint8_t* act[kTile];
    float out[kTile];
    auto run = [&](auto nt_constant) {
      constexpr int nt = decltype(nt_constant)::value;
      for (int k = 0; k < nt; ++k) act[k] = a.act + static_cast<uint64_t>(t + k) * a.act_row_bytes;
      Kernel::template Dot<nt>(w, act, nt, units, out);
      for (int k = 0; k < nt; ++k) a.y[(t + k) * a.y_stride + r] = out[k];
      t += nt;
    };
    while (a.n_tokens - t >= kTile) run(std::integral_constant<int, kTile>());
    switch (a.n_tokens - t) {
      case 3:
        if constexpr (kTile > 3) run(std::integral_constant<int, 3>());
        break;
      case 2:
        if constexpr (kTile > 2) run(std::integral_constant<int, 2>());
        break;
      case 1:
        if constexpr (kTile > 1) run(std::integral_constant<int, 1>());
        break;
      default:
        break;
    }
  }
}

// Drives a quantized row kernel: Kernel::Dot<kMax>(w_row, act_rows, nt, units, out) handles nt
// <= kMax tokens, decoding each weight block once and applying it to all nt tokens (their
// accumulators live in an L1-resident array for kMax > 1). MatVec uses Dot<1>; MatMul uses
// Dot<kTokenBatch> on batches of up to kTokenBatch tokens. The per-token operations are the same
// source in both, so MatMul == MatVec bit for bit.
inline constexpr int kTokenBatch = 32;

template <typename Kernel>
void BatchedRows(const RowsArgs& a, int64_t row_begin, int64_t row_end, int64_t units) {
  const uint8_t* act[kTokenBatch];
  float out[kTokenBatch];
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* w = a.w + static_cast<uint64_t>(r) * a.w_row_bytes;
    if (a.n_tokens == 1) {
      act[0] = a.act;
      Kernel::template Dot<1>(w, act, 1, units, out);
      a.y[r] = out[0];
      continue;
    }
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kTokenBatch) {
      const int nt =
          static_cast<int>(a.n_tokens - t0 < kTokenBatch ? a.n_tokens - t0 : kTokenBatch);
      for (int k = 0; k < nt; ++k) act[k] = a.act + static_cast<uint64_t>(t0 + k) * a.act_row_bytes;
      Kernel::template Dot<kTokenBatch>(w, act, nt, units, out);
      for (int k = 0; k < nt; ++k) a.y[(t0 + k) * a.y_stride + r] = out[k];
    }
  }
}

}  // namespace
}  // namespace sluice
