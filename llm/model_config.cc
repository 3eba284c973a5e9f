#include "llm/model_config.h"

#include <cmath>

#include "moe/routing_hook.h"

namespace sluice {
namespace {

// Reads "<arch>.<key>" as a positive int no larger than `max`, or `fallback` when absent
// (fallback < 0: the key is required).
class KeyReader {
 public:
  KeyReader(const Metadata& md, const std::string& arch) : md_(md), prefix_(arch + ".") {}

  std::string Key(std::string_view key) const { return prefix_ + std::string(key); }

  Result<int64_t> Int(std::string_view key, int64_t fallback, int64_t min, int64_t max) const {
    const std::string full = Key(key);
    int64_t value = fallback;
    if (md_.Has(full)) {
      ASSIGN_OR_RETURN(uint64_t v, md_.GetUint(full));
      if (v > static_cast<uint64_t>(max)) return OutOfRange(full, std::to_string(v), min, max);
      value = static_cast<int64_t>(v);
    } else if (fallback < 0) {
      return NotFound(md_.source(), ": metadata key ", full, " is missing (the ", prefix_,
                      " architecture needs it)");
    }
    if (value < min || value > max) return OutOfRange(full, std::to_string(value), min, max);
    return value;
  }

  Result<float> Float(std::string_view key, double fallback) const {
    ASSIGN_OR_RETURN(double v, md_.GetFloatOr(Key(key), fallback));
    if (!std::isfinite(v)) {
      return Corrupt(md_.source(), ": metadata key ", Key(key), " is not finite (", v, ")");
    }
    return static_cast<float>(v);
  }

 private:
  Status OutOfRange(const std::string& key, const std::string& found, int64_t min,
                    int64_t max) const {
    return Corrupt(md_.source(), ": metadata key ", key, " = ", found, ", expected ", min, "..",
                   max);
  }
  const Metadata& md_;
  std::string prefix_;
};

// Limits on shapes: generous for every real model, small enough that products of them cannot
// overflow int64 and bad files cannot make us allocate absurd buffers before tensors are checked.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxLayers = 1024;
constexpr int64_t kMaxExperts = 4096;
constexpr int64_t kMaxHeads = 1024;

Status ReadRopeScaling(const Metadata& md, const KeyReader& keys, ModelConfig& c) {
  ASSIGN_OR_RETURN(std::string type, md.GetStringOr(keys.Key("rope.scaling.type"), "none"));
  ASSIGN_OR_RETURN(float factor, keys.Float("rope.scaling.factor", 0.0));
  ASSIGN_OR_RETURN(float legacy_linear, keys.Float("rope.scale_linear", 0.0));
  if (type == "none" && legacy_linear > 0) {
    type = "linear";
    factor = legacy_linear;
  }
  if (type == "none") return Status::Ok();
  if (type == "yarn") {
    if (!(factor > 0)) {
      return Corrupt(md.source(), ": YaRN rope scaling needs ", keys.Key("rope.scaling.factor"),
                     " > 0, found ", factor);
    }
    ASSIGN_OR_RETURN(int64_t orig,
                     keys.Int("rope.scaling.original_context_length", -1, 1, kMaxContextLength));
    ASSIGN_OR_RETURN(c.yarn_beta_fast, keys.Float("rope.scaling.yarn_beta_fast", 32.0));
    ASSIGN_OR_RETURN(c.yarn_beta_slow, keys.Float("rope.scaling.yarn_beta_slow", 1.0));
    ASSIGN_OR_RETURN(c.yarn_log_multiplier, keys.Float("rope.scaling.yarn_log_multiplier", 0.0));
    if (!(c.yarn_beta_fast > 0 && c.yarn_beta_slow > 0)) {
      return Corrupt(md.source(), ": YaRN betas must be > 0, found ", c.yarn_beta_fast, " and ",
                     c.yarn_beta_slow);
    }
    c.yarn_factor = factor;
    c.yarn_orig_ctx = orig;
    return Status::Ok();
  }
  if (type != "linear") {
    return Unsupported(md.source(), ": ", keys.Key("rope.scaling.type"), " = '", type,
                       "' (linear and yarn rope scaling are supported)");
  }
  if (!(factor > 0)) {
    return Corrupt(md.source(), ": linear rope scaling needs ", keys.Key("rope.scaling.factor"),
                   " > 0, found ", factor);
  }
  c.rope_freq_scale = 1.0f / factor;
  return Status::Ok();
}

Status ReadRouting(const Metadata& md, const KeyReader& keys, ModelConfig& c) {
  c.gating = c.spec->gating;
  if (md.Has(keys.Key("expert_gating_func"))) {
    ASSIGN_OR_RETURN(uint64_t g, md.GetUint(keys.Key("expert_gating_func")));
    if (g != 1 && g != 2) {
      return Unsupported(md.source(), ": ", keys.Key("expert_gating_func"), " = ", g,
                         " (expected 1 = softmax or 2 = sigmoid)");
    }
    c.gating = static_cast<GatingFunc>(g);
  }
  ASSIGN_OR_RETURN(c.norm_topk, md.GetBoolOr(keys.Key("expert_weights_norm"), c.spec->norm_topk));
  ASSIGN_OR_RETURN(c.expert_weights_scale, keys.Float("expert_weights_scale", 1.0));
  if (c.expert_weights_scale == 0.0f) c.expert_weights_scale = 1.0f;  // 0 means "not set" in GGUF
  return Status::Ok();
}

Status ReadDeltaNet(const Metadata& md, const KeyReader& keys, ModelConfig& c) {
  // Above block_count (a model cut to its first layers): every layer is a delta-net layer.
  ASSIGN_OR_RETURN(int64_t interval, keys.Int("full_attention_interval", 4, 1, kMaxLayers));
  ASSIGN_OR_RETURN(int64_t kernel, keys.Int("ssm.conv_kernel", -1, 1, 64));
  ASSIGN_OR_RETURN(int64_t ds, keys.Int("ssm.state_size", -1, 1, 1024));
  ASSIGN_OR_RETURN(int64_t nk, keys.Int("ssm.group_count", -1, 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t nv, keys.Int("ssm.time_step_rank", -1, 1, kMaxHeads));
  if (nv % nk != 0) {
    return Corrupt(md.source(), ": ", keys.Key("ssm.time_step_rank"), " = ", nv,
                   " is not a multiple of ", keys.Key("ssm.group_count"), " = ", nk);
  }
  ASSIGN_OR_RETURN(int64_t inner, keys.Int("ssm.inner_size", nv * ds, 1, kMaxDim));
  if (inner != nv * ds) {
    return Corrupt(md.source(), ": ", keys.Key("ssm.inner_size"), " = ", inner, ", expected ",
                   keys.Key("ssm.time_step_rank"), " x ", keys.Key("ssm.state_size"), " = ",
                   nv * ds);
  }
  c.full_attention_interval = static_cast<int>(interval);
  c.delta_net = DeltaNetShape{.conv_kernel = static_cast<int>(kernel),
                              .state_size = static_cast<int>(ds),
                              .n_k_heads = static_cast<int>(nk),
                              .n_v_heads = static_cast<int>(nv)};
  return Status::Ok();
}

Status ReadMla(const Metadata& md, const KeyReader& keys, ModelConfig& c) {
  ASSIGN_OR_RETURN(int64_t q_lora, keys.Int("attention.q_lora_rank", 0, 0, kMaxDim));
  ASSIGN_OR_RETURN(int64_t kv_lora, keys.Int("attention.kv_lora_rank", -1, 1, kMaxDim));
  ASSIGN_OR_RETURN(int64_t k_mla, keys.Int("attention.key_length_mla", -1, 1, 4096));
  ASSIGN_OR_RETURN(int64_t v_mla, keys.Int("attention.value_length_mla", -1, 1, 4096));
  if (c.n_head_kv != 1 || c.head_dim_k != kv_lora + c.n_rot || c.head_dim_v != kv_lora) {
    return Unsupported(md.source(), ": MLA in the absorbed form needs head_count_kv = 1, ",
                       keys.Key("attention.key_length"), " = kv_lora_rank + rope dims (",
                       kv_lora + c.n_rot, ") and value_length = kv_lora_rank (", kv_lora,
                       "); found ", c.n_head_kv, ", ", c.head_dim_k, ", ", c.head_dim_v,
                       " (a file from an older converter: re-convert it)");
  }
  if (k_mla <= c.n_rot) {
    return Corrupt(md.source(), ": ", keys.Key("attention.key_length_mla"), " = ", k_mla,
                   " must exceed the rope dims ", c.n_rot);
  }
  c.mla = MlaShape{.q_lora = static_cast<int>(q_lora),
                   .kv_lora = static_cast<int>(kv_lora),
                   .nope = static_cast<int>(k_mla - c.n_rot),
                   .rope = c.n_rot,
                   .v_head = static_cast<int>(v_mla)};
  // The scores use q.k over the MLA head (nope + rope), with YaRN's magnitude factor squared
  // (the converter writes 0.1 * mscale_all_dim as the log multiplier).
  double m = 1.0;
  if (c.yarn_factor > 0 && c.yarn_log_multiplier > 0) {
    m = 1.0 + c.yarn_log_multiplier * std::log(static_cast<double>(c.yarn_factor));
  }
  c.attn_scale = static_cast<float>(m * m / std::sqrt(static_cast<double>(k_mla)));
  return Status::Ok();
}

Result<int64_t> ReadVocabSize(const Metadata& md, const KeyReader& keys) {
  if (md.Has(keys.Key("vocab_size"))) return keys.Int("vocab_size", -1, 1, int64_t{1} << 24);
  const MetaValue* tokens = md.Find("tokenizer.ggml.tokens");
  if (tokens == nullptr || tokens->type != MetaType::kArray) {
    return NotFound(md.source(), ": neither ", keys.Key("vocab_size"),
                    " nor the tokenizer.ggml.tokens array is present (vocabulary size unknown)");
  }
  if (tokens->ArraySize() == 0) {
    return Corrupt(md.source(), ": tokenizer.ggml.tokens is empty");
  }
  return static_cast<int64_t>(tokens->ArraySize());
}

}  // namespace

Result<ModelConfig> ReadModelConfig(const Metadata& md) {
  ModelConfig c;
  ASSIGN_OR_RETURN(c.arch, md.GetString("general.architecture"));
  ASSIGN_OR_RETURN(c.spec, FindArchSpec(c.arch));
  const KeyReader keys(md, c.arch);

  ASSIGN_OR_RETURN(c.n_vocab, ReadVocabSize(md, keys));
  ASSIGN_OR_RETURN(c.n_embd, keys.Int("embedding_length", -1, 1, kMaxDim));
  ASSIGN_OR_RETURN(int64_t n_layer, keys.Int("block_count", -1, 1, kMaxLayers));
  ASSIGN_OR_RETURN(int64_t n_head, keys.Int("attention.head_count", -1, 1, kMaxHeads));
  ASSIGN_OR_RETURN(int64_t n_head_kv, keys.Int("attention.head_count_kv", n_head, 1, n_head));
  if (n_head % n_head_kv != 0) {
    return Corrupt(md.source(), ": ", keys.Key("attention.head_count"), " = ", n_head,
                   " is not a multiple of ", keys.Key("attention.head_count_kv"), " = ", n_head_kv);
  }
  // Multi-token-prediction layers (GLM-4.5's NextN) follow the model's layers in the file; the
  // engine does not run them (neither does llama.cpp).
  ASSIGN_OR_RETURN(int64_t n_nextn, keys.Int("nextn_predict_layers", 0, 0, n_layer - 1));
  c.n_layer_file = static_cast<int>(n_layer);
  c.n_layer = static_cast<int>(n_layer - n_nextn);
  ASSIGN_OR_RETURN(int64_t n_dense, keys.Int("leading_dense_block_count", 0, 0, c.n_layer - 1));
  c.n_dense_layers = static_cast<int>(n_dense);
  if (n_dense > 0) {
    ASSIGN_OR_RETURN(c.n_ff, keys.Int("feed_forward_length", -1, 1, kMaxDim));
  }
  c.n_head = static_cast<int>(n_head);
  c.n_head_kv = static_cast<int>(n_head_kv);
  const int64_t default_head_dim = c.n_embd % n_head == 0 ? c.n_embd / n_head : -1;
  ASSIGN_OR_RETURN(int64_t hd_k, keys.Int("attention.key_length", default_head_dim, 1, 4096));
  ASSIGN_OR_RETURN(int64_t hd_v, keys.Int("attention.value_length", hd_k, 1, 4096));
  ASSIGN_OR_RETURN(int64_t n_rot, keys.Int("rope.dimension_count", hd_k, 2, hd_k));
  if (n_rot % 2 != 0) {
    return Corrupt(md.source(), ": ", keys.Key("rope.dimension_count"), " = ", n_rot,
                   " must be even");
  }
  c.head_dim_k = static_cast<int>(hd_k);
  c.head_dim_v = static_cast<int>(hd_v);
  c.n_rot = static_cast<int>(n_rot);
  ASSIGN_OR_RETURN(c.n_ctx_train, keys.Int("context_length", -1, 1, kMaxContextLength));

  ASSIGN_OR_RETURN(int64_t n_expert, keys.Int("expert_count", 0, 0, kMaxExperts));
  if (n_expert == 0) {
    return Unsupported(md.source(), ": ", keys.Key("expert_count"),
                       " is 0 or missing: a dense model; sluice runs mixture-of-experts models");
  }
  ASSIGN_OR_RETURN(int64_t n_used, keys.Int("expert_used_count", -1, 1, n_expert));
  if (n_used > kMaxExpertsPerToken) {
    return Unsupported(md.source(), ": ", keys.Key("expert_used_count"), " = ", n_used,
                       " exceeds the engine's limit of ", kMaxExpertsPerToken);
  }
  c.n_expert = static_cast<int>(n_expert);
  c.n_expert_used = static_cast<int>(n_used);
  ASSIGN_OR_RETURN(int64_t n_groups, keys.Int("expert_group_count", 1, 1, n_expert));
  ASSIGN_OR_RETURN(int64_t n_groups_used,
                   keys.Int("expert_group_used_count", n_groups, 1, n_groups));
  if (n_expert % n_groups != 0) {
    return Corrupt(md.source(), ": ", keys.Key("expert_group_count"), " = ", n_groups,
                   " does not divide ", keys.Key("expert_count"), " = ", n_expert);
  }
  if (n_used > n_groups_used * (n_expert / n_groups)) {
    return Corrupt(md.source(), ": ", keys.Key("expert_used_count"), " = ", n_used, " exceeds the ",
                   n_groups_used * (n_expert / n_groups), " experts of the groups routing may use");
  }
  c.n_expert_groups = static_cast<int>(n_groups);
  c.n_expert_groups_used = static_cast<int>(n_groups_used);
  ASSIGN_OR_RETURN(c.n_ff_exp, keys.Int(c.spec->expert_ff_key, -1, 1, kMaxDim));

  if (c.spec->shared_expert != SharedExpertKind::kNone) {
    ASSIGN_OR_RETURN(int64_t n_shared, keys.Int("expert_shared_count", 1, 1, 64));
    ASSIGN_OR_RETURN(int64_t ff_shared, keys.Int(c.spec->shared_ff_key, c.n_ff_exp, 1, kMaxDim));
    c.n_expert_shared = static_cast<int>(n_shared);
    // GGUF packs all shared experts into one matrix of n_shared * ff columns only when the key
    // gives the per-expert size (DeepSeek); Qwen's key already gives the packed size.
    c.n_ff_shexp =
        c.spec->shared_expert == SharedExpertKind::kPlain ? n_shared * ff_shared : ff_shared;
  }

  ASSIGN_OR_RETURN(c.rms_eps, keys.Float("attention.layer_norm_rms_epsilon", 1e-6));
  if (!(c.rms_eps > 0)) {
    return Corrupt(md.source(), ": ", keys.Key("attention.layer_norm_rms_epsilon"), " = ",
                   c.rms_eps, ", expected > 0");
  }
  ASSIGN_OR_RETURN(c.rope_freq_base, keys.Float("rope.freq_base", 10000.0));
  if (!(c.rope_freq_base > 1)) {
    return Corrupt(md.source(), ": ", keys.Key("rope.freq_base"), " = ", c.rope_freq_base,
                   ", expected > 1");
  }
  RETURN_IF_ERROR(ReadRopeScaling(md, keys, c));
  RETURN_IF_ERROR(ReadRouting(md, keys, c));
  if (c.spec->delta_net != DeltaNetKind::kNone) RETURN_IF_ERROR(ReadDeltaNet(md, keys, c));
  c.attn_scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim_k));
  if (c.spec->sliding_window_even_layers) {
    ASSIGN_OR_RETURN(c.sliding_window,
                     keys.Int("attention.sliding_window", -1, 1, kMaxContextLength));
  }
  if (c.spec->attention == AttentionKind::kMla) RETURN_IF_ERROR(ReadMla(md, keys, c));
  if (c.spec->attn_output_gate && c.head_dim_v != c.head_dim_k) {
    return Unsupported(md.source(), ": an attention output gate needs ",
                       keys.Key("attention.value_length"), " = key_length (found ", c.head_dim_v,
                       " and ", c.head_dim_k, ")");
  }
  return c;
}

std::string DescribeConfig(const ModelConfig& c) {
  std::string s = StrCat(c.arch, ": ", c.n_layer, " layers");
  if (c.n_dense_layers > 0) s += StrCat(" (", c.n_dense_layers, " dense, FFN ", c.n_ff, ")");
  if (c.n_layer_file > c.n_layer) s += StrCat(" + ", c.n_layer_file - c.n_layer, " MTP (not run)");
  s += StrCat(", n_embd ", c.n_embd, ", ", c.n_head, "/", c.n_head_kv, " heads x ", c.head_dim_k,
              ", ", c.n_expert, " experts (", c.n_expert_used, " used) x ", c.n_ff_exp);
  if (c.has_shared_expert()) s += StrCat(" + shared x ", c.n_ff_shexp);
  if (c.spec->delta_net != DeltaNetKind::kNone) {
    s += StrCat(", ", c.n_delta_net_layers(), " delta-net layers (", c.delta_net.n_k_heads, "/",
                c.delta_net.n_v_heads, " heads x ", c.delta_net.state_size, ") + ",
                c.n_attention_layers(), " attention");
  }
  s += StrCat(", vocab ", c.n_vocab, ", trained ctx ", c.n_ctx_train);
  return s;
}

}  // namespace sluice
