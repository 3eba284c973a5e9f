#include "synth/synth_presets.h"

#include "core/base/byte_size.h"
#include "core/kernels/matmul.h"
#include "llm/arch_spec.h"

namespace sluice {
namespace {

SynthShape Preset(std::string name, std::string description, std::string arch, int n_layer,
                  int64_t n_embd, int n_head, int n_head_kv, int head_dim, int64_t n_ctx,
                  int n_expert, int k, int64_t n_ff_exp, int64_t n_ff_shexp, float rope_base,
                  float rms_eps) {
  SynthShape s;
  s.preset = std::move(name);
  s.description = std::move(description);
  s.arch = std::move(arch);
  s.n_layer = s.full_layers = n_layer;
  s.n_embd = n_embd;
  s.n_head = n_head;
  s.n_head_kv = n_head_kv;
  s.head_dim = head_dim;
  s.n_ctx = n_ctx;
  s.n_expert = s.full_experts = n_expert;
  s.n_expert_used = k;
  s.n_ff_exp = n_ff_exp;
  s.n_ff_shexp = n_ff_shexp;
  s.rope_freq_base = rope_base;
  s.rms_eps = rms_eps;
  return s;
}

uint64_t MatrixBytes(GgmlType type, int64_t cols, int64_t rows) {
  return RowBytes(type, cols) * static_cast<uint64_t>(rows);
}

// Qwen3.5-397B-A17B with its real layers: 45 gated delta-net layers (16 q/k heads and 64 v heads
// of 128, conv kernel 4) and 15 gated attention layers (32 heads of 256, 2 KV heads, rotary on
// a quarter of each head), every 4th; 512 experts 4096->1024, 10 routed + 1 gated shared.
SynthShape Qwen35Preset() {
  SynthShape s = Preset("qwen3.5-397b-a17b",
                        "Qwen3.5-397B-A17B: its real layers (gated delta-net and gated attention "
                        "every 4th, the real shapes) and experts (512 x 4096->1024, 10 routed + 1 "
                        "gated shared)",
                        "qwen35moe", 60, 4096, 32, 2, 256, 32768, 512, 10, 1024, 1024, 1e7f, 1e-6f);
  s.n_rot = 64;
  s.full_attention_interval = 4;
  s.ssm_conv_kernel = 4;
  s.ssm_state_size = 128;
  s.ssm_k_heads = 16;
  s.ssm_v_heads = 64;
  return s;
}

// DeepSeek-V3 / R1 with its real layers: 3 leading dense layers (FFN 18432), then MoE layers of
// 256 experts 7168->2048 (8 routed in the 4 best of 8 groups, sigmoid with a selection bias,
// scale 2.5) + 1 shared; multi-head latent attention with 128 heads (q rank 1536, kv rank 512,
// 128 + 64 rope key dims, 128 value dims) and YaRN (factor 40 over 4096).
SynthShape DeepSeekV3Preset() {
  SynthShape s = Preset("deepseek-v3",
                        "DeepSeek-V3/R1: its real layers (3 dense, then MoE; multi-head latent "
                        "attention, YaRN) and experts (256 x 7168->2048, 8 routed in 4 of 8 "
                        "groups + 1 shared)",
                        "deepseek2", 61, 7168, 128, 1, 192, 32768, 256, 8, 2048, 2048, 1e4f, 1e-6f);
  s.n_rot = 64;
  s.n_dense_layers = 3;
  s.n_ff_dense = 18432;
  s.mla_q_lora = 1536;
  s.mla_kv_lora = 512;
  s.mla_k_head = 192;
  s.mla_v_head = 128;
  s.expert_groups = 8;
  s.expert_groups_used = 4;
  s.yarn_factor = 40;
  s.yarn_orig_ctx = 4096;
  s.yarn_log_multiplier = 0.1f;
  s.expert_weights_scale = 2.5f;
  return s;
}

}  // namespace

const std::vector<SynthShape>& SynthPresets() {
  // Shapes from the models' published configs (FIELD-NOTES.md has the expert byte sizes).
  static const std::vector<SynthShape> presets = {
      Qwen35Preset(),
      Preset("qwen3-235b-a22b", "Qwen3-235B-A22B (128 x 4096->1536, 8 routed), qwen3moe as is",
             "qwen3moe", 94, 4096, 64, 4, 128, 40960, 128, 8, 1536, 0, 1e6f, 1e-6f),
      Preset("qwen3-30b-a3b", "Qwen3-30B-A3B (128 x 2048->768, 8 routed), qwen3moe as is",
             "qwen3moe", 48, 2048, 32, 4, 128, 40960, 128, 8, 768, 0, 1e6f, 1e-6f),
      Preset("mixtral-8x22b", "Mixtral 8x22B (8 x 6144->16384, 2 routed), llama with experts",
             "llama", 56, 6144, 48, 8, 128, 65536, 8, 2, 16384, 0, 1e6f, 1e-5f),
      DeepSeekV3Preset(),
      Preset("demo",
             "a small Qwen3-MoE-shaped model for the README demo (64 x 1024->512, 4 routed)",
             "qwen3moe", 8, 1024, 16, 4, 64, 4096, 64, 4, 512, 0, 1e6f, 1e-6f),
  };
  return presets;
}

Result<SynthShape> FindSynthPreset(std::string_view name) {
  std::string known;
  for (const SynthShape& s : SynthPresets()) {
    if (s.preset == name) return s;
    known += (known.empty() ? "" : ", ") + s.preset;
  }
  return NotFound("unknown synth preset '", name, "' (presets: ", known, ")");
}

uint64_t SynthShape::expert_bytes() const {
  return 2 * MatrixBytes(expert_type, n_embd, n_ff_exp) +
         MatrixBytes(down_type(), n_ff_exp, n_embd);
}

uint64_t SynthShape::all_expert_bytes() const {
  return static_cast<uint64_t>(moe_layers()) * n_expert * expert_bytes();
}

std::string SynthShape::ToString() const {
  return StrCat(preset, ": ", n_layer, " layers (of ", full_layers, "), ", n_expert,
                " experts (of ", full_experts, ") x ", FormatBytes(expert_bytes()), " ",
                TypeName(expert_type), ", k=", n_expert_used, n_ff_shexp > 0 ? " + shared" : "",
                ", n_embd ", n_embd, ", ", arch);
}

Result<SynthShape> ScaleSynthShape(const SynthShape& preset, const SynthScale& scale) {
  SynthShape s = preset;
  if (scale.layers < 0 || scale.layers > preset.full_layers) {
    return InvalidArgument("--layers ", scale.layers, ": ", preset.preset, " has ",
                           preset.full_layers, " layers (synth scales down, 1..",
                           preset.full_layers, ")");
  }
  if (scale.experts < 0 || scale.experts > preset.full_experts) {
    return InvalidArgument("--experts ", scale.experts, ": ", preset.preset, " has ",
                           preset.full_experts, " experts per layer (synth scales down, ",
                           preset.n_expert_used, "..", preset.full_experts, ")");
  }
  if (scale.layers > 0) s.n_layer = scale.layers;
  if (s.n_layer <= s.n_dense_layers) {
    return InvalidArgument("--layers ", s.n_layer, ": ", preset.preset, "'s first ",
                           s.n_dense_layers, " layers are dense; keep at least ",
                           s.n_dense_layers + 1, " so some experts remain");
  }
  if (scale.experts > 0) s.n_expert = scale.experts;
  if (s.n_expert < s.n_expert_used) {
    return InvalidArgument("--experts ", s.n_expert, " is below the ", s.n_expert_used,
                           " experts every token uses in ", preset.preset);
  }
  if (scale.quant.has_value()) s.expert_type = *scale.quant;
  if (scale.quant_down.has_value()) s.expert_down_type = *scale.quant_down;
  if (scale.dense_quant.has_value()) {
    s.dense_type = *scale.dense_quant;
    if (!IsSupportedWeightType(s.dense_type)) {
      return InvalidArgument("--dense-quant ", TypeName(s.dense_type),
                             " is not a type the kernels compute with");
    }
  }
  if (s.down_type() != s.expert_type &&
      (!IsSupportedWeightType(s.down_type()) || s.down_type() == GgmlType::kF32 ||
       !IsValidRowLength(s.down_type(), s.n_ff_exp))) {
    return InvalidArgument("--quant-down ", TypeName(s.down_type()), ": not a quantized type with ",
                           "whole blocks in rows of ", s.n_ff_exp);
  }
  if (!IsSupportedWeightType(s.expert_type) || s.expert_type == GgmlType::kF32) {
    return InvalidArgument("--quant ", TypeName(s.expert_type),
                           " is not a quantized type the kernels compute with");
  }
  if (!IsValidRowLength(s.expert_type, s.n_embd) || !IsValidRowLength(s.expert_type, s.n_ff_exp)) {
    return InvalidArgument("--quant ", TypeName(s.expert_type), ": rows of ", s.n_embd, " and ",
                           s.n_ff_exp, " elements are not whole ", TypeName(s.expert_type),
                           " blocks");
  }
  return s;
}

}  // namespace sluice
