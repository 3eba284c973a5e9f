// Kernels for the 32-element formats (Q8_0, Q4_0, Q5_0, IQ4_NL, MXFP4 against Q8_0 activations;
// Q4_1, Q5_1 against Q8_1) and the activation quantizers, written once and compiled twice:
// q8_avx2.cc (AVX2) and q8_avx512.cc (AVX-512 VL/BW/VNNI, where simd_avx2.h's integer dots fuse
// into vpdpbusd). Include only from those two files.
//
// Per 32-element block and token: the weight levels are decoded once into 32 int8 lanes, the
// integer dot with the activation block lands in 8 int32 lanes (4 products each), is converted to
// float and accumulated with one FMA by d_w * d_a into 8 float lanes; the lanes are summed at the
// end of the row (HsumPs). Formats with a min add m_w * s_a per block into a separate scalar.
// Activation quantizers write the same bytes as the scalar ones.
// Q4_0 and Q4_1 have their own 8-row kernels (NibbleRows, at the end) that follow the scalar twin's
// float order.
#pragma once

#include "core/base/ggml_type.h"
#include "core/kernels/simd_avx2.h"
#include "core/quant/blocks.h"
#include "core/quant/fp16.h"

namespace sluice {
namespace {

// --- weight formats: Levels() gives the 32 levels in element order -----------------------------

struct Q8_0Format {
  using Block = BlockQ8_0;
  static constexpr bool kSigned = true;
  static __m256i Levels(const Block& b) { return LoadU256(b.qs); }
  static float Scale(const Block& b) { return LoadF16(b.d); }
};

struct Q5_0Format {
  using Block = BlockQ5_0;
  static constexpr bool kSigned = true;
  static __m256i Levels(const Block& b) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof(qh));
    // Level = nibble | bit4 - 16 = nibble - 16 where bit4 is clear: OR in 0xf0 for clear bits.
    const __m256i clear =
        _mm256_andnot_si256(BitsToBytes(qh), _mm256_set1_epi8(static_cast<char>(0xf0)));
    return _mm256_or_si256(UnpackNibbles16(b.qs), clear);
  }
  static float Scale(const Block& b) { return LoadF16(b.d); }
};

struct Iq4NlFormat {
  using Block = BlockIq4Nl;
  static constexpr bool kSigned = true;
  static __m256i Levels(const Block& b) {
    const __m256i table = _mm256_broadcastsi128_si256(LoadU128(kIq4nlValues));
    return _mm256_shuffle_epi8(table, UnpackNibbles16(b.qs));
  }
  static float Scale(const Block& b) { return LoadF16(b.d); }
};

struct Mxfp4Format {
  using Block = BlockMxfp4;
  static constexpr bool kSigned = true;
  static __m256i Levels(const Block& b) {
    const __m256i table = _mm256_broadcastsi128_si256(LoadU128(kMxfp4Values));
    return _mm256_shuffle_epi8(table, UnpackNibbles16(b.qs));
  }
  static float Scale(const Block& b) { return E8m0ToFp32Half(b.e); }
};

struct Q5_1Format {
  using Block = BlockQ5_1;
  static constexpr bool kSigned = false;
  static __m256i Levels(const Block& b) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof(qh));
    const __m256i high = _mm256_and_si256(BitsToBytes(qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(UnpackNibbles16(b.qs), high);
  }
  static float Scale(const Block& b) { return LoadF16(b.d); }
  static float Min(const Block& b) { return LoadF16(b.m); }
};

// Signed levels against Q8_0 activations.
template <typename F>
struct SignedKernel {
  template <int kMax>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int n_tokens, int64_t nb,
                  float* out) {
    const int nt = TileTokens<kMax>(n_tokens);
    const auto* x = reinterpret_cast<const typename F::Block*>(w);
    __m256 acc[kMax];
    for (int t = 0; t < nt; ++t) acc[t] = _mm256_setzero_ps();
    const float* act_d[kMax];
    for (int t = 0; t < nt; ++t)
      act_d[t] = reinterpret_cast<const float*>(act[t] + ActScalesOffset(nb, sizeof(BlockQ8_0)));
    for (int64_t i = 0; i < nb; ++i) {
      PrefetchWeights(x + i);
      const __m256i q = F::Levels(x[i]);
      const __m256i abs_q = _mm256_sign_epi8(q, q);
      const __m256 d = _mm256_set1_ps(F::Scale(x[i]));
      for (int t = 0; t < nt; ++t) {
        const BlockQ8_0& a = reinterpret_cast<const BlockQ8_0*>(act[t])[i];
        const __m256 sum = _mm256_cvtepi32_ps(DotS8S8(abs_q, q, LoadU256(a.qs)));
        const __m256 scale = _mm256_mul_ps(d, _mm256_broadcast_ss(act_d[t] + i));
        acc[t] = _mm256_fmadd_ps(scale, sum, acc[t]);
      }
    }
    for (int t = 0; t < nt; ++t) out[t] = HsumPs(acc[t]);
  }
};

// Unsigned levels with a min against Q8_1 activations.
template <typename F>
struct MinKernel {
  template <int kMax>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int n_tokens, int64_t nb,
                  float* out) {
    const int nt = TileTokens<kMax>(n_tokens);
    const auto* x = reinterpret_cast<const typename F::Block*>(w);
    __m256 acc[kMax];
    float acc_min[kMax];
    for (int t = 0; t < nt; ++t) {
      acc[t] = _mm256_setzero_ps();
      acc_min[t] = 0;
    }
    const float* act_d[kMax];
    for (int t = 0; t < nt; ++t)
      act_d[t] = reinterpret_cast<const float*>(act[t] + ActScalesOffset(nb, sizeof(BlockQ8_1)));
    for (int64_t i = 0; i < nb; ++i) {
      PrefetchWeights(x + i);
      const __m256i q = F::Levels(x[i]);
      const __m256 d = _mm256_set1_ps(F::Scale(x[i]));
      const float m = F::Min(x[i]);
      for (int t = 0; t < nt; ++t) {
        const BlockQ8_1& a = reinterpret_cast<const BlockQ8_1*>(act[t])[i];
        const __m256 sum = _mm256_cvtepi32_ps(DotU8S8(q, LoadU256(a.qs)));
        const __m256 scale = _mm256_mul_ps(d, _mm256_broadcast_ss(act_d[t] + i));
        acc[t] = _mm256_fmadd_ps(scale, sum, acc[t]);
        acc_min[t] += m * act_d[t][nb + i];  // s, stored after the nb d values
      }
    }
    for (int t = 0; t < nt; ++t) out[t] = HsumPs(acc[t]) + acc_min[t];
  }
};

template <typename Kernel>
void Rows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  TiledRows<Kernel, kMaxRegisterTile>(a, row_begin, row_end, a.cols / kQk);
}

// --- MatMul for the signed formats: row x token register tiles ----------------------------------
//
// TiledRows runs one row against 4 tokens: per block and token one activation load and the scale
// broadcast serve a single row. SignedTile runs kSTileRows rows against kSTileTokens tokens, so
// each decoded weight block serves 4 tokens and each activation block 2 rows, with all 8 float
// accumulators in registers for the whole row.
//
// Bit-exactness with MatVec (SignedKernel::Dot<1>): per (row, token) and block, the same integer
// dot, the same scale d_w * d_a, the same FMA into the same 8 lanes, and HsumPs at the end.

// Hot Q8_0 / Q4_0 MatMul of 32 tokens x 1024 x 4096 on one Zen 3 core, ns per block and token:
// 2x4 tiles 0.90 / 1.07, 3x3 0.90 / 1.11, 2x3 0.99 / 1.12, 1x4 1.00 / 1.14, 4x2 1.02 / 1.20,
// 3x2 1.08 / 1.24, 4x1 1.19 / 1.63 (TiledRows: 1.02 / 1.13; Q4_0 has used NibbleRows since). What
// remains per (row, token) and block is sign, maddubs, madd, cvt, mul and FMA: the vector
// multiply ports are busy.
inline constexpr int kSTileRows = 2;
inline constexpr int kSTileTokens = 4;

template <typename F, int NR, int NT>
void SignedTile(const uint8_t* const* w, const uint8_t* const* act, int64_t nb, float* out) {
  using Block = typename F::Block;
  const Block* x[NR];
  for (int r = 0; r < NR; ++r) x[r] = reinterpret_cast<const Block*>(w[r]);
  const float* act_d[NT];
  for (int t = 0; t < NT; ++t)
    act_d[t] = reinterpret_cast<const float*>(act[t] + ActScalesOffset(nb, sizeof(BlockQ8_0)));
  __m256 acc[NR][NT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) acc[r][t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    __m256i q[NR], abs_q[NR];
    __m256 d[NR];
    for (int r = 0; r < NR; ++r) {
      PrefetchWeights(x[r] + i);
      q[r] = F::Levels(x[r][i]);
      abs_q[r] = _mm256_sign_epi8(q[r], q[r]);
      d[r] = _mm256_set1_ps(F::Scale(x[r][i]));
    }
    for (int t = 0; t < NT; ++t) {
      const __m256i a = LoadU256(reinterpret_cast<const BlockQ8_0*>(act[t])[i].qs);
      const __m256 d_a = _mm256_broadcast_ss(act_d[t] + i);
      for (int r = 0; r < NR; ++r) {
        const __m256 sum = _mm256_cvtepi32_ps(DotS8S8(abs_q[r], q[r], a));
        acc[r][t] = _mm256_fmadd_ps(_mm256_mul_ps(d[r], d_a), sum, acc[r][t]);
      }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < NT; ++t) out[r * kSTileTokens + t] = HsumPs(acc[r][t]);
}

template <typename F, int NR>
void SignedTileTokens(int nt, const uint8_t* const* w, const uint8_t* const* act, int64_t nb,
                      float* out) {
  static_assert(kSTileTokens >= 1 && kSTileTokens <= 4, "the cases below cover 1..4 tokens");
  if constexpr (kSTileTokens >= 4) {
    if (nt == 4) return SignedTile<F, NR, 4>(w, act, nb, out);
  }
  if constexpr (kSTileTokens >= 3) {
    if (nt == 3) return SignedTile<F, NR, 3>(w, act, nb, out);
  }
  if constexpr (kSTileTokens >= 2) {
    if (nt == 2) return SignedTile<F, NR, 2>(w, act, nb, out);
  }
  SignedTile<F, NR, 1>(w, act, nb, out);
}

template <typename F>
void SignedTileRowsTokens(int nr, int nt, const uint8_t* const* w, const uint8_t* const* act,
                          int64_t nb, float* out) {
  static_assert(kSTileRows >= 1 && kSTileRows <= 4, "the cases below cover 1..4 rows");
  if constexpr (kSTileRows >= 4) {
    if (nr == 4) return SignedTileTokens<F, 4>(nt, w, act, nb, out);
  }
  if constexpr (kSTileRows >= 3) {
    if (nr == 3) return SignedTileTokens<F, 3>(nt, w, act, nb, out);
  }
  if constexpr (kSTileRows >= 2) {
    if (nr == 2) return SignedTileTokens<F, 2>(nt, w, act, nb, out);
  }
  SignedTileTokens<F, 1>(nt, w, act, nb, out);
}

template <typename F>
void SignedMatMulRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  const int64_t nb = a.cols / kQk;
  const uint8_t* w[kSTileRows];
  const uint8_t* act[kSTileTokens];
  float out[kSTileRows * kSTileTokens];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kSTileRows) {
    const int nr = row_end - r0 < kSTileRows ? static_cast<int>(row_end - r0) : kSTileRows;
    for (int r = 0; r < nr; ++r) w[r] = a.w + static_cast<uint64_t>(r0 + r) * a.w_row_bytes;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kSTileTokens) {
      const int nt =
          a.n_tokens - t0 < kSTileTokens ? static_cast<int>(a.n_tokens - t0) : kSTileTokens;
      for (int k = 0; k < nt; ++k) act[k] = a.act + static_cast<uint64_t>(t0 + k) * a.act_row_bytes;
      SignedTileRowsTokens<F>(nr, nt, w, act, nb, out);
      for (int r = 0; r < nr; ++r)
        for (int k = 0; k < nt; ++k)
          a.y[(t0 + k) * a.y_stride + r0 + r] = out[r * kSTileTokens + k];
    }
  }
}

// MatVec (one token) keeps SignedKernel::Dot<1> through TiledRows; MatMul uses SignedTile.
template <typename F>
void SignedRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  if (a.n_tokens == 1) {
    TiledRows<SignedKernel<F>, kMaxRegisterTile>(a, row_begin, row_end, a.cols / kQk);
  } else {
    SignedMatMulRows<F>(a, row_begin, row_end);
  }
}

// --- activation quantizers (byte-identical to core/quant/activation_quant.cc) --------------------

// Levels of one 32-float block with scale id, rounded half to even, packed to int8 in order.
__m256i QuantizeBlock(const float* x, float id, __m256i* sum32) {
  const __m256 mul = _mm256_set1_ps(id);
  __m256i v[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 scaled = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), mul);
    v[k] =
        _mm256_cvtps_epi32(_mm256_round_ps(scaled, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  *sum32 = _mm256_add_epi32(_mm256_add_epi32(v[0], v[1]), _mm256_add_epi32(v[2], v[3]));
  // packs work per 128-bit lane; the permute restores element order.
  const __m256i p16a = _mm256_packs_epi32(v[0], v[1]);
  const __m256i p16b = _mm256_packs_epi32(v[2], v[3]);
  const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
  return _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

float AbsMax32(const float* x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_andnot_ps(sign, _mm256_loadu_ps(x));
  for (int k = 1; k < 4; ++k)
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// Stores f as f16 and returns the stored value as f32.
float StoreF16(uint8_t* p, float f) {
  const uint16_t h = static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
  std::memcpy(p, &h, sizeof(h));
  return _cvtsh_ss(h);
}

void QuantizeQ8_0(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_0*>(dst);
  float* scales = reinterpret_cast<float*>(static_cast<uint8_t*>(dst) +
                                           ActScalesOffset(n / kQk, sizeof(BlockQ8_0)));
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    const float amax = AbsMax32(x);
    scales[i] = StoreF16(y[i].d, amax / 127.f);
    __m256i sum;
    const __m256i q = QuantizeBlock(x, amax != 0.0f ? 127.f / amax : 0.0f, &sum);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs), q);
    // The sum of the stored levels (not of the pre-pack lanes, which differ for NaN inputs).
    const int32_t total = HsumEpi32(
        _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1)));
    std::memcpy(scales + n / kQk + i, &total, sizeof(total));
  }
}

void QuantizeQ8_1(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_1*>(dst);
  float* scales = reinterpret_cast<float*>(static_cast<uint8_t*>(dst) +
                                           ActScalesOffset(n / kQk, sizeof(BlockQ8_1)));
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    const float amax = AbsMax32(x);
    const float d = amax / 127.f;
    scales[i] = StoreF16(y[i].d, d);
    __m256i sum;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs),
                        QuantizeBlock(x, amax != 0.0f ? 127.f / amax : 0.0f, &sum));
    scales[n / kQk + i] = StoreF16(y[i].s, d * static_cast<float>(HsumEpi32(sum)));
  }
}

void QuantizeQ8_K(const float* x, void* dst, int64_t n) {
  auto* y = static_cast<BlockQ8_K*>(dst);
  for (int64_t i = 0; i < n / kQkK; ++i, x += kQkK) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 32; ++k)
      m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    const float amax = _mm_cvtss_f32(h);
    if (amax == 0.0f) {
      y[i].d = 0;
      std::memset(y[i].qs, 0, sizeof(y[i].qs));
      std::memset(y[i].bsums, 0, sizeof(y[i].bsums));
      continue;
    }
    // The reference takes the sign of the first element of largest magnitude.
    float max = 0;
    const __m256 vamax = _mm256_set1_ps(amax);
    for (int k = 0; k < 32; ++k) {
      const __m256 v = _mm256_loadu_ps(x + 8 * k);
      const int hit =
          _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v), vamax, _CMP_EQ_OQ));
      if (hit != 0) {
        max = x[8 * k + __builtin_ctz(static_cast<unsigned>(hit))];
        break;
      }
    }
    const float iscale = -127.f / max;
    for (int b = 0; b < kQkK / kQk; ++b) {
      __m256i sum;
      const __m256i q = QuantizeBlock(x + kQk * b, iscale, &sum);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[i].qs + kQk * b), q);
      // Sums of each 16 levels: widen to int16 and add pairs down to one per 16.
      const __m256i w16 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q),
                                            _mm256_set1_epi16(1));  // 8 sums of 4
      const __m128i s4 = _mm256_castsi256_si128(w16);
      const __m128i s4h = _mm256_extracti128_si256(w16, 1);
      const __m128i lo = _mm_hadd_epi32(s4, s4);    // sums of 8: (0+1, 2+3, ...)
      const __m128i hi = _mm_hadd_epi32(s4h, s4h);  // elements 16..31
      y[i].bsums[2 * b] = static_cast<int16_t>(_mm_cvtsi128_si32(_mm_hadd_epi32(lo, lo)));
      y[i].bsums[2 * b + 1] = static_cast<int16_t>(_mm_cvtsi128_si32(_mm_hadd_epi32(hi, hi)));
    }
    y[i].d = 1 / iscale;
  }
}

// --- Q4_0, Q4_1: 8 rows interleaved, the scalar twin's float order -----------------------------
//
// As Q4_K (kquant_kernels_impl.h): vector k of a block holds, in dword l, row l's levels of
// elements 4k..4k+3, so one maddubs against the 4 activation bytes broadcast to every dword
// multiplies 8 rows. The levels are the unsigned nibbles n (Q4_1's levels; Q4_0's plus 8), so no
// sign trick is needed: the 8 maddubs of a block add up exactly in int16 (8 x 2 x 15 x 127 =
// 30480) and one madd gives each row's sum(n * a); for Q4_0 subtracting 8 * sum(a) gives the exact
// isum. The float step is the scalar twin's (scalar_kernels.cc), lane l = row l:
//   Q4_0: acc += (d_w * d_a) * float(isum)
//   Q4_1: acc += (d_w * d_a) * float(isum) + m_w * s_a
// so MatVec, MatMul and the scalar path give the same bits.

template <typename WBlock, typename ABlock, bool kMin>
struct Nibble8 {
  using Block = WBlock;
  using ActBlock = ABlock;
  static constexpr bool kHasMin = kMin;
};
using Q40Nibbles = Nibble8<BlockQ4_0, BlockQ8_0, false>;
using Q41Nibbles = Nibble8<BlockQ4_1, BlockQ8_1, true>;

inline constexpr int kNibbleRows = 8;
// Tokens per pass over 8 rows in MatMul (the block is re-decoded per pass, in registers). Hot
// 32-token Q4_0 MatMul 1024 x 4096 on one core: 4 tokens 10.7-11.0k tokens/s, 2 tokens 8.4-8.7k.
inline constexpr int kNibbleTokens = 4;

// 8 f16 fields (one per row) as 8 float lanes.
inline __m256 LoadF16x8(const uint8_t* const* fields) {
  uint16_t h[8];
  for (int l = 0; l < 8; ++l) std::memcpy(&h[l], fields[l], sizeof(uint16_t));
  return _mm256_cvtph_ps(_mm_setr_epi16(static_cast<int16_t>(h[0]), static_cast<int16_t>(h[1]),
                                        static_cast<int16_t>(h[2]), static_cast<int16_t>(h[3]),
                                        static_cast<int16_t>(h[4]), static_cast<int16_t>(h[5]),
                                        static_cast<int16_t>(h[6]), static_cast<int16_t>(h[7])));
}

// Levels of block i of the 8 rows: q[k] (k < 8), dword l = row l's nibbles of elements
// 4k..4k+3; d (and m) with lane l = row l.
template <typename F>
inline void DecodeNibbles8(const typename F::Block* const* rows, int64_t i, __m256i* q, __m256* d,
                           __m256* m) {
  __m256i r[4];
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm256_set_m128i(LoadU128(rows[j + 4][i].qs), LoadU128(rows[j][i].qs));
  }
  // Per 128-bit half (rows 0..3, rows 4..7): dword k of each row -> v[k].
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]);
  const __m256i t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]);
  const __m256i t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i v[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                        _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  for (int k = 0; k < 4; ++k) {
    q[k] = _mm256_and_si256(v[k], low4);                            // elements 4k..4k+3
    q[k + 4] = _mm256_and_si256(_mm256_srli_epi16(v[k], 4), low4);  // elements 16+4k..
  }
  const uint8_t* fields[8];
  for (int l = 0; l < 8; ++l) fields[l] = rows[l][i].d;
  *d = LoadF16x8(fields);
  if constexpr (F::kHasMin) {
    for (int l = 0; l < 8; ++l) fields[l] = rows[l][i].m;
    *m = LoadF16x8(fields);
  }
}

// One token's block against a decoded block of 8 rows: the float step.
template <typename F>
inline __m256 NibbleStep(__m256 acc, const __m256i* q, __m256 d, __m256 m,
                         const typename F::ActBlock& a, float d_a, float s_a, int32_t a_sum) {
  __m256i s16 = _mm256_setzero_si256();
  for (int k = 0; k < 8; ++k) {
    int32_t four;
    std::memcpy(&four, a.qs + 4 * k, sizeof(four));
    s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(q[k], _mm256_set1_epi32(four)));
  }
  const __m256i ones16 = _mm256_set1_epi16(1);
  __m256i isum = _mm256_madd_epi16(s16, ones16);
  if constexpr (!F::kHasMin) {  // Q4_0: levels are n - 8
    // sum(a) of the block: the quantizer stored it after the scales (kernel_table.h).
    isum = _mm256_sub_epi32(isum, _mm256_set1_epi32(a_sum * 8));
  }
  const __m256 p = _mm256_mul_ps(_mm256_mul_ps(d, _mm256_set1_ps(d_a)), _mm256_cvtepi32_ps(isum));
  if constexpr (F::kHasMin) {
    static_cast<void>(a_sum);
    return _mm256_add_ps(acc, _mm256_add_ps(p, _mm256_mul_ps(m, _mm256_set1_ps(s_a))));
  } else {
    static_cast<void>(m);
    static_cast<void>(s_a);
    return _mm256_add_ps(acc, p);
  }
}

template <typename F, int NT>
void NibbleTokens(const typename F::Block* const* rows, const uint8_t* const* act, int64_t nb,
                  const uint8_t* prefetch, __m256* out) {
  using Block = typename F::Block;
  // Q8_0 rows: nb f32 d after the blocks; Q8_1 rows: nb d, then nb s.
  const float* act_d[NT];
  for (int t = 0; t < NT; ++t) {
    act_d[t] =
        reinterpret_cast<const float*>(act[t] + ActScalesOffset(nb, sizeof(typename F::ActBlock)));
  }
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    // This block's share of the next 8 rows (contiguous): the hardware prefetcher follows a
    // block-by-block read of 8 rows poorly.
    for (int b = 0; b < kNibbleRows * static_cast<int>(sizeof(Block)); b += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(prefetch) + i * kNibbleRows * sizeof(Block) + b,
                   _MM_HINT_T0);
    }
    __m256i q[8];
    __m256 d, m = _mm256_setzero_ps();
    DecodeNibbles8<F>(rows, i, q, &d, &m);
    for (int t = 0; t < NT; ++t) {
      // Q8_1 rows carry s after the scales, Q8_0 rows the int32 block sums.
      const float s_a = F::kHasMin ? act_d[t][nb + i] : 0.0f;
      int32_t a_sum = 0;
      if constexpr (!F::kHasMin) std::memcpy(&a_sum, act_d[t] + nb + i, sizeof(a_sum));
      acc[t] =
          NibbleStep<F>(acc[t], q, d, m, reinterpret_cast<const typename F::ActBlock*>(act[t])[i],
                        act_d[t][i], s_a, a_sum);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = acc[t];
}

template <typename F>
void NibbleRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  using Block = typename F::Block;
  const int64_t nb = a.cols / kQk;
  const Block* rows[kNibbleRows];
  const uint8_t* act[kNibbleTokens];
  __m256 out[kNibbleTokens];
  alignas(32) float lanes[kNibbleRows];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kNibbleRows) {
    const int nr = static_cast<int>(row_end - r0 < kNibbleRows ? row_end - r0 : kNibbleRows);
    for (int l = 0; l < kNibbleRows; ++l) {  // a short tile repeats its last row
      const int64_t r = r0 + (l < nr ? l : nr - 1);
      rows[l] = reinterpret_cast<const Block*>(a.w + static_cast<uint64_t>(r) * a.w_row_bytes);
    }
    const uint8_t* next = a.w + static_cast<uint64_t>(r0 + kNibbleRows) * a.w_row_bytes;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kNibbleTokens) {
      const int nt =
          static_cast<int>(a.n_tokens - t0 < kNibbleTokens ? a.n_tokens - t0 : kNibbleTokens);
      for (int k = 0; k < nt; ++k) act[k] = a.act + static_cast<uint64_t>(t0 + k) * a.act_row_bytes;
      static_assert(kNibbleTokens == 4, "the cases below cover 1..4 tokens");
      switch (nt) {
        case 4:
          NibbleTokens<F, 4>(rows, act, nb, next, out);
          break;
        case 3:
          NibbleTokens<F, 3>(rows, act, nb, next, out);
          break;
        case 2:
          NibbleTokens<F, 2>(rows, act, nb, next, out);
          break;
        default:
          NibbleTokens<F, 1>(rows, act, nb, next, out);
          break;
      }
      for (int k = 0; k < nt; ++k) {
        _mm256_store_ps(lanes, out[k]);
        for (int l = 0; l < nr; ++l) a.y[(t0 + k) * a.y_stride + r0 + l] = lanes[l];
      }
    }
  }
}

constexpr int Id(GgmlType t) { return static_cast<int>(t); }

void FillTable(KernelTable* t) {
  t->rows[Id(GgmlType::kQ8_0)] = SignedRows<Q8_0Format>;
  t->rows[Id(GgmlType::kQ4_0)] = NibbleRows<Q40Nibbles>;
  t->rows[Id(GgmlType::kQ5_0)] = SignedRows<Q5_0Format>;
  t->rows[Id(GgmlType::kIQ4_NL)] = SignedRows<Iq4NlFormat>;
  t->rows[Id(GgmlType::kMXFP4)] = SignedRows<Mxfp4Format>;
  t->rows[Id(GgmlType::kQ4_1)] = NibbleRows<Q41Nibbles>;
  t->rows[Id(GgmlType::kQ5_1)] = Rows<MinKernel<Q5_1Format>>;
  t->quantize_q8_0 = QuantizeQ8_0;
  t->quantize_q8_1 = QuantizeQ8_1;
  t->quantize_q8_k = QuantizeQ8_K;
}

}  // namespace
}  // namespace sluice
