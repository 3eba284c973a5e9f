#include "core/ops/linear.h"

#include "core/base/check.h"
#include "core/kernels/matmul.h"

namespace sluice {

void Linear(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool* pool) {
  DCHECK(w.data != nullptr);
  if (n_tokens == 1) {
    MatVec(w.type, w.data, w.rows, w.cols, x, y, pool);
  } else {
    MatMul(w.type, w.data, w.rows, w.cols, x, n_tokens, y, pool);
  }
}

}  // namespace sluice
