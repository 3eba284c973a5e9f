// AVX2 + FMA + F16C twins of the attention loops (attention_simd.h). Compiled with -mavx2 -mfma
// -mf16c (core/CMakeLists.txt); only reached when the CPU supports them.
#include <immintrin.h>

#include "core/ops/attention_simd.h"
#include "core/ops/attention_x86.h"

namespace sluice::attention_simd {
namespace {

float DotF32(const float* q, const float* k, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(k + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8)
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
  float sum = HorizontalSum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) sum += q[i] * k[i];
  return sum;
}

float DotF16(const float* q, const uint16_t* k, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadHalf8(k + i), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), LoadHalf8(k + i + 8), a1);
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), LoadHalf8(k + i), a0);
  float sum = HorizontalSum(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) sum += q[i] * _cvtsh_ss(k[i]);
  return sum;
}

void AxpyF32(float w, const float* v, float* out, int n) {
  const __m256 wv = _mm256_set1_ps(w);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i,
                     _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(out + i)));
  }
  for (; i < n; ++i) out[i] += w * v[i];
}

void AxpyF16(float w, const uint16_t* v, float* out, int n) {
  const __m256 wv = _mm256_set1_ps(w);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(wv, LoadHalf8(v + i), _mm256_loadu_ps(out + i)));
  }
  for (; i < n; ++i) out[i] += w * _cvtsh_ss(v[i]);
}

// DotF16 for up to 4 heads at once: the same two partial sums per head, the same chunking and
// tails, so each head's result has DotF16's bits; k is loaded and converted once per chunk.
template <int H>
void DotF16Block(const float* q, int64_t q_stride, const uint16_t* k, int n, float* out) {
  __m256 a0[H], a1[H];
  for (int h = 0; h < H; ++h) a0[h] = a1[h] = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 k0 = LoadHalf8(k + i), k1 = LoadHalf8(k + i + 8);
    for (int h = 0; h < H; ++h) {
      a0[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * q_stride + i), k0, a0[h]);
      a1[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * q_stride + i + 8), k1, a1[h]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 k0 = LoadHalf8(k + i);
    for (int h = 0; h < H; ++h) {
      a0[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * q_stride + i), k0, a0[h]);
    }
  }
  for (int h = 0; h < H; ++h) {
    float sum = HorizontalSum(_mm256_add_ps(a0[h], a1[h]));
    for (int j = i; j < n; ++j) sum += q[h * q_stride + j] * _cvtsh_ss(k[j]);
    out[h] = sum;
  }
}

void DotF16Heads(const float* q, int64_t q_stride, int heads, const uint16_t* k, int n,
                 float* out) {
  int h = 0;
  for (; h + 4 <= heads; h += 4) DotF16Block<4>(q + h * q_stride, q_stride, k, n, out + h);
  switch (heads - h) {
    case 3:
      return DotF16Block<3>(q + h * q_stride, q_stride, k, n, out + h);
    case 2:
      return DotF16Block<2>(q + h * q_stride, q_stride, k, n, out + h);
    case 1:
      return DotF16Block<1>(q + h * q_stride, q_stride, k, n, out + h);
    default:
      return;
  }
}

// AxpyF16's sequence for H heads and 16 output elements at a time, the partial sums kept in
// registers across all the positions: per element out = fma(w, v, out) in position order from 0,
// as repeated AxpyF16 calls do through memory.
template <int H>
void WeightedSumBlock(const float* w, int64_t w_stride, const uint16_t* v, int64_t v_row,
                      int64_t n_kv, float* out, int64_t out_stride, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 a0[H], a1[H];
    for (int h = 0; h < H; ++h) a0[h] = a1[h] = _mm256_setzero_ps();
    for (int64_t p = 0; p < n_kv; ++p) {
      const __m256 v0 = LoadHalf8(v + p * v_row + i), v1 = LoadHalf8(v + p * v_row + i + 8);
      for (int h = 0; h < H; ++h) {
        const __m256 wv = _mm256_set1_ps(w[h * w_stride + p]);
        a0[h] = _mm256_fmadd_ps(wv, v0, a0[h]);
        a1[h] = _mm256_fmadd_ps(wv, v1, a1[h]);
      }
    }
    for (int h = 0; h < H; ++h) {
      _mm256_storeu_ps(out + h * out_stride + i, a0[h]);
      _mm256_storeu_ps(out + h * out_stride + i + 8, a1[h]);
    }
  }
  for (; i + 8 <= n; i += 8) {
    __m256 a0[H];
    for (int h = 0; h < H; ++h) a0[h] = _mm256_setzero_ps();
    for (int64_t p = 0; p < n_kv; ++p) {
      const __m256 v0 = LoadHalf8(v + p * v_row + i);
      for (int h = 0; h < H; ++h) {
        a0[h] = _mm256_fmadd_ps(_mm256_set1_ps(w[h * w_stride + p]), v0, a0[h]);
      }
    }
    for (int h = 0; h < H; ++h) _mm256_storeu_ps(out + h * out_stride + i, a0[h]);
  }
  for (; i < n; ++i) {
    for (int h = 0; h < H; ++h) {
      float o = 0;
      for (int64_t p = 0; p < n_kv; ++p) o += w[h * w_stride + p] * _cvtsh_ss(v[p * v_row + i]);
      out[h * out_stride + i] = o;
    }
  }
}

void WeightedSumF16(const float* w, int64_t w_stride, int heads, const uint16_t* v, int64_t v_row,
                    int64_t n_kv, float* out, int64_t out_stride, int n) {
  int h = 0;
  for (; h + 4 <= heads; h += 4) {
    WeightedSumBlock<4>(w + h * w_stride, w_stride, v, v_row, n_kv, out + h * out_stride,
                        out_stride, n);
  }
  switch (heads - h) {
    case 3:
      return WeightedSumBlock<3>(w + h * w_stride, w_stride, v, v_row, n_kv, out + h * out_stride,
                                 out_stride, n);
    case 2:
      return WeightedSumBlock<2>(w + h * w_stride, w_stride, v, v_row, n_kv, out + h * out_stride,
                                 out_stride, n);
    case 1:
      return WeightedSumBlock<1>(w + h * w_stride, w_stride, v, v_row, n_kv, out + h * out_stride,
                                 out_stride, n);
    default:
      return;
  }
}

}  // namespace

const Kernels& Avx2Kernels() {
  static const Kernels k{&DotF32, &DotF16, &AxpyF32, &AxpyF16, &DotF16Heads, &WeightedSumF16};
  return k;
}

}  // namespace sluice::attention_simd
