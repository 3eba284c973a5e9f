// Quantized matrix-vector and matrix-matrix products on GGUF block formats, computed on the
// blocks directly (no conversion), with run-time ISA dispatch (core/kernels/dispatch.h).
//
// Weights W are `rows` x `cols`, row-major, each row RowBytes(type, cols) bytes, rows packed:
// exactly a GGUF 2-D tensor with ne[0] = cols, ne[1] = rows. Activations are f32; for quantized
// weights they are quantized on the fly to the matching activation format, as GGUF engines do
// (Q8_0 for the 32-element formats, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants and IQ4_XS), and kept in
// f32 for float weights. Outputs are f32.
//
// Results depend only on (type, W, x, cols) and the selected ISA path, never on the thread count or
// on where W lives in memory: streamed and resident experts give bit-identical results.
// Thread-safety: reentrant; the pool (may be null = single thread) must not be shared concurrently.
#pragma once

#include <cstdint>

#include "core/base/ggml_type.h"
#include "core/threads/thread_pool.h"

namespace sluice {

// Types MatVec/MatMul accept as weights.
bool IsSupportedWeightType(GgmlType type);

// The format activations are converted to for a weight type: kQ8_0, kQ8_1, kQ8_K, or kF32 for
// F32/F16/BF16 weights (kept in f32: closer to the exact product than rounding them to f16).
GgmlType MatMulActivationType(GgmlType weight_type);

// y[r] = sum_c W[r][c] * x[c], r in [0, rows). x: (cols), y: (rows).
void MatVec(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y,
            ThreadPool* pool);

// y[t][r] = sum_c W[r][c] * x[t][c]. x: (n_tokens, cols), y: (n_tokens, rows).
// For each t the result equals MatVec on x[t] bit for bit.
void MatMul(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
            int64_t n_tokens, float* y, ThreadPool* pool);

// dst[0..n) = the values of the first n elements of a row in `type` (n a multiple of the block).
void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n);

// src[0..n) quantized into `type` with the reference rounding GGUF producers use.
void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n);

}  // namespace sluice
