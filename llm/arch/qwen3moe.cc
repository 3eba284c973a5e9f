// qwen3moe: Qwen3-30B-A3B, Qwen3-235B-A22B.
//   h = rmsnorm(x) * attn_norm
//   q, k, v = Wq h, Wk h, Wv h              GQA; head_dim from attention.key_length (128), which
//                                           need not equal n_embd / n_head
//   q, k = per-head rmsnorm(q) * attn_q_norm, per-head rmsnorm(k) * attn_k_norm   (before RoPE)
//   RoPE NEOX over the whole head; causal attention, scale 1/sqrt(head_dim)
//   x += Wo attn
//   h = rmsnorm(x) * ffn_norm
//   p = softmax(W_router h) over all experts; top-k; weights renormalised to sum to 1
//   x += sum_e w_e * down_e(silu(gate_e h) * up_e h)       no shared expert
#include "llm/arch_spec.h"

namespace sluice {

const ArchSpec& Qwen3MoeArch() {
  static const ArchSpec spec{
      .name = "qwen3moe",
      .description = "Qwen3 MoE (GQA, q/k RMSNorm, NEOX RoPE, softmax top-k renormalised)",
      .rope_layout = RopeLayout::kNeox,
      .qk_norm = Presence::kRequired,
      .qkv_bias = Presence::kAbsent,
      .gating = GatingFunc::kSoftmax,
      .norm_topk = true,
      .expert_ff_key = "expert_feed_forward_length",
      .shared_expert = SharedExpertKind::kNone,
  };
  return spec;
}

}  // namespace sluice
