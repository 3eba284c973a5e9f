// ArchSpec: everything that distinguishes one MoE architecture from another, as data.
//
// The forward pass (llm/engine.cc and the blocks it calls) is shared and never tests the
// architecture's name; it reads these fields instead. Each architecture is one file under
// llm/arch/ that fills an ArchSpec, plus one line in llm/arch_registry.cc. docs/adding-a-model.md
// explains what to do when a new model needs something these fields cannot express.
//
// Metadata keys are "<name>.<key>" (GGUF's convention: "qwen3moe.block_count"). Where GGUF has a
// key for a choice (expert_gating_func, expert_weights_norm, expert_weights_scale), the key wins
// over the spec's default, so a converter can state the model's choice explicitly. Keys any
// architecture may carry are read for all: leading_dense_block_count (dense FFN layers before
// the MoE ones), expert_group_count / expert_group_used_count (group-limited routing),
// nextn_predict_layers (trailing multi-token-prediction layers, which are not run).
//
// Thread-safety: specs are immutable statics; lookups are safe from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "core/ops/rope.h"
#include "moe/router.h"  // GatingFunc

namespace sluice {

// The always-on shared expert(s) some models add to the routed ones.
enum class SharedExpertKind {
  kNone,   // no shared expert (Qwen3-MoE, Mixtral)
  kGated,  // ffn_{gate,up,down}_shexp scaled by sigmoid(ffn_gate_inp_shexp . h) (Qwen2-MoE,
           // Qwen3-Next / Qwen3.5)
  kPlain,  // ffn_{gate,up,down}_shexp added with weight 1 (DeepSeek-V2/V3)
};

// The linear-attention (gated delta-net) layers of hybrid models; see llm/delta_net_block.h.
enum class DeltaNetKind {
  kNone,     // every layer is full attention
  kTiled,    // Qwen3.5: v head h reads q/k head h mod n_k_heads; ssm_beta and ssm_alpha apart
  kGrouped,  // Qwen3-Next: v head h reads q/k head h / (n_v_heads / n_k_heads); ssm_ba packed
};

// How the attention layers compute.
enum class AttentionKind {
  kStandard,  // q, k, v, output projections (GQA); llm/attention_block.h
  kMla,       // DeepSeek's multi-head latent attention, absorbed form; llm/mla_block.h
};

// Whether a tensor family must be in the file.
enum class Presence {
  kAbsent,    // the architecture never has it; a file carrying it gets a warning (unused)
  kRequired,  // missing -> NotFound naming the tensor
  kOptional,  // used when present (e.g. output.weight: absent means tied to token_embd)
};

struct ArchSpec {
  const char* name = "";         // general.architecture, also the metadata key prefix
  const char* description = "";  // one line for errors and `sluice inspect`

  // Attention.
  AttentionKind attention = AttentionKind::kStandard;
  RopeLayout rope_layout = RopeLayout::kNeox;
  // YaRN rope scaling: cos/sin carry the magnitude factor 1 + 0.1 ln F (gpt-oss), or not, the
  // model folding it into the attention scale instead (DeepSeek: llm/mla_block.h).
  bool yarn_scales_cos_sin = true;
  Presence qk_norm = Presence::kAbsent;   // attn_q_norm / attn_k_norm: per-head RMSNorm of q
                                          // and k (shape head_dim), applied before RoPE
  Presence qkv_bias = Presence::kAbsent;  // attn_q.bias, attn_k.bias, attn_v.bias
  Presence attn_output_bias = Presence::kAbsent;  // attn_output.bias
  Presence attn_sinks = Presence::kAbsent;        // attn_sinks (n_head): gpt-oss
  // Layers with even index attend within attention.sliding_window positions (gpt-oss).
  bool sliding_window_even_layers = false;
  // attn_q holds per head [query | gate] (2 * head_dim rows) and the attention output is
  // multiplied by sigmoid(gate) before attn_output (Qwen3-Next / Qwen3.5).
  bool attn_output_gate = false;
  // Hybrid models: layer l is full attention when (l + 1) % full_attention_interval == 0, a
  // gated delta-net layer otherwise.
  DeltaNetKind delta_net = DeltaNetKind::kNone;

  // The norm before the FFN / MoE block: "ffn_norm" (Qwen, Mixtral) or "post_attention_norm"
  // (GLM-4.5).
  const char* ffn_norm = "ffn_norm";

  // Routing defaults (metadata keys override, see above).
  GatingFunc gating = GatingFunc::kSoftmax;
  bool norm_topk = true;  // renormalise the k selected probabilities to sum to 1
  // exp_probs_b.bias (n_expert): added to the probabilities to choose the experts, never to the
  // weights (DeepSeek-V3's auxiliary-loss-free balancing, GLM-4.5).
  Presence selection_bias = Presence::kAbsent;
  Presence router_bias = Presence::kAbsent;  // ffn_gate_inp.bias, added to the router logits
  // ffn_{gate,up,down}_exps.bias: one bias vector per routed expert (gpt-oss).
  Presence expert_bias = Presence::kAbsent;
  bool oai_swiglu = false;  // experts use gpt-oss's clamped SwiGLU (core/ops/activation.h)

  // Key holding the routed experts' hidden size: "expert_feed_forward_length" (Qwen MoE), or
  // "feed_forward_length" (Mixtral, whose GGUFs only have the latter).
  const char* expert_ff_key = "expert_feed_forward_length";

  SharedExpertKind shared_expert = SharedExpertKind::kNone;
  // Key of the shared expert's hidden size (per shared expert; n_shared copies are packed into
  // one wider matrix in GGUF, so the tensors are n_shared * this wide).
  const char* shared_ff_key = "expert_shared_feed_forward_length";
};

// The spec registered under `name`; Unsupported (listing the known names) otherwise.
Result<const ArchSpec*> FindArchSpec(std::string_view name);
// Names of every registered architecture, in registry order.
std::vector<std::string> RegisteredArchitectures();

}  // namespace sluice
