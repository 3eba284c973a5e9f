// The gated delta-net (linear attention) layer of hybrid models (Qwen3-Next, Qwen3.5), over a
// batch of consecutive tokens of one or several sequences, each with its own recurrent state:
//   qkv = W_qkv xb      z = W_gate xb      beta = sigmoid(W_beta xb)      alpha = W_alpha xb
//   c_t = silu(sum_j conv[:, j] * qkv_{t-K+1+j})      causal depthwise conv over the last K inputs
//   q, k, v = split(c_t) into nk, nk, nv heads of ds;  q, k = q / max(|q|, eps), k / max(|k|, eps)
//   g = softplus(alpha + dt_bias) * ssm_a             (<= 0: the state decays by exp(g))
//   per v head h, with q/k head i (h mod nk for Qwen3.5, h / (nv / nk) for Qwen3-Next):
//     S_h = exp(g_h) S_h;  d = beta_h (v_h - S_h^T k_i);  S_h += k_i d^T;  o_h = S_h^T q_i /
//     sqrt(ds)
//   o_h = rmsnorm(o_h) * ssm_norm * silu(z_h);   out = W_out o
// The projections run as one MatMul over the batch; the recurrence runs token by token, so a
// batch gives the same bits as one-token decoding.
//
// The recurrent state (RecurrentState) is part of a sequence's state: (K-1) conv inputs and nv
// ds x ds matrices per delta-net layer. Unlike the KV cache it cannot be truncated; the engine
// replays a sequence's tokens when it must go back (llm/sequence.h).
//
// Thread-safety: none; one engine thread. The projections use the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/base/aligned_buffer.h"
#include "core/base/status.h"
#include "core/ops/linear.h"
#include "core/threads/thread_pool.h"
#include "llm/model_config.h"

namespace sluice {

struct DeltaNetWeights {
  Matrix qkv;                      // (conv_dim, n_embd)
  Matrix gate;                     // (nv ds, n_embd): z
  Matrix beta;                     // (nv, n_embd), or empty when packed in ba
  Matrix alpha;                    // (nv, n_embd), or empty
  Matrix ba;                       // (2 nv, n_embd): Qwen3-Next's packed beta/alpha, or empty
  const float* conv = nullptr;     // (conv_dim, K): tap j of channel c at [c * K + j]
  const float* dt_bias = nullptr;  // (nv)
  const float* ssm_a = nullptr;    // (nv), negative
  const float* norm = nullptr;     // (ds)
  Matrix out;                      // (n_embd, nv ds)
};

// One sequence's recurrent state for every delta-net layer, zero at the start.
class RecurrentState {
 public:
  static Result<RecurrentState> Create(const ModelConfig& config, bool lock_memory);
  static uint64_t BytesFor(const ModelConfig& config);
  RecurrentState() = default;
  RecurrentState(RecurrentState&&) = default;
  RecurrentState& operator=(RecurrentState&&) = default;

  void Reset();
  float* conv(int state_layer);    // (K-1, conv_dim): oldest input first
  float* matrix(int state_layer);  // (nv, ds, ds): S_h[key dim][value dim]
  bool empty() const { return buffer_.size() == 0; }

 private:
  int64_t conv_floats_ = 0;
  int64_t layer_floats_ = 0;
  AlignedBuffer buffer_;
};

class DeltaNetBlock {
 public:
  static uint64_t ScratchBytes(const ModelConfig& config, int max_tokens);
  static Result<std::unique_ptr<DeltaNetBlock>> Create(const ModelConfig& config, int max_tokens);

  // Rows of a batch that belong to one sequence, in order.
  struct Span {
    RecurrentState* state = nullptr;
    int64_t n = 0;
  };
  // xb: (n, n_embd) normalised hidden states, out: (n, n_embd).
  void Forward(int layer, const DeltaNetWeights& w, std::span<const Span> spans, const float* xb,
               float* out, ThreadPool* pool);

 private:
  DeltaNetBlock(const ModelConfig& config, int max_tokens)
      : config_(config), max_tokens_(max_tokens) {}
  void Token(const DeltaNetWeights& w, RecurrentState& state, int state_layer, int64_t t);

  const ModelConfig& config_;
  int max_tokens_;
  AlignedBuffer buffer_;
  float* qkv_ = nullptr;       // (max_tokens, conv_dim)
  float* z_ = nullptr;         // (max_tokens, nv ds)
  float* ba_ = nullptr;        // (max_tokens, 2 nv): beta then alpha per token (as the file has it)
  float* beta_ = nullptr;      // (max_tokens, nv)
  float* alpha_ = nullptr;     // (max_tokens, nv)
  float* o_ = nullptr;         // (max_tokens, nv ds)
  float* conv_out_ = nullptr;  // (conv_dim)
};

}  // namespace sluice
