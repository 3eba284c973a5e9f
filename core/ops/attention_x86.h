// Helpers shared by the x86 attention loops (attention_avx2.cc, attention_avx512.cc). Include only
// from files compiled with AVX2 + F16C or more; internal linkage (an inline function with external
// linkage compiled with AVX-512 flags could be the copy the linker keeps for the AVX2 path).
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace sluice::attention_simd {
namespace {

// Sum of the 8 lanes, always in the same order: (lo128 + hi128), then pairs, then the last two.
inline float HorizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 LoadHalf8(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

}  // namespace
}  // namespace sluice::attention_simd
