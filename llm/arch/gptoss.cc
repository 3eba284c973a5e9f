// gpt-oss: gpt-oss-120b, gpt-oss-20b (GGUF architecture "gpt-oss", MXFP4 experts).
//   h = rmsnorm(x) * attn_norm
//   q, k, v = Wq h + bq, Wk h + bk, Wv h + bv    GQA, head_dim 64
//   NEOX RoPE over the whole head with YaRN (cos and sin carry 1 + 0.1 ln factor)
//   even layers attend within attention.sliding_window positions, odd layers to everything
//   per-head learned sinks join every softmax's denominator (no value)
//   x += Wo attn + bo
//   h = rmsnorm(x) * post_attention_norm
//   r = W_router h + b_router; top-k by r; weights = softmax over the k chosen logits
//   expert e: a = gate_e h + bg_e, u = up_e h + bu_e,
//             y = min(a, 7) sigmoid(1.702 min(a, 7)) (clamp(u, -7, 7) + 1),  down_e y + bd_e
// (softmax over the chosen logits = softmax over all, renormalised over the chosen.)
#include "llm/arch_spec.h"

namespace sluice {

const ArchSpec& GptOssArch() {
  static const ArchSpec spec{
      .name = "gpt-oss",
      .description =
          "gpt-oss MoE (alternating sliding-window attention with sinks, biases, YaRN, "
          "clamped SwiGLU experts)",
      .rope_layout = RopeLayout::kNeox,
      .yarn_scales_cos_sin = true,
      .qk_norm = Presence::kAbsent,
      .qkv_bias = Presence::kRequired,
      .attn_output_bias = Presence::kRequired,
      .attn_sinks = Presence::kRequired,
      .sliding_window_even_layers = true,
      .ffn_norm = "post_attention_norm",
      .gating = GatingFunc::kSoftmax,
      .norm_topk = true,
      .router_bias = Presence::kRequired,
      .expert_bias = Presence::kRequired,
      .oai_swiglu = true,
      .expert_ff_key = "expert_feed_forward_length",
      .shared_expert = SharedExpertKind::kNone,
  };
  return spec;
}

}  // namespace sluice
