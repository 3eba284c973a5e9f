#include "core/ops/rope.h"

#include <algorithm>
#include <cmath>

#include "core/base/check.h"

namespace sluice {

void RopeAngles(const RopeParams& params, int64_t pos, float* cos_sin) {
  DCHECK(params.n_rot > 0 && params.n_rot % 2 == 0 && params.n_rot <= params.head_dim);
  const int half = params.n_rot / 2;
  const double base = params.freq_base;
  double lo = 0, hi = 0;
  if (params.yarn_factor > 0) {
    const double pi = 3.14159265358979323846;
    auto corr = [&](double b) {
      return params.n_rot * std::log(static_cast<double>(params.yarn_orig_ctx) / (2 * pi * b)) /
             (2 * std::log(base));
    };
    lo = std::max(0.0, std::floor(corr(params.yarn_beta_fast)));
    hi = std::min(static_cast<double>(params.n_rot - 1), std::ceil(corr(params.yarn_beta_slow)));
  }
  for (int i = 0; i < half; ++i) {
    const double inv_freq = std::pow(base, -2.0 * i / params.n_rot);
    double theta = static_cast<double>(pos) * params.freq_scale * inv_freq;
    if (params.yarn_factor > 0) {
      const double y = (i - lo) / std::max(0.001, hi - lo);
      const double ramp = 1 - std::min(1.0, std::max(0.0, y));
      theta = static_cast<double>(pos) * inv_freq * ((1 - ramp) / params.yarn_factor + ramp);
    }
    cos_sin[2 * i] = static_cast<float>(std::cos(theta) * params.mscale);
    cos_sin[2 * i + 1] = static_cast<float>(std::sin(theta) * params.mscale);
  }
}

void RopeApply(const RopeParams& params, const float* cos_sin, int n_heads, float* x) {
  const int half = params.n_rot / 2;
  // Pair (a, b) of dim indices for rotation i; the layout only changes which dims pair up.
  const int stride_i = params.layout == RopeLayout::kNeox ? 1 : 2;
  const int pair_offset = params.layout == RopeLayout::kNeox ? half : 1;
  for (int h = 0; h < n_heads; ++h) {
    float* head = x + static_cast<int64_t>(h) * params.head_dim;
    for (int i = 0; i < half; ++i) {
      const float c = cos_sin[2 * i];
      const float s = cos_sin[2 * i + 1];
      float* a = head + i * stride_i;
      float* b = a + pair_offset;
      const float x0 = *a;
      const float x1 = *b;
      *a = x0 * c - x1 * s;
      *b = x0 * s + x1 * c;
    }
  }
}

void Rope(const RopeParams& params, int64_t pos, int n_heads, float* x, float* cos_sin_scratch) {
  RopeAngles(params, pos, cos_sin_scratch);
  RopeApply(params, cos_sin_scratch, n_heads, x);
}

}  // namespace sluice
