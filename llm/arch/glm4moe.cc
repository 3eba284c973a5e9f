// glm4moe: GLM-4.5 (355B-A32B), GLM-4.5-Air, GLM-4.6.
//   h = rmsnorm(x) * attn_norm
//   q, k, v = Wq h + bq, Wk h + bk, Wv h + bv   GQA, head_dim 128
//   q, k = per-head rmsnorm * attn_{q,k}_norm   GLM-4.5 has them, GLM-4.5-Air not: used when
//   present NEOX RoPE over the first rope.dimension_count dims of each head (half); the rest
//   unrotated x += Wo attn                                (no output bias) h = rmsnorm(x) *
//   post_attention_norm layer < leading_dense_block_count: x += down(silu(gate h) * up h)
//   otherwise:
//     p = sigmoid(W_router h); experts chosen by p + exp_probs_b (the bias only selects),
//     weights p[top] / sum * expert_weights_scale (2.5)
//     x += sum_e w_e * down_e(silu(gate_e h) * up_e h) + shared expert (ungated)
// The file's trailing multi-token-prediction layer (nextn_predict_layers) is not run.
#include "llm/arch_spec.h"

namespace sluice {

const ArchSpec& Glm4MoeArch() {
  static const ArchSpec spec{
      .name = "glm4moe",
      .description =
          "GLM-4.5 MoE (GQA with q/k/v biases, partial NEOX RoPE, sigmoid routing with "
          "a selection bias, leading dense layers, shared expert)",
      .rope_layout = RopeLayout::kNeox,
      .qk_norm = Presence::kOptional,
      .qkv_bias = Presence::kRequired,
      .ffn_norm = "post_attention_norm",
      .gating = GatingFunc::kSigmoid,
      .norm_topk = true,
      .selection_bias = Presence::kRequired,
      .expert_ff_key = "expert_feed_forward_length",
      .shared_expert = SharedExpertKind::kPlain,
  };
  return spec;
}

}  // namespace sluice
