// Per-format quantizers and dequantizers on GGUF blocks (core/quant/blocks.h), scalar.
//
// Quantize*: f32 -> blocks with the reference rounding GGUF producers use when no importance
// matrix is given (same arithmetic, same order, so the bytes match theirs). Dequantize*: blocks ->
// f32 with the same operation order as GGUF's reference decoders, so a dequantized tensor is
// bit-identical to theirs. n (elements) is always a whole number of blocks.
// QuantizeAct*: the activation quantizers GGUF engines run inside matmuls on x86 (they differ
// from the producer ones: Q8_0/Q8_1 scale by 127/amax and round half to even).
//
// Callers normally go through QuantizeRow / DequantizeRow (core/kernels/matmul.h).
// Non-goals: importance-matrix (imatrix) quantization.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "core/base/ggml_type.h"
#include "core/quant/blocks.h"

namespace sluice {

// 32-element formats (core/quant/legacy_quants.cc).
void QuantizeQ4_0(const float* x, BlockQ4_0* y, int64_t n);
void QuantizeQ4_1(const float* x, BlockQ4_1* y, int64_t n);
void QuantizeQ5_0(const float* x, BlockQ5_0* y, int64_t n);
void QuantizeQ5_1(const float* x, BlockQ5_1* y, int64_t n);
void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeQ8_1(const float* x, BlockQ8_1* y, int64_t n);
void DequantizeQ4_0(const BlockQ4_0* x, float* y, int64_t n);
void DequantizeQ4_1(const BlockQ4_1* x, float* y, int64_t n);
void DequantizeQ5_0(const BlockQ5_0* x, float* y, int64_t n);
void DequantizeQ5_1(const BlockQ5_1* x, float* y, int64_t n);
void DequantizeQ8_0(const BlockQ8_0* x, float* y, int64_t n);
void DequantizeQ8_1(const BlockQ8_1* x, float* y, int64_t n);

// K-quants (core/quant/kquants.cc, core/quant/kquants_low.cc).
void QuantizeQ2_K(const float* x, BlockQ2_K* y, int64_t n);
void QuantizeQ3_K(const float* x, BlockQ3_K* y, int64_t n);
void QuantizeQ4_K(const float* x, BlockQ4_K* y, int64_t n);
void QuantizeQ5_K(const float* x, BlockQ5_K* y, int64_t n);
void QuantizeQ6_K(const float* x, BlockQ6_K* y, int64_t n);
void QuantizeQ8_K(const float* x, BlockQ8_K* y, int64_t n);
void DequantizeQ2_K(const BlockQ2_K* x, float* y, int64_t n);
void DequantizeQ3_K(const BlockQ3_K* x, float* y, int64_t n);
void DequantizeQ4_K(const BlockQ4_K* x, float* y, int64_t n);
void DequantizeQ5_K(const BlockQ5_K* x, float* y, int64_t n);
void DequantizeQ6_K(const BlockQ6_K* x, float* y, int64_t n);
void DequantizeQ8_K(const BlockQ8_K* x, float* y, int64_t n);

// Non-linear and microscaling formats (core/quant/nonlinear_quants.cc).
void QuantizeIq4Nl(const float* x, BlockIq4Nl* y, int64_t n);
void QuantizeIq4Xs(const float* x, BlockIq4Xs* y, int64_t n);
void QuantizeMxfp4(const float* x, BlockMxfp4* y, int64_t n);
void DequantizeIq4Nl(const BlockIq4Nl* x, float* y, int64_t n);
void DequantizeIq4Xs(const BlockIq4Xs* x, float* y, int64_t n);
void DequantizeMxfp4(const BlockMxfp4* x, float* y, int64_t n);

// Grid formats (core/quant/grid_quants.cc): decoders only. Files in these types come from GGUF
// producers that fit the grids with an importance matrix; sluice reads them, it does not write
// them.
void DequantizeIq2Xxs(const BlockIq2Xxs* x, float* y, int64_t n);
void DequantizeIq2Xs(const BlockIq2Xs* x, float* y, int64_t n);
void DequantizeIq2S(const BlockIq2S* x, float* y, int64_t n);
void DequantizeIq3Xxs(const BlockIq3Xxs* x, float* y, int64_t n);
void DequantizeIq3S(const BlockIq3S* x, float* y, int64_t n);
void DequantizeIq1S(const BlockIq1S* x, float* y, int64_t n);
void DequantizeIq1M(const BlockIq1M* x, float* y, int64_t n);
// Random valid blocks of a grid format (random indices, signs and scales; d set per block so its
// 256 values have root mean square `rms`): the weights of synthetic models and kernel tests.
// Deterministic in `seed`. n_blocks blocks of `type` (a grid type) are written to dst.
void RandomGridBlocks(GgmlType type, uint64_t seed, float rms, int64_t n_blocks, void* dst);
bool IsGridType(GgmlType type);

// Activation quantizers (core/quant/activation_quant.cc). Q8_K's is the reference one.
void QuantizeActQ8_0(const float* x, BlockQ8_0* y, int64_t n);
void QuantizeActQ8_1(const float* x, BlockQ8_1* y, int64_t n);
static inline void QuantizeActQ8_K(const float* x, BlockQ8_K* y, int64_t n) {
  QuantizeQ8_K(x, y, n);
}

// Round to nearest, ties to even, for |f| <= 2^22: the rounding every K-quant reference uses
// (it adds 1.5 * 2^23 and reads the mantissa).
static inline int NearestInt(float f) {
  const float shifted = f + 12582912.f;
  int32_t bits;
  __builtin_memcpy(&bits, &shifted, sizeof(bits));
  return (bits & 0x007fffff) - 0x00400000;
}

}  // namespace sluice
