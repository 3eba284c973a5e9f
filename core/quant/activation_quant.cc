// Activation quantizers, matching what GGUF engines run on x86 inside a matmul (not the producer
// quantizers of legacy_quants.cc): Q8_0 and Q8_1 use id = 127 / amax and round half to even
// (vroundps), which is what llama.cpp's AVX/AVX2/AVX-512 builds do. The reference logits in
// ../shared/refdata come from such a build, so these choices keep sluice on the same numbers.
// The SIMD twins in core/kernels/*_avx2.cc / *_avx512.cc must produce identical bytes (tested).
#include <cmath>

#include "core/base/check.h"
#include "core/quant/fp16.h"
#include "core/quant/quantize.h"

namespace sluice {
namespace {

// Scale and inverse scale of a 32-element activation block.
void ActScale(const float* x, float* d, float* id) {
  float amax = 0.0f;
  for (int j = 0; j < kQk; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  *d = amax / 127.f;
  *id = amax != 0.0f ? 127.f / amax : 0.0f;
}

}  // namespace

void QuantizeActQ8_0(const float* x, BlockQ8_0* y, int64_t n) {
  CHECK_EQ(n % kQk, 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float d, id;
    ActScale(x, &d, &id);
    StoreFp16(y[i].d, d);
    // nearbyint rounds half to even in the default rounding mode, like vroundps imm 0.
    for (int j = 0; j < kQk; ++j) y[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
  }
}

void QuantizeActQ8_1(const float* x, BlockQ8_1* y, int64_t n) {
  CHECK_EQ(n % kQk, 0);
  for (int64_t i = 0; i < n / kQk; ++i, x += kQk) {
    float d, id;
    ActScale(x, &d, &id);
    StoreFp16(y[i].d, d);
    int sum = 0;
    for (int j = 0; j < kQk; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += y[i].qs[j];
    }
    StoreFp16(y[i].s, d * static_cast<float>(sum));
  }
}

}  // namespace sluice
