// The inner loops of attention (q.k dot products and the weighted sum of v rows), per ISA.
// attention.cc picks the AVX2 twins when the kernels' active ISA (core/kernels/dispatch.h) is not
// scalar; the scalar versions are the reference they are tested against (ops_attention_test).
// A profile of decoding at ~200 positions showed the scalar f16 loops at 17% of the time, as
// much as all the Q4_K matmuls, hence the vector path.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

namespace sluice::attention_simd {

struct Kernels {
  float (*dot_f32)(const float* q, const float* k, int n);
  float (*dot_f16)(const float* q, const uint16_t* k, int n);
  void (*axpy_f32)(float w, const float* v, float* out, int n);  // out += w * v
  void (*axpy_f16)(float w, const uint16_t* v, float* out, int n);
  // The query heads that share a kv head, one k row at a time: out[h] = dot_f16(q + h * q_stride,
  // k, n) for h < heads, bit for bit (each k chunk is loaded and converted once for all heads).
  void (*dot_f16_heads)(const float* q, int64_t q_stride, int heads, const uint16_t* k, int n,
                        float* out);
  // out[h][0..n) = sum over p < n_kv, in order, of w[h][p] * v[p][0..n), starting from zero:
  // the sequence of axpy_f16(w[h * w_stride + p], v + p * v_row, out + h * out_stride, n) calls
  // on a zeroed out, bit for bit, with the partial sums in registers instead of memory.
  void (*weighted_sum_f16)(const float* w, int64_t w_stride, int heads, const uint16_t* v,
                           int64_t v_row, int64_t n_kv, float* out, int64_t out_stride, int n);
};

const Kernels& ScalarKernels();
#if defined(__x86_64__)
const Kernels& Avx2Kernels();    // defined in attention_avx2.cc (AVX2 + FMA + F16C)
const Kernels& Avx512Kernels();  // attention_avx512.cc: the AVX2 twins' bits, 16 lanes
#endif

}  // namespace sluice::attention_simd
