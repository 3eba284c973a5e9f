// Kernels for float weights (F32, F16, BF16) against f32 activations, written once and compiled
// twice: float_avx2.cc and float_avx512.cc. Include only from those two files.
//
// Per row and token: two 8-lane FMA accumulators over 16 elements per step (the weights are
// converted to f32 once per step and shared by the tile's tokens), then the lanes are summed;
// a row length that is not a multiple of 16 finishes with a scalar tail (w * x, then add).
#pragma once

#include "core/base/ggml_type.h"
#include "core/kernels/simd_avx2.h"
#include "core/quant/fp16.h"

namespace sluice {
namespace {

constexpr int kTile = 4;

struct F32Weights {
  static __m256 Load8(const uint8_t* w, int64_t i) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i);
  }
  static float Load1(const uint8_t* w, int64_t i) {
    float f;
    std::memcpy(&f, w + 4 * i, sizeof(f));
    return f;
  }
};

struct F16Weights {
  static __m256 Load8(const uint8_t* w, int64_t i) { return _mm256_cvtph_ps(LoadU128(w + 2 * i)); }
  static float Load1(const uint8_t* w, int64_t i) { return LoadF16(w + 2 * i); }
};

struct Bf16Weights {
  static __m256 Load8(const uint8_t* w, int64_t i) {
    const __m256i wide = _mm256_cvtepu16_epi32(LoadU128(w + 2 * i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static float Load1(const uint8_t* w, int64_t i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, sizeof(h));
    return Bf16ToFp32(h);
  }
};

template <typename W>
struct FloatKernel {
  template <int nt>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int, int64_t cols, float* out) {
    const float* x[nt];
    __m256 acc0[nt], acc1[nt];
    for (int t = 0; t < nt; ++t) {
      x[t] = reinterpret_cast<const float*>(act[t]);
      acc0[t] = acc1[t] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 16 <= cols; i += 16) {
      const __m256 w0 = W::Load8(w, i);
      const __m256 w1 = W::Load8(w, i + 8);
      for (int t = 0; t < nt; ++t) {
        acc0[t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x[t] + i), acc0[t]);
        acc1[t] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x[t] + i + 8), acc1[t]);
      }
    }
    for (int t = 0; t < nt; ++t) {
      float tail = 0;
      for (int64_t j = i; j < cols; ++j) tail += W::Load1(w, j) * x[t][j];
      out[t] = HsumPs(_mm256_add_ps(acc0[t], acc1[t])) + tail;
    }
  }
};

template <typename Kernel>
void Rows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  TiledRows<Kernel, kTile>(a, row_begin, row_end, a.cols);
}

constexpr int Id(GgmlType t) { return static_cast<int>(t); }

void FillTable(KernelTable* t) {
  t->rows[Id(GgmlType::kF32)] = Rows<FloatKernel<F32Weights>>;
  t->rows[Id(GgmlType::kF16)] = Rows<FloatKernel<F16Weights>>;
  t->rows[Id(GgmlType::kBF16)] = Rows<FloatKernel<Bf16Weights>>;
}

}  // namespace
}  // namespace sluice
