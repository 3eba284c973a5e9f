// AVX-512 VNNI kernels for the signed 32-element formats (Q8_0, Q4_0, Q5_0, IQ4_NL, MXFP4 against
// Q8_0 activations): 16 weight rows interleaved into the 16 int32 lanes of a zmm, MatVec and MatMul
// alike, giving the scalar twin's bits (scalar_kernels.cc).
//
// Why: the 256-bit kernels (q8_kernels_impl.h) spend, per (row, token) and block, one vector of 8
// partial sums and a float step on all 8 lanes (sign, dot, convert, multiply, FMA), which keeps
// prompt-sized MatMul of Q8_0 at a third of Q4_K's speed. Here vector k of a block holds, in dword
// l, row l's levels 4k..4k+3 (a 16 x 8 dword transpose per block, shared by every token of a
// pass), so per token 8 vpdpbusd against the 4 activation bytes broadcast to every dword give the
// 16 rows' exact block sums, and one float step serves 16 rows.
//
// vpdpbusd multiplies unsigned by signed bytes, so the weights enter as level + offset (Q8_0,
// IQ4_NL, MXFP4: + 128; Q4_0: the raw nibble, + 8; Q5_0: the raw 5-bit value, + 16), and each
// token's block sum (stored by the activation quantizer, kernel_table.h) times the offset starts
// the accumulation negated: isum = sum((level + offset) * a) - offset * sum(a), exact in int32.
// The float step is the scalar twin's, lane l = row l: acc += (d_w * d_a) * float(isum) (multiply,
// multiply, add; no FMA), so MatVec, MatMul, any row range and the scalar path give the same bits.
//
// Rules of per-ISA files: kernel_table.h. Thread-safety: pure functions.

// GCC 12 reports the _mm512_undefined_* pass-through operands inside avx512fintrin.h's unmasked
// intrinsics as "may be used uninitialized" (a false positive, fixed in later GCC); the pragma has
// to precede the header for its locations to be covered.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/kernels/kernel_table.h"
#include "core/kernels/simd_avx2.h"
#include "core/kernels/simd_avx512.h"
#include "core/quant/blocks.h"
#include "core/quant/fp16.h"

namespace sluice {
namespace {

// --- formats: Levels() = the 32 levels + (1 << kShift), unsigned, in element order -------------

// The raw bits of an f16 scale field at any alignment.
inline uint16_t F16Bits(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return h;
}

struct Q8_0U {
  using Block = BlockQ8_0;
  static constexpr int kShift = 7;
  static constexpr bool kF16Scale = true;
  static __m256i Levels(const Block& b) {
    return _mm256_xor_si256(LoadU256(b.qs), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  static uint16_t ScaleBits(const Block& b) { return F16Bits(b.d); }
};

struct Q4_0U {
  using Block = BlockQ4_0;
  static constexpr int kShift = 3;
  static constexpr bool kF16Scale = true;
  static __m256i Levels(const Block& b) { return UnpackNibbles16(b.qs); }
  static uint16_t ScaleBits(const Block& b) { return F16Bits(b.d); }
};

struct Q5_0U {
  using Block = BlockQ5_0;
  static constexpr int kShift = 4;
  static constexpr bool kF16Scale = true;
  static __m256i Levels(const Block& b) {
    uint32_t qh;
    std::memcpy(&qh, b.qh, sizeof(qh));
    const __m256i high = _mm256_and_si256(BitsToBytes(qh), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(UnpackNibbles16(b.qs), high);
  }
  static uint16_t ScaleBits(const Block& b) { return F16Bits(b.d); }
};

// A 16-entry table of signed levels shifted by 128 (as unsigned bytes) in both 128-bit lanes.
inline __m256i ShiftedTable(const int8_t* values) {
  return _mm256_xor_si256(_mm256_broadcastsi128_si256(LoadU128(values)),
                          _mm256_set1_epi8(static_cast<char>(0x80)));
}

struct Iq4NlU {
  using Block = BlockIq4Nl;
  static constexpr int kShift = 7;
  static constexpr bool kF16Scale = true;
  static __m256i Levels(const Block& b) {
    return _mm256_shuffle_epi8(ShiftedTable(kIq4nlValues), UnpackNibbles16(b.qs));
  }
  static uint16_t ScaleBits(const Block& b) { return F16Bits(b.d); }
};

struct Mxfp4U {
  using Block = BlockMxfp4;
  static constexpr int kShift = 7;
  static constexpr bool kF16Scale = false;
  static __m256i Levels(const Block& b) {
    return _mm256_shuffle_epi8(ShiftedTable(kMxfp4Values), UnpackNibbles16(b.qs));
  }
  static float Scale(const Block& b) { return E8m0ToFp32Half(b.e); }
};

inline constexpr int kRows = kTileRows16;
// Tokens per pass over a 16-row tile (the tile is re-decoded per pass, in registers): 8 tokens x
// 8 dots keep the decode (~45 instructions per block) under a fifth of the pass.
inline constexpr int kTokens = 8;

// Block i of 16 rows: v[k] (k < 8), dword l = row l's unsigned levels 4k..4k+3; d lane l = row l.
template <typename F>
inline void DecodeTile(const typename F::Block* const* rows, int64_t i, __m512i* v, __m512* d) {
  __m256i rows16[kRows];
  for (int l = 0; l < kRows; ++l) rows16[l] = F::Levels(rows[l][i]);
  Transpose16x8(rows16, v);
  if constexpr (F::kF16Scale) {
    alignas(32) uint16_t h[kRows];
    for (int l = 0; l < kRows; ++l) h[l] = F::ScaleBits(rows[l][i]);
    *d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(h)));
  } else {
    alignas(64) float s[kRows];
    for (int l = 0; l < kRows; ++l) s[l] = F::Scale(rows[l][i]);
    *d = _mm512_load_ps(s);
  }
}

// One token's activation row: blocks, f32 scales, int32 block sums (kernel_table.h).
struct ActRow {
  const BlockQ8_0* blocks;
  const float* d;
  const int32_t* sum;
};

template <typename F, int NT>
void TileTokens(const typename F::Block* const* rows, const ActRow* act, int64_t nb,
                const uint8_t* prefetch, __m512* out) {
  using Block = typename F::Block;
  __m512 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t i = 0; i < nb; ++i) {
    PrefetchNextTile(prefetch, i, sizeof(Block));
    __m512i v[8];
    __m512 d;
    DecodeTile<F>(rows, i, v, &d);
    for (int t = 0; t < NT; ++t) {
      const int8_t* qs = act[t].blocks[i].qs;
      __m512i isum = _mm512_set1_epi32(-(act[t].sum[i] << F::kShift));
      for (int k = 0; k < 8; ++k) {
        int32_t four;
        std::memcpy(&four, qs + 4 * k, sizeof(four));
        isum = _mm512_dpbusd_epi32(isum, v[k], _mm512_set1_epi32(four));
      }
      const __m512 scale = _mm512_mul_ps(d, _mm512_set1_ps(act[t].d[i]));
      acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(scale, _mm512_cvtepi32_ps(isum)));
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = acc[t];
}

template <typename F>
void RunTokens(int nt, const typename F::Block* const* rows, const ActRow* act, int64_t nb,
               const uint8_t* prefetch, __m512* out) {
  static_assert(kTokens == 8, "the cases below cover 1..8 tokens");
  switch (nt) {
    case 8:
      return TileTokens<F, 8>(rows, act, nb, prefetch, out);
    case 7:
      return TileTokens<F, 7>(rows, act, nb, prefetch, out);
    case 6:
      return TileTokens<F, 6>(rows, act, nb, prefetch, out);
    case 5:
      return TileTokens<F, 5>(rows, act, nb, prefetch, out);
    case 4:
      return TileTokens<F, 4>(rows, act, nb, prefetch, out);
    case 3:
      return TileTokens<F, 3>(rows, act, nb, prefetch, out);
    case 2:
      return TileTokens<F, 2>(rows, act, nb, prefetch, out);
    default:
      return TileTokens<F, 1>(rows, act, nb, prefetch, out);
  }
}

template <typename F>
void Block32Rows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  using Block = typename F::Block;
  const int64_t nb = a.cols / kQk;
  const uint64_t scales_offset = ActScalesOffset(nb, sizeof(BlockQ8_0));
  const Block* rows[kRows];
  ActRow act[kTokens];
  __m512 out[kTokens];
  alignas(64) float lanes[kRows];
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kRows) {
    const int nr = static_cast<int>(row_end - r0 < kRows ? row_end - r0 : kRows);
    for (int l = 0; l < kRows; ++l) {  // a short tile repeats its last row
      const int64_t r = r0 + (l < nr ? l : nr - 1);
      rows[l] = reinterpret_cast<const Block*>(a.w + static_cast<uint64_t>(r) * a.w_row_bytes);
    }
    const uint8_t* next = a.w + static_cast<uint64_t>(r0 + kRows) * a.w_row_bytes;
    for (int64_t t0 = 0; t0 < a.n_tokens; t0 += kTokens) {
      const int nt = static_cast<int>(a.n_tokens - t0 < kTokens ? a.n_tokens - t0 : kTokens);
      for (int k = 0; k < nt; ++k) {
        const uint8_t* row = a.act + static_cast<uint64_t>(t0 + k) * a.act_row_bytes;
        act[k].blocks = reinterpret_cast<const BlockQ8_0*>(row);
        act[k].d = reinterpret_cast<const float*>(row + scales_offset);
        act[k].sum = reinterpret_cast<const int32_t*>(row + scales_offset + nb * sizeof(float));
      }
      RunTokens<F>(nt, rows, act, nb, next, out);
      for (int k = 0; k < nt; ++k) {
        _mm512_store_ps(lanes, out[k]);
        for (int l = 0; l < nr; ++l) a.y[(t0 + k) * a.y_stride + r0 + l] = lanes[l];
      }
    }
  }
}

constexpr int Id(GgmlType t) { return static_cast<int>(t); }

}  // namespace

void FillAvx512Block32Kernels(KernelTable* t) {
  t->rows[Id(GgmlType::kQ8_0)] = Block32Rows<Q8_0U>;
  t->rows[Id(GgmlType::kQ4_0)] = Block32Rows<Q4_0U>;
  t->rows[Id(GgmlType::kQ5_0)] = Block32Rows<Q5_0U>;
  t->rows[Id(GgmlType::kIQ4_NL)] = Block32Rows<Iq4NlU>;
  t->rows[Id(GgmlType::kMXFP4)] = Block32Rows<Mxfp4U>;
}

}  // namespace sluice
