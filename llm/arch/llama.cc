// llama with experts: Mixtral 8x7B, 8x22B (GGUF architecture "llama" with expert_count > 0).
//   attention as Llama 2: GQA, normal (interleaved-pair) RoPE layout, no q/k norm, no bias
//   router: softmax over the top-2 selected logits, which equals the top-2 of the softmax over
//   all experts renormalised to sum to 1 (the form used here)
//   experts: SwiGLU, hidden size from llama.feed_forward_length; no shared expert
// A dense llama (expert_count 0) is refused at load: sluice only runs MoE models.
#include "llm/arch_spec.h"

namespace sluice {

const ArchSpec& LlamaMoeArch() {
  static const ArchSpec spec{
      .name = "llama",
      .description = "Llama with experts / Mixtral (normal RoPE, softmax top-2)",
      .rope_layout = RopeLayout::kNormal,
      .qk_norm = Presence::kAbsent,
      .qkv_bias = Presence::kAbsent,
      .gating = GatingFunc::kSoftmax,
      .norm_topk = true,
      .expert_ff_key = "feed_forward_length",
      .shared_expert = SharedExpertKind::kNone,
  };
  return spec;
}

}  // namespace sluice
