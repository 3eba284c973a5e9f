// What the MoE block needs to know of a model: the shape of its MoE layers (MoeShape, taken from
// the model's config) and the resident weights of one layer (MoeLayerWeights: router and shared
// expert; the routed experts come through the ExpertSource). Plain data; llm/ fills both.
//
// Thread-safety: plain values.
#pragma once

#include <array>
#include <cstdint>

#include "core/base/ggml_type.h"
#include "core/ops/linear.h"
#include "moe/router.h"

namespace sluice {

struct MoeShape {
  int64_t n_embd = 0;      // hidden size
  int n_expert = 0;        // routed experts per layer
  int64_t n_ff_exp = 0;    // hidden size of one routed expert
  int64_t n_ff_shexp = 0;  // hidden size of the shared expert tensors (0: none)
  GatingFunc gating = GatingFunc::kSoftmax;
  bool norm_topk = true;              // renormalise the k selected probabilities
  float expert_weights_scale = 1.0f;  // routed output multiplier
  int n_groups = 1;                   // experts in n_groups consecutive groups: route within the
  int n_groups_used = 1;              // n_groups_used best ones (DeepSeek-V3)
  bool oai_swiglu = false;            // routed experts use gpt-oss's clamped SwiGLU
  bool has_shared_expert() const { return n_ff_shexp > 0; }
};

// A layer's routed experts' types: gate, up, down.
using ExpertTypes = std::array<GgmlType, 3>;

struct MoeLayerWeights {
  Matrix router;                            // (n_expert, n_embd)
  Matrix shexp_gate;                        // (n_ff_shexp, n_embd) or empty
  Matrix shexp_up;                          // (n_ff_shexp, n_embd) or empty
  Matrix shexp_down;                        // (n_embd, n_ff_shexp) or empty
  const float* shexp_gate_inp = nullptr;    // (n_embd) or null: sigmoid gate of the shared expert
  const float* selection_bias = nullptr;    // (n_expert) or null: exp_probs_b, chooses experts only
  const float* router_bias = nullptr;       // (n_expert) or null: added to the router logits
  const float* expert_gate_bias = nullptr;  // (n_expert, n_ff_exp) or null (gpt-oss)
  const float* expert_up_bias = nullptr;    // (n_expert, n_ff_exp) or null
  const float* expert_down_bias = nullptr;  // (n_expert, n_embd) or null
  ExpertTypes expert_types{};               // routed experts' gate, up, down types
};

}  // namespace sluice
