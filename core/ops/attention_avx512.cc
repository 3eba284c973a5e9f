// AVX-512 twins of the f16 attention loops (attention_simd.h), giving the AVX2 twins' bits: those
// keep two 8-lane partial sums (a0 for elements 16j..16j+7, a1 for 16j+8..16j+15), which is
// exactly one 16-lane vector (a0 in the low half, a1 in the high half), so a zmm loop does the
// same arithmetic in half the instructions; the 8-element tail and the final sum run as in
// attention_avx2.cc. Compiled with the AVX-512 flags (core/CMakeLists.txt); only reached when the
// kernels' active ISA is avx512. Thread-safety: pure functions.

// GCC 12's false "may be used uninitialized" on avx512fintrin.h's pass-through operands (see
// core/kernels/block32_avx512.cc): the pragma has to precede the header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include "core/ops/attention_simd.h"
#include "core/ops/attention_x86.h"

namespace sluice::attention_simd {
namespace {

inline __m512 LoadHalf16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
template <int H>
void DotF16Block(const float* q, int64_t q_stride, const uint16_t* k, int n, float* out) {
  __m512 acc[H];
  for (int h = 0; h < H; ++h) acc[h] = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 kv = LoadHalf16(k + i);
    for (int h = 0; h < H; ++h) {
      acc[h] = _mm512_fmadd_ps(_mm512_loadu_ps(q + h * q_stride + i), kv, acc[h]);
    }
  }
  for (int h = 0; h < H; ++h) {
    __m256 a0 = _mm512_castps512_ps256(acc[h]);
    const __m256 a1 = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[h]), 1));
    int j = i;
    for (; j + 8 <= n; j += 8) {
      a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * q_stride + j), LoadHalf8(k + j), a0);
    }
    float sum = HorizontalSum(_mm256_add_ps(a0, a1));
    for (; j < n; ++j) sum += q[h * q_stride + j] * _cvtsh_ss(k[j]);
    out[h] = sum;
  }
}

float DotF16(const float* q, const uint16_t* k, int n) {
  float out;
  DotF16Block<1>(q, 0, k, n, &out);
  return out;
}

void DotF16Heads(const float* q, int64_t q_stride, int heads, const uint16_t* k, int n,
                 float* out) {
  int h = 0;
  for (; h + 8 <= heads; h += 8) DotF16Block<8>(q + h * q_stride, q_stride, k, n, out + h);
  for (; h + 4 <= heads; h += 4) DotF16Block<4>(q + h * q_stride, q_stride, k, n, out + h);
  for (; h < heads; ++h) DotF16Block<1>(q + h * q_stride, q_stride, k, n, out + h);
}

// AxpyF16's sequence for H heads and the first n16 (a multiple of 16) output elements: a zmm
// holds the AVX2 twin's two 8-lane partial sums.
template <int H>
void WeightedSumBlock(const float* w, int64_t w_stride, const uint16_t* v, int64_t v_row,
                      int64_t n_kv, float* out, int64_t out_stride, int n16) {
  for (int i = 0; i < n16; i += 16) {
    __m512 acc[H];
    for (int h = 0; h < H; ++h) acc[h] = _mm512_setzero_ps();
    for (int64_t p = 0; p < n_kv; ++p) {
      const __m512 vv = LoadHalf16(v + p * v_row + i);
      for (int h = 0; h < H; ++h) {
        acc[h] = _mm512_fmadd_ps(_mm512_set1_ps(w[h * w_stride + p]), vv, acc[h]);
      }
    }
    for (int h = 0; h < H; ++h) _mm512_storeu_ps(out + h * out_stride + i, acc[h]);
  }
}

void WeightedSumF16(const float* w, int64_t w_stride, int heads, const uint16_t* v, int64_t v_row,
                    int64_t n_kv, float* out, int64_t out_stride, int n) {
  const int n16 = n / 16 * 16;
  int h = 0;
  for (; h + 8 <= heads; h += 8) {
    WeightedSumBlock<8>(w + h * w_stride, w_stride, v, v_row, n_kv, out + h * out_stride,
                        out_stride, n16);
  }
  for (; h + 4 <= heads; h += 4) {
    WeightedSumBlock<4>(w + h * w_stride, w_stride, v, v_row, n_kv, out + h * out_stride,
                        out_stride, n16);
  }
  for (; h < heads; ++h) {
    WeightedSumBlock<1>(w + h * w_stride, w_stride, v, v_row, n_kv, out + h * out_stride,
                        out_stride, n16);
  }
  // The last n % 16 elements: the AVX2 twin runs them as its own tail (8-lane, then scalar).
  if (n16 < n) {
    Avx2Kernels().weighted_sum_f16(w, w_stride, heads, v + n16, v_row, n_kv, out + n16, out_stride,
                                   n - n16);
  }
}

}  // namespace

const Kernels& Avx512Kernels() {
  static const Kernels k = [] {
    Kernels t = Avx2Kernels();  // the f32 loops and the single-row axpy stay 256-bit
    t.dot_f16 = &DotF16;
    t.dot_f16_heads = &DotF16Heads;
    t.weighted_sum_f16 = &WeightedSumF16;
    return t;
  }();
  return k;
}

}  // namespace sluice::attention_simd
