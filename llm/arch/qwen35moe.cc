// qwen35moe (Qwen3.5-397B-A17B) and qwen3next (Qwen3-Next-80B-A3B): hybrid layers.
//   h = rmsnorm(x) * attn_norm
//   layer l with (l + 1) % full_attention_interval == 0: gated full attention
//     [q | gate] per head = Wq h;  k, v = Wk h, Wv h      GQA
//     q, k = per-head rmsnorm * attn_{q,k}_norm; NEOX RoPE on the first rope.dimension_count dims
//     (Qwen3.5's multi-section RoPE gives every section the token position for text, which is
//     exactly this); causal attention; x += Wo (attn * sigmoid(gate))
//   other layers: gated delta-net linear attention (llm/delta_net_block.h)
//   h = rmsnorm(x) * post_attention_norm
//   p = softmax(W_router h); top-k renormalised
//   x += sum_e w_e * down_e(silu(gate_e h) * up_e h) + sigmoid(w_shexp_gate . h) * shared(h)
// Norm weights are stored as the multiplier (the converter bakes in HF's 1 + w).
// The two differ only in how a v head finds its q/k head and how beta/alpha are stored.
#include "llm/arch_spec.h"

namespace sluice {

const ArchSpec& Qwen35MoeArch() {
  static const ArchSpec spec{
      .name = "qwen35moe",
      .description =
          "Qwen3.5 MoE (gated delta-net + gated attention every 4th layer, 512 experts, "
          "gated shared expert)",
      .rope_layout = RopeLayout::kNeox,
      .qk_norm = Presence::kRequired,
      .qkv_bias = Presence::kAbsent,
      .attn_output_gate = true,
      .delta_net = DeltaNetKind::kTiled,
      .ffn_norm = "post_attention_norm",
      .gating = GatingFunc::kSoftmax,
      .norm_topk = true,
      .expert_ff_key = "expert_feed_forward_length",
      .shared_expert = SharedExpertKind::kGated,
      .shared_ff_key = "expert_shared_feed_forward_length",
  };
  return spec;
}

// Qwen3-Next: Qwen3.5's spec but for how v heads find their q/k head and the packed beta/alpha.
const ArchSpec& Qwen3NextArch() {
  static const ArchSpec spec = [] {
    ArchSpec s = Qwen35MoeArch();
    s.name = "qwen3next";
    s.description =
        "Qwen3-Next MoE (gated delta-net + gated attention every 4th layer, gated shared expert)";
    s.delta_net = DeltaNetKind::kGrouped;
    return s;
  }();
  return spec;
}

}  // namespace sluice
