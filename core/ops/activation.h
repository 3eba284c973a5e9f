// Softmax and the small activation functions of the MoE block.
// Non-goals: fused or vectorised variants (these run on vectors of n_expert or n_ctx elements,
// a negligible share of a token's time next to the expert matmuls).
// Thread-safety: pure functions on caller-owned buffers.
#pragma once

#include <cstdint>

namespace sluice {

// x[0..n) <- exp(x - max) / sum, in place. The sum is accumulated in double.
void Softmax(float* x, int64_t n);

// silu(x) = x / (1 + exp(-x)).
float Silu(float x);
float Sigmoid(float x);

// out[i] = silu(gate[i]) * up[i], i in [0, n). out may alias gate or up.
void SwiGlu(const float* gate, const float* up, int64_t n, float* out);
// gpt-oss's clamped SwiGLU: g = min(gate, limit), u = clamp(up, -limit, limit),
// out = g * sigmoid(alpha * g) * (u + 1), with alpha = 1.702 and limit = 7.
void SwiGluOai(const float* gate, const float* up, int64_t n, float* out);

}  // namespace sluice
