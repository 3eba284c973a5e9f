// DeepSeek's multi-head latent attention (DeepSeek-V2/V3/R1, Kimi-K2), in the absorbed form, over
// a batch of consecutive tokens of one or several sequences (each span on its own KV cache):
//   cq = rmsnorm(W_q_a xb) * q_a_norm;  q = W_q_b cq          per head [q_nope | q_pe]
//        (or q = W_q xb for models without a q low-rank projection)
//   kv = W_kv_a xb;  c = rmsnorm(kv[0:kv_lora]) * kv_a_norm;  k_pe = kv[kv_lora:]
//   q_pe, k_pe: RoPE (NORM layout, YaRN), one k_pe shared by all heads
//   per head j: q_abs = W_k_b[j] q_nope                      (kv_lora)
//     s(t, u) = (q_abs(t) . c(u) + q_pe(t) . k_pe(u)) * attn_scale, causal softmax over u
//     o_j = W_v_b[j] sum_u softmax(s)_u c(u)                  (v_head)
//   out = W_o concat_j(o_j)
// The same as the unabsorbed form (k_nope = W_k_b^T c, v = W_v_b c), but each position caches
// only [k_pe | c] (kv_lora + rope values; 576 for DeepSeek-V3 instead of 128 heads x 256), kept
// as one KV "head" with c again as its value, so the shared attention op runs it unchanged.
// Every token runs as in one-token decoding: batches give the same bits.
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
#include "llm/attention_block.h"
#include "llm/mla_weights.h"
#include "llm/model_config.h"

namespace sluice {

class MlaBlock {
 public:
  static uint64_t ScratchBytes(const ModelConfig& config, int max_tokens, int64_t n_ctx);
  static Result<std::unique_ptr<MlaBlock>> Create(const ModelConfig& config, int max_tokens,
                                                  int64_t n_ctx);

  // `layer` is the layer's KV cache index; spans as AttentionBlock's.
  void Forward(int layer, const MlaWeights& w, std::span<const AttentionBlock::Span> spans,
               const float* xb, float* out, ThreadPool* pool);

 private:
  MlaBlock(const ModelConfig& config, int max_tokens, int64_t n_ctx)
      : config_(config), max_tokens_(max_tokens), n_ctx_(n_ctx) {}

  const ModelConfig& config_;
  int max_tokens_;
  int64_t n_ctx_;
  AlignedBuffer buffer_;
  float* cq_ = nullptr;       // (max_tokens, q_lora)
  float* q_ = nullptr;        // (max_tokens, n_head (nope + rope))
  float* kv_ = nullptr;       // (max_tokens, kv_lora + rope)
  float* q_abs_ = nullptr;    // (n_head, rope + kv_lora): one token's absorbed queries
  float* k_ = nullptr;        // (rope + kv_lora): one token's cached key
  float* heads_ = nullptr;    // (n_head, kv_lora): one token's attention output per head
  float* o_ = nullptr;        // (max_tokens, n_head v_head)
  float* scores_ = nullptr;   // (n_head, n_ctx)
  float* cos_sin_ = nullptr;  // (rope)
};

}  // namespace sluice
