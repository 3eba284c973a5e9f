#include "moe/expert_ffn.h"

#include "core/base/check.h"
#include "core/ops/activation.h"

namespace sluice {

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
