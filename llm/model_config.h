// ModelConfig: the blueprint of a MoE model (shapes and hyper-parameters), read from the model's
// metadata through its architecture's key prefix. No weights, no run state.
//
// Non-goals: per-layer varying shapes (head counts given as arrays), sliding-window attention,
// LongRoPE: each is refused at load with Unsupported naming the key.
// Thread-safety: a plain value.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "core/base/status.h"
#include "io/metadata.h"
#include "llm/arch_spec.h"
#include "moe/moe_layer.h"

namespace sluice {

// The longest context a model may declare or a run may ask for (16.7M positions, 16x the longest
// context of any model we know): every size computed from a context length stays far inside
// uint64_t with the other limits of the config.
inline constexpr int64_t kMaxContextLength = int64_t{1} << 24;

// The gated delta-net layers of hybrid models (ssm.* keys).
struct DeltaNetShape {
  int conv_kernel = 0;  // ssm.conv_kernel (K): taps of the causal depthwise convolution
  int state_size = 0;   // ssm.state_size (ds): head size of q, k and v
  int n_k_heads = 0;    // ssm.group_count (nk): q and k heads
  int n_v_heads = 0;    // ssm.time_step_rank (nv): v heads, one recurrent state each
  int64_t conv_dim() const { return int64_t{2 * n_k_heads + n_v_heads} * state_size; }
  int64_t v_dim() const { return int64_t{n_v_heads} * state_size; }  // ssm.inner_size
  // Floats of one sequence's state per layer: the last K-1 conv inputs and nv ds x ds matrices.
  int64_t state_floats() const {
    return int64_t{conv_kernel - 1} * conv_dim() + int64_t{n_v_heads} * state_size * state_size;
  }
};

// DeepSeek's multi-head latent attention (attention.*_lora_rank, *_mla keys). In the absorbed
// form the engine runs, each position caches one vector [k_pe (rope) | c (kv_lora)] and c again
// as the value: key_length = kv_lora + rope, value_length = kv_lora, head_count_kv = 1.
struct MlaShape {
  int q_lora = 0;   // attention.q_lora_rank (0: q projected directly, attn_q)
  int kv_lora = 0;  // attention.kv_lora_rank: the cached latent c
  int nope = 0;     // key_length_mla - rope: the head dims without position
  int rope = 0;     // rope.dimension_count: the shared rotary key's dims
  int v_head = 0;   // attention.value_length_mla
};

struct ModelConfig {
  const ArchSpec* spec = nullptr;  // the architecture (never null in a loaded config)
  std::string arch;                // general.architecture

  int64_t n_vocab = 0;      // token count (tokenizer.ggml.tokens, or <arch>.vocab_size)
  int64_t n_embd = 0;       // hidden size (embedding_length)
  int n_layer = 0;          // layers run: block_count - nextn_predict_layers
  int n_layer_file = 0;     // block_count: layers in the file (the MTP layers after n_layer)
  int n_dense_layers = 0;   // leading_dense_block_count: layers 0.. with a dense FFN, no experts
  int64_t n_ff = 0;         // feed_forward_length: the dense layers' FFN width (0 without them)
  int n_head = 0;           // attention.head_count
  int n_head_kv = 0;        // attention.head_count_kv (default n_head)
  int head_dim_k = 0;       // attention.key_length (default n_embd / n_head)
  int head_dim_v = 0;       // attention.value_length (default head_dim_k)
  int n_rot = 0;            // rope.dimension_count (default head_dim_k)
  int64_t n_ctx_train = 0;  // context_length: the longest context the model was trained on

  int n_expert = 0;         // expert_count: routed experts per layer
  int n_expert_used = 0;    // expert_used_count: experts per token (k)
  int64_t n_ff_exp = 0;     // hidden size of one routed expert
  int n_expert_shared = 0;  // shared experts per layer (0 or the count packed in the shexp tensors)
  int64_t n_ff_shexp = 0;   // hidden size of the shared-expert tensors (all shared experts packed)
  int n_expert_groups = 1;  // expert_group_count: routing picks groups first, then experts
  int n_expert_groups_used = 1;  // expert_group_used_count

  float rms_eps = 1e-6f;            // attention.layer_norm_rms_epsilon
  float rope_freq_base = 10000.0f;  // rope.freq_base
  float rope_freq_scale = 1.0f;     // 1 / rope.scaling.factor (linear scaling), else 1
  float yarn_factor = 0.0f;         // rope.scaling.factor with type yarn, else 0
  int64_t yarn_orig_ctx = 0;        // rope.scaling.original_context_length
  float yarn_beta_fast = 32.0f, yarn_beta_slow = 1.0f;
  float yarn_log_multiplier = 0.0f;          // rope.scaling.yarn_log_multiplier (DeepSeek)
  float attn_scale = 0.0f;                   // q.k multiplier: 1/sqrt(head_dim_k), or MLA's
  MlaShape mla;                              // MLA models only
  GatingFunc gating = GatingFunc::kSoftmax;  // spec default or expert_gating_func
  bool norm_topk = true;                     // spec default or expert_weights_norm
  float expert_weights_scale = 1.0f;         // expert_weights_scale (routed output multiplier)

  int64_t sliding_window = 0;  // windowed layers attend to this many positions (0: none)
  bool is_windowed_layer(int layer) const {
    return sliding_window > 0 && spec->sliding_window_even_layers && layer % 2 == 0;
  }
  int full_attention_interval = 1;  // hybrid models: every Nth layer is full attention
  DeltaNetShape delta_net;          // the other layers' shape (zero when not hybrid)

  bool is_attention_layer(int layer) const { return (layer + 1) % full_attention_interval == 0; }
  int n_attention_layers() const { return n_layer / full_attention_interval; }
  int n_delta_net_layers() const { return n_layer - n_attention_layers(); }
  // A full-attention layer's index among them (its KV cache layer); a delta-net layer's among
  // the delta-net layers (its recurrent state).
  int kv_layer(int layer) const { return (layer + 1) / full_attention_interval - 1; }
  int state_layer(int layer) const { return layer - (layer + 1) / full_attention_interval; }

  int64_t q_dim() const { return int64_t{n_head} * head_dim_k; }                     // queries
  int64_t q_rows() const { return spec->attn_output_gate ? 2 * q_dim() : q_dim(); }  // of Wq
  int64_t k_dim() const { return int64_t{n_head_kv} * head_dim_k; }                  // rows of Wk
  int64_t v_dim() const { return int64_t{n_head_kv} * head_dim_v; }                  // rows of Wv
  int64_t attn_out_dim() const { return int64_t{n_head} * head_dim_v; }              // cols of Wo
  bool has_shared_expert() const { return n_ff_shexp > 0; }
  bool is_moe_layer(int layer) const { return layer >= n_dense_layers; }
  MoeShape moe() const {
    return MoeShape{.n_embd = n_embd,
                    .n_expert = n_expert,
                    .n_ff_exp = n_ff_exp,
                    .n_ff_shexp = n_ff_shexp,
                    .gating = gating,
                    .norm_topk = norm_topk,
                    .expert_weights_scale = expert_weights_scale,
                    .n_groups = n_expert_groups,
                    .n_groups_used = n_expert_groups_used,
                    .oai_swiglu = spec->oai_swiglu};
  }
  RopeParams rope() const {
    return RopeParams{.layout = spec->rope_layout,
                      .head_dim = head_dim_k,
                      .n_rot = n_rot,
                      .freq_base = rope_freq_base,
                      .freq_scale = rope_freq_scale,
                      .yarn_factor = yarn_factor,
                      .yarn_orig_ctx = yarn_orig_ctx,
                      .yarn_beta_fast = yarn_beta_fast,
                      .yarn_beta_slow = yarn_beta_slow,
                      .mscale = yarn_factor > 0 && spec->yarn_scales_cos_sin
                                    ? 1.0f + 0.1f * std::log(yarn_factor)
                                    : 1.0f};
  }
};

// Reads and validates the config. Errors name the metadata source and the key, with the value
// found and what was expected (e.g. "expert_used_count 12 > expert_count 8").
Result<ModelConfig> ReadModelConfig(const Metadata& metadata);

// "qwen3moe: 2 layers, n_embd 64, 4/2 heads x 16, 8 experts (2 used) x 32, vocab 299, ctx 256".
std::string DescribeConfig(const ModelConfig& config);

}  // namespace sluice
