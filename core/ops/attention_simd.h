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
};

const Kernels& ScalarKernels();
#if defined(__x86_64__)
const Kernels& Avx2Kernels();  // defined in attention_avx2.cc (AVX2 + FMA + F16C)
#endif

}  // namespace sluice::attention_simd
