#include "moe/expert_ffn.h"

#include "core/kernels/matmul.h"
#include "core/ops/activation.h"

namespace sluice {

void Linear(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  DCHECK(w.data != nullptr);
  if (n_tokens == 1) {
    MatVec(w.type, w.data, w.rows, w.cols, x, y, pool);
  } else {
    MatMul(w.type, w.data, w.rows, w.cols, x, n_tokens, y, pool);
  }
}

void ExpertFfn(const ExpertWeights& w, const float* x, int64_t n_tokens, float* gate_buf,
               float* up_buf, float* y, ThreadPool* pool) {
  const int64_t n_ff = w.gate.rows;
  DCHECK(w.up.rows == n_ff && w.down.cols == n_ff);
  Linear(w.gate, x, n_tokens, gate_buf, pool);
  Linear(w.up, x, n_tokens, up_buf, pool);
  SwiGlu(gate_buf, up_buf, n_tokens * n_ff, gate_buf);
  Linear(w.down, gate_buf, n_tokens, y, pool);
}

}  // namespace sluice
