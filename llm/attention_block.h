// The attention block of one layer over a batch of consecutive tokens at positions
// pos0 .. pos0 + n - 1 (or over rows of several sequences, each span on its own KV cache):
//   q, k, v = Wq xb, Wk xb, Wv xb (+ biases)     one MatMul each over the batch
//   per-head RMSNorm of q and k (when the model has q/k norms), then RoPE at each position
//   k, v appended to the KV cache; each token then attends to positions 0 .. its own
//   attn *= sigmoid(gate)                          models with an output gate (Wq gives it)
//   out = Wo attn                                  one MatMul over the batch
// `layer` is the model's layer index (its KV cache layer is ModelConfig::kv_layer).
// Every token's attention is computed exactly as in one-token decoding, so batches of any size
// give bit-identical results.
//
// Thread-safety: none; one engine thread. Kernels and the attention op use the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/base/aligned_buffer.h"
#include "core/base/status.h"
#include "core/threads/thread_pool.h"
#include "llm/kv_cache.h"
#include "llm/model_config.h"
#include "llm/weights.h"

namespace sluice {

class AttentionBlock {
 public:
  static uint64_t ScratchBytes(const ModelConfig& config, int max_tokens, int64_t n_ctx);
  static Result<std::unique_ptr<AttentionBlock>> Create(const ModelConfig& config, int max_tokens,
                                                        int64_t n_ctx);

  // Consecutive rows of a batch that belong to one sequence: n tokens at positions pos0...
  // whose keys and values go to (and attend over) `kv`.
  struct Span {
    KvCache* kv = nullptr;
    int64_t pos0 = 0;
    int64_t n = 0;
  };

  // xb: (n, n_embd) normalised hidden states; out: (n, n_embd) the block's output.
  void Forward(int layer, const LayerWeights& weights, KvCache& kv, const float* xb, int64_t n,
               int64_t pos0, float* out, ThreadPool* pool) {
    const Span span{.kv = &kv, .pos0 = pos0, .n = n};
    Forward(layer, weights, std::span<const Span>(&span, 1), xb, out, pool);
  }
  // The same over rows of several sequences (the spans in row order, sum of n <= max_tokens):
  // the projections run once over all rows; each row attends within its own sequence. A row's
  // result is the same as when its sequence runs alone.
  void Forward(int model_layer, const LayerWeights& weights, std::span<const Span> spans,
               const float* xb, float* out, ThreadPool* pool);

 private:
  AttentionBlock(const ModelConfig& config, int max_tokens, int64_t n_ctx);

  const ModelConfig& config_;
  int max_tokens_;
  int64_t n_ctx_;
  AlignedBuffer buffer_;
  float* q_ = nullptr;        // (max_tokens, q_dim)
  float* k_ = nullptr;        // (max_tokens, k_dim)
  float* v_ = nullptr;        // (max_tokens, v_dim)
  float* attn_ = nullptr;     // (max_tokens, attn_out_dim)
  float* scores_ = nullptr;   // (n_head, n_ctx)
  float* cos_sin_ = nullptr;  // (n_rot)
  float* qg_ = nullptr;       // (max_tokens, 2 q_dim): Wq's output with the gate, or null
  float* gate_ = nullptr;     // (max_tokens, q_dim): the output gate's logits, or null
};

}  // namespace sluice
