#include "core/ops/norm.h"

#include <cmath>

namespace sluice {

void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out) {
  double sum_sq = 0.0;
  for (int64_t i = 0; i < n; ++i) sum_sq += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum_sq / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  if (weight == nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * scale;
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * weight[i];
  }
}

void RmsNormRows(const float* x, const float* weight, int64_t n_rows, int64_t n, float eps,
                 float* out) {
  for (int64_t r = 0; r < n_rows; ++r) RmsNorm(x + r * n, weight, n, eps, out + r * n);
}

}  // namespace sluice
