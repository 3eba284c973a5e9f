// AVX2 + FMA + F16C twins of the attention loops (attention_simd.h). Compiled with -mavx2 -mfma
// -mf16c (core/CMakeLists.txt); only reached when the CPU supports them.
#include <immintrin.h>

#include "core/ops/attention_simd.h"

namespace sluice::attention_simd {
namespace {

inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 LoadHalf8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

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

}  // namespace

const Kernels& Avx2Kernels() {
  static const Kernels k{&DotF32, &DotF16, &AxpyF32, &AxpyF16};
  return k;
}

}  // namespace sluice::attention_simd
