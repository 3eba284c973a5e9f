// Synthetic model presets: the shapes of real MoE models, for `sluice synth` (synth/synth.h).
//
// What is faithful: the routed experts (count, k, matrix shapes, quantized type, so each expert
// has its real byte size), the shared expert's shape, the layer count and n_embd, and the weight
// count of each layer's attention. Qwen3.5 is written as its own architecture (qwen35moe) with
// its real gated delta-net and gated attention layers. DeepSeek-V3 is not yet: standard GQA in
// qwen2moe stands in for its MLA, with the head count chosen to give its per-layer attention
// weights (~190M), so the dense bytes per token (the compute the disk must hide, the RAM the
// cache does not get) match; its 3 leading dense layers are MoE layers here. The vocabulary is a
// small byte-level one (the real embeddings, 1-2 GB, are not reproduced).
// Dense tensors come from the engine's own tensor list (llm/tensor_plan.h).
//
// Scaling to the disk at hand: `layers` and `experts` reduce the counts, never the shape of an
// expert. Keeping all experts and cutting layers keeps the per-layer cache pressure of the full
// model at the same budget fraction (a 1/8 budget holds 1/8 of each layer's experts either way).
//
// Thread-safety: presets are immutable statics.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/base/status.h"

namespace sluice {

struct SynthShape {
  std::string preset;       // preset name
  std::string description;  // one line: the real model and what is approximated
  std::string arch;         // GGUF architecture written: qwen3moe | qwen2moe | llama | qwen35moe
  int n_layer = 0;
  int64_t n_embd = 0;
  int n_head = 0, n_head_kv = 0, head_dim = 0;
  int64_t n_ctx = 0;  // context_length written
  int n_expert = 0, n_expert_used = 0;
  int64_t n_ff_exp = 0;    // routed expert hidden size
  int64_t n_ff_shexp = 0;  // shared expert hidden size (0: none)
  float rope_freq_base = 1e6f;
  float rms_eps = 1e-6f;
  int n_rot = 0;  // rotary dims per head (0: all of head_dim)
  // Hybrid (qwen35moe) presets: every full_attention_interval-th layer is attention, the others
  // gated delta-net layers of these shapes (the ssm.* keys).
  int full_attention_interval = 0;
  int ssm_conv_kernel = 0, ssm_state_size = 0, ssm_k_heads = 0, ssm_v_heads = 0;
  // DeepSeek (deepseek2) presets: leading dense layers, multi-head latent attention (the MLA key
  // and value head sizes, the q and kv low ranks), expert groups, YaRN and the routed scale.
  int n_dense_layers = 0;
  int64_t n_ff_dense = 0;
  int mla_q_lora = 0, mla_kv_lora = 0, mla_k_head = 0, mla_v_head = 0;
  int expert_groups = 1, expert_groups_used = 1;
  float yarn_factor = 0, yarn_log_multiplier = 0;
  int64_t yarn_orig_ctx = 0;
  float expert_weights_scale = 0;  // 0: not written
  int moe_layers() const { return n_layer > n_dense_layers ? n_layer - n_dense_layers : 0; }
  GgmlType expert_type = GgmlType::kQ4_K;    // routed experts (gate and up; down too unless set)
  std::optional<GgmlType> expert_down_type;  // the experts' down matrices, like "UD" files mix
  GgmlType dense_type = GgmlType::kQ8_0;     // attention, shared expert, embeddings, output (Q8_0
                                          // where a tensor's rows do not fit dense_type's blocks)
  GgmlType down_type() const { return expert_down_type.value_or(expert_type); }
  int full_layers = 0, full_experts = 0;  // the real model's counts (before scaling)

  int64_t q_dim() const { return int64_t{n_head} * head_dim; }
  int64_t kv_dim() const { return int64_t{n_head_kv} * head_dim; }
  // Bytes of one routed expert: gate + up + down (no padding).
  uint64_t expert_bytes() const;
  // Bytes of every routed expert (n_layer * n_expert * expert_bytes()).
  uint64_t all_expert_bytes() const;
  // Bytes of the dense tensors (attention, norms, router, shared expert, embeddings, output).
  uint64_t dense_bytes(int64_t n_vocab) const;
  // "qwen3.5-397b-a17b: 60 layers (of 60), 512 experts (of 512) x 6.75 MiB q4_K, k=10 + shared"
  std::string ToString() const;
};

// Every preset, in a stable order (for --help and errors).
const std::vector<SynthShape>& SynthPresets();
// NotFound listing the presets for an unknown name.
Result<SynthShape> FindSynthPreset(std::string_view name);

struct SynthScale {
  int layers = 0;                       // 0: keep the preset's
  int experts = 0;                      // 0: keep the preset's
  std::optional<GgmlType> quant;        // empty: keep the preset's expert type
  std::optional<GgmlType> quant_down;   // the experts' down matrices; empty: as quant
  std::optional<GgmlType> dense_quant;  // the dense tensors; empty: the preset's (Q8_0)
};

// The preset scaled down. InvalidArgument when layers/experts exceed the preset's (synth only
// scales down), experts < k, or the quant type is not a matmul weight type with whole blocks per
// row for these shapes.
Result<SynthShape> ScaleSynthShape(const SynthShape& preset, const SynthScale& scale);

}  // namespace sluice
