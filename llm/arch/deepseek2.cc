// deepseek2: DeepSeek-V3, DeepSeek-R1, DeepSeek-V3.1, Kimi-K2 (and DeepSeek-V2).
//   h = rmsnorm(x) * attn_norm
//   multi-head latent attention, absorbed form (llm/mla_block.h): low-rank q, a cached latent c
//   and one shared rotary key per position; NORM RoPE with YaRN; scores scaled by
//   mscale^2 / sqrt(nope + rope), mscale = 1 + yarn_log_multiplier ln(factor)
//   x += W_o attn
//   h = rmsnorm(x) * ffn_norm
//   layer < leading_dense_block_count (3): x += down(silu(gate h) * up h)
//   otherwise:
//     p = sigmoid(W_router h); experts chosen by p + exp_probs_b within the
//     expert_group_used_count best of expert_group_count groups (a group's score: its two best);
//     weights p[top] / sum * expert_weights_scale (2.5 for V3)
//     x += sum_e w_e * down_e(silu(gate_e h) * up_e h) + shared expert (ungated)
#include "llm/arch_spec.h"

namespace sluice {

const ArchSpec& DeepSeek2Arch() {
  static const ArchSpec spec{
      .name = "deepseek2",
      .description =
          "DeepSeek-V2/V3 MoE (multi-head latent attention, YaRN, sigmoid routing with "
          "a selection bias and expert groups, leading dense layers, shared expert)",
      .attention = AttentionKind::kMla,
      .rope_layout = RopeLayout::kNormal,
      .yarn_scales_cos_sin = false,
      .qk_norm = Presence::kAbsent,
      .qkv_bias = Presence::kAbsent,
      .ffn_norm = "ffn_norm",
      .gating = GatingFunc::kSigmoid,
      .norm_topk = true,
      .selection_bias = Presence::kRequired,
      .expert_ff_key = "expert_feed_forward_length",
      .shared_expert = SharedExpertKind::kPlain,
  };
  return spec;
}

}  // namespace sluice
