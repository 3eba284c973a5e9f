// qwen2moe: Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B; also the GGUF architecture `sluice synth` uses for
// models shaped like Qwen3.5 / Qwen3-Next (many routed experts plus one gated shared expert),
// because other GGUF engines run it unchanged.
//   attention as llama with q/k/v biases, NEOX RoPE, no q/k norm
//   p = softmax(W_router h) over all experts; top-k WITHOUT renormalisation (norm_topk_prob is
//   false in Qwen2-MoE's config)
//   x += sum_e p_e * expert_e(h) + sigmoid(ffn_gate_inp_shexp . h) * shared(h)
#include "llm/arch_spec.h"

namespace sluice {

const ArchSpec& Qwen2MoeArch() {
  static const ArchSpec spec{
      .name = "qwen2moe",
      .description = "Qwen2 MoE (q/k/v bias, NEOX RoPE, softmax top-k, gated shared expert)",
      .rope_layout = RopeLayout::kNeox,
      .qk_norm = Presence::kAbsent,
      .qkv_bias = Presence::kRequired,
      .gating = GatingFunc::kSoftmax,
      .norm_topk = false,
      .expert_ff_key = "expert_feed_forward_length",
      .shared_expert = SharedExpertKind::kGated,
      .shared_ff_key = "expert_shared_feed_forward_length",
  };
  return spec;
}

}  // namespace sluice
