// The router: from a token's router logits to its Route (expert ids and mixing weights).
//   probs = softmax(logits) over all experts   (or sigmoid per expert)
//   sel   = probs + selection_bias             (when the layer has one; else probs)
//   groups (n_groups > 1): experts split into n_groups consecutive groups, a group's score the
//           sum of its two largest sel; only the n_groups_used best groups stay eligible
//   ids   = the k largest sel among the eligible, in decreasing order (ties: lower id first)
//   w     = probs[ids] (never the bias), divided by their sum when norm_topk, times `scale`
// Mixtral's "softmax over the top-2 logits" is the same as softmax-then-top-2-renormalised.
// Thread-safety: pure functions.
#pragma once

#include <span>

#include "core/base/status.h"
#include "moe/routing_hook.h"

namespace sluice {

// How router logits become expert probabilities.
enum class GatingFunc {
  kSoftmax = 1,  // softmax over all experts (Qwen, Mixtral); GGUF expert_gating_func = 1
  kSigmoid = 2,  // independent sigmoid per expert (DeepSeek-V3); GGUF expert_gating_func = 2
};
const char* GatingFuncName(GatingFunc gating);

struct RouterParams {
  GatingFunc gating = GatingFunc::kSoftmax;
  bool norm_topk = true;
  float scale = 1.0f;  // expert_weights_scale
  int k = 0;           // experts per token, 1..min(n_expert, kMaxExpertsPerToken)
  int n_groups = 1;    // 1: no group step; else divides n_expert
  int n_groups_used = 1;
};

// logits: (n_expert), overwritten with the probabilities the route was chosen from.
// selection_bias: (n_expert) or null.
void ComputeRoute(const RouterParams& params, std::span<float> logits, Route* route,
                  const float* selection_bias = nullptr);

// After a RoutingHook rewrote a route: InvalidArgument unless 1 <= k <= max_k, every id in
// [0, n_expert) and distinct, and every weight finite.
Status ValidateRoute(const Route& route, int max_k, int n_expert, int layer, int64_t token);

}  // namespace sluice
