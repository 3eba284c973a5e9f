// Normalisation ops of the transformer block.
// Non-goals: LayerNorm with bias (no supported architecture uses it yet).
// Thread-safety: pure functions on caller-owned buffers.
#pragma once

#include <cstdint>

namespace sluice {

// out[i] = x[i] / sqrt(mean(x^2) + eps) * weight[i], i in [0, n). weight may be null (no scale).
// The sum of squares is accumulated in double, as GGUF reference engines do, so long rows do not
// lose precision. out may alias x.
void RmsNorm(const float* x, const float* weight, int64_t n, float eps, float* out);

// RmsNorm applied to each of `n_rows` consecutive rows of `n` (e.g. per-head q/k norm:
// x is (n_head, head_dim) and weight is (head_dim), shared by every row).
void RmsNormRows(const float* x, const float* weight, int64_t n_rows, int64_t n, float eps,
                 float* out);

}  // namespace sluice
