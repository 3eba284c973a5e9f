#include "moe/expert_ffn.h"

#include "core/base/check.h"
#include "core/ops/activation.h"

namespace sluice {
namespace {

void AddBias(const float* bias, int64_t n_tokens, int64_t dim, float* x) {
  if (bias == nullptr) return;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < dim; ++i) x[t * dim + i] += bias[i];
  }
}

}  // namespace

void ExpertFfn(const ExpertWeights& w, const float* x, int64_t n_tokens, float* gate_buf,
               float* up_buf, float* y, ThreadPool* pool) {
  const int64_t n_ff = w.gate.rows;
  DCHECK(w.up.rows == n_ff && w.down.cols == n_ff);
  Linear(w.gate, x, n_tokens, gate_buf, pool);
  Linear(w.up, x, n_tokens, up_buf, pool);
  AddBias(w.gate_bias, n_tokens, n_ff, gate_buf);
  AddBias(w.up_bias, n_tokens, n_ff, up_buf);
  if (w.activation == FfnActivation::kSwiGluOai) {
    SwiGluOai(gate_buf, up_buf, n_tokens * n_ff, gate_buf);
  } else {
    SwiGlu(gate_buf, up_buf, n_tokens * n_ff, gate_buf);
  }
  Linear(w.down, gate_buf, n_tokens, y, pool);
  AddBias(w.down_bias, n_tokens, w.down.rows, y);
}

}  // namespace sluice
