// The SwiGLU feed-forward of one expert (routed or shared) over a batch of tokens:
//   y[t] = down(silu(gate x[t]) * up x[t])      (plus biases and gpt-oss's clamped variant)
// on core/ops/linear.h's Linear (MatVec for a single token, MatMul for several, whose rows equal
// MatVec bit for bit, so batching never changes results).
//
// Thread-safety: reentrant; the pool is used by one caller at a time.
#pragma once

#include <cstdint>

#include "core/ops/linear.h"
#include "core/threads/thread_pool.h"

namespace sluice {

// How an FFN combines its gate and up projections.
enum class FfnActivation {
  kSwiGlu,     // silu(gate) * up
  kSwiGluOai,  // gpt-oss: clamped, sigmoid(1.702 g) (core/ops/activation.h)
};

struct ExpertWeights {
  Matrix gate;                       // (n_ff, n_embd)
  Matrix up;                         // (n_ff, n_embd)
  Matrix down;                       // (n_embd, n_ff)
  const float* gate_bias = nullptr;  // (n_ff) or null (gpt-oss's experts have biases)
  const float* up_bias = nullptr;    // (n_ff) or null
  const float* down_bias = nullptr;  // (n_embd) or null
  FfnActivation activation = FfnActivation::kSwiGlu;
};

// x: (n_tokens, n_embd)  gate_buf, up_buf: (n_tokens, n_ff) scratch  y: (n_tokens, n_embd)
void ExpertFfn(const ExpertWeights& w, const float* x, int64_t n_tokens, float* gate_buf,
               float* up_buf, float* y, ThreadPool* pool);

}  // namespace sluice
