#include "moe/read_ahead.h"

#include <span>

#include "moe/moe_block.h"

namespace sluice {

bool ReadAhead::enabled() const {
  return max_reads_ > 0 && source_->reads_ahead() && source_->max_ahead() >= 3 * router_.k;
}

void ReadAhead::Guess(int layer, const MoeLayerWeights& weights, const float* xb, int64_t token,
                      float* router_logits, int n_expert, ThreadPool* pool) {
  Route& p = guess_;
  if (hook_ == nullptr || !hook_->PredictRoute(layer, token, &p)) {
    // The model's own predictor: the next layer's router applied to this layer's state
    // (FIELD-NOTES: 71-98% of the next layer's experts on real models).
    std::span<float> probs(router_logits, n_expert);
    Linear(weights.router, xb, 1, probs.data(), pool);
    if (weights.router_bias != nullptr) {
      for (int e = 0; e < n_expert; ++e) probs[e] += weights.router_bias[e];
    }
    ComputeRoute(router_, probs, &p, weights.selection_bias);
  }
  layer_ = layer;
  token_ = token;
  counters_->predicted_experts += p.k;
  // Only the first few missing ones, most confident first: every wrong guess costs a whole
  // expert of device time, and a few reads are enough to keep the device busy while this
  // layer finishes and the next one runs attention (docs/benchmarks.md measures the trade).
  n_reads_ = 0;
  for (int i = 0; i < p.k && n_reads_ < max_reads_; ++i) {
    if (!source_->Contains(layer, p.ids[i])) reads_[n_reads_++] = p.ids[i];
  }
  source_->Prefetch(layer, std::span<const int>(reads_, n_reads_));
  counters_->speculative_reads += n_reads_;
}

void ReadAhead::Settle(int layer, int64_t token, const Route& actual) {
  if (layer_ != layer) return;
  layer_ = -1;
  if (token_ != token) {  // a run ended between the guess and now
    source_->Drop(layer, std::span<const int>(reads_, n_reads_));
    return;
  }
  auto used = [&actual](int id) {
    for (int j = 0; j < actual.k; ++j) {
      if (actual.ids[j] == id) return true;
    }
    return false;
  };
  for (int i = 0; i < guess_.k; ++i) counters_->predicted_used += used(guess_.ids[i]);
  int wrong[kMaxExpertsPerToken];
  int n_wrong = 0;
  for (int i = 0; i < n_reads_; ++i) {
    if (used(reads_[i])) {
      ++counters_->speculative_used;
    } else {
      wrong[n_wrong++] = reads_[i];
    }
  }
  source_->Drop(layer, std::span<const int>(wrong, n_wrong));
}

}  // namespace sluice
