#include "moe/router.h"

#include <cmath>
#include <vector>

#include "core/ops/activation.h"

namespace sluice {
namespace {

// Keeps the n_groups_used groups with the largest sum of their two best scores (ties: lower group
// first) and sets every other expert's score to -inf.
void ExcludeGroups(const RouterParams& p, std::vector<float>& scores) {
  const int n = static_cast<int>(scores.size());
  const int per_group = n / p.n_groups;
  // Per token and layer: reused, not allocated each time.
  thread_local std::vector<float> group_score;
  thread_local std::vector<bool> keep;
  group_score.assign(p.n_groups, 0.0f);
  for (int g = 0; g < p.n_groups; ++g) {
    float best = -INFINITY, second = -INFINITY;
    for (int e = g * per_group; e < (g + 1) * per_group; ++e) {
      if (scores[e] > best) {
        second = best;
        best = scores[e];
      } else if (scores[e] > second) {
        second = scores[e];
      }
    }
    group_score[g] = per_group > 1 ? best + second : best;
  }
  keep.assign(p.n_groups, false);
  for (int i = 0; i < p.n_groups_used; ++i) {
    int best = -1;
    for (int g = 0; g < p.n_groups; ++g) {
      if (!keep[g] && (best < 0 || group_score[g] > group_score[best])) best = g;
    }
    keep[best] = true;
  }
  for (int e = 0; e < n; ++e) {
    if (!keep[e / per_group]) scores[e] = -INFINITY;
  }
}

}  // namespace

const char* GatingFuncName(GatingFunc gating) {
  switch (gating) {
    case GatingFunc::kSoftmax:
      return "softmax";
    case GatingFunc::kSigmoid:
      return "sigmoid";
  }
  return "?";
}

void ComputeRoute(const RouterParams& params, std::span<float> logits, Route* route,
                  const float* selection_bias) {
  const int n = static_cast<int>(logits.size());
  CHECK(params.k >= 1 && params.k <= n && params.k <= kMaxExpertsPerToken)
      << "k " << params.k << " of " << n;
  float* probs = logits.data();
  if (params.gating == GatingFunc::kSoftmax) {
    Softmax(probs, n);
  } else {
    for (int e = 0; e < n; ++e) probs[e] = Sigmoid(probs[e]);
  }
  // The scores experts are chosen by; -inf marks one a group step ruled out.
  const float* sel = probs;
  thread_local std::vector<float> scores;
  if (selection_bias != nullptr || params.n_groups > 1) {
    scores.assign(probs, probs + n);
    if (selection_bias != nullptr) {
      for (int e = 0; e < n; ++e) scores[e] += selection_bias[e];
    }
    if (params.n_groups > 1) ExcludeGroups(params, scores);
    sel = scores.data();
  }
  // Selection by repeated max: k is at most 16 and n at most a few hundred, and it keeps the
  // tie rule (lower id first) explicit.
  route->k = params.k;
  for (int i = 0; i < params.k; ++i) {
    int best = -1;
    for (int e = 0; e < n; ++e) {
      bool taken = false;
      for (int j = 0; j < i; ++j) taken |= route->ids[j] == e;
      if (taken) continue;
      if (best < 0 || sel[e] > sel[best]) best = e;
    }
    route->ids[i] = best;
    route->weights[i] = probs[best];
  }
  if (params.norm_topk) {
    float sum = 0.0f;
    for (int i = 0; i < params.k; ++i) sum += route->weights[i];
    for (int i = 0; i < params.k; ++i) route->weights[i] /= sum;
  }
  if (params.scale != 1.0f) {
    for (int i = 0; i < params.k; ++i) route->weights[i] *= params.scale;
  }
}

Status ValidateRoute(const Route& route, int max_k, int n_expert, int layer, int64_t token) {
  if (route.k < 1 || route.k > max_k) {
    return InvalidArgument("routing hook gave layer ", layer, " token ", token, " k = ", route.k,
                           ", expected 1..", max_k);
  }
  for (int i = 0; i < route.k; ++i) {
    if (route.ids[i] < 0 || route.ids[i] >= n_expert) {
      return InvalidArgument("routing hook gave layer ", layer, " token ", token, " expert ",
                             route.ids[i], ", expected 0..", n_expert - 1);
    }
    if (!std::isfinite(route.weights[i])) {
      return InvalidArgument("routing hook gave layer ", layer, " token ", token,
                             " a non-finite weight for expert ", route.ids[i]);
    }
    for (int j = 0; j < i; ++j) {
      if (route.ids[j] == route.ids[i]) {
        return InvalidArgument("routing hook gave layer ", layer, " token ", token, " expert ",
                               route.ids[i], " twice");
      }
    }
  }
  return Status::Ok();
}

}  // namespace sluice
