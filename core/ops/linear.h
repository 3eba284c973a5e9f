// Matrix and Linear: a 2-D weight in GGUF layout and y = W x over a batch of tokens, on whatever
// format the weight is stored in (the kernels dequantize GGUF blocks on the fly). Attention, the
// MoE experts, the output head and diffusion's projections all go through this one function.
//
// Non-goals: bias, activation (the callers add them). Thread-safety: Linear splits rows over the
// pool; a Matrix is a plain view (it does not own its bytes).
#pragma once

#include <cstdint>

#include "core/base/ggml_type.h"
#include "core/threads/thread_pool.h"

namespace sluice {

// `rows` rows of `cols` elements, each RowBytes(type, cols) bytes, back to back.
struct Matrix {
  GgmlType type = GgmlType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0;
  int64_t cols = 0;
  uint64_t bytes() const { return data == nullptr ? 0 : RowBytes(type, cols) * rows; }
  const uint8_t* row(int64_t r) const { return data + RowBytes(type, cols) * r; }
};

// y (n_tokens, rows) = x (n_tokens, cols) . W^T: MatVec for one token, MatMul for more (the same
// bits per token either way: core/kernels/matmul.h).
void Linear(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool);

}  // namespace sluice
