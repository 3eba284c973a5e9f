// Synthetic routing with the statistics of real MoE models, for random-weight (synthetic) models
// whose own routers would route almost uniformly, and for cache studies without a model at all.
//
// Per MoE layer the generator keeps the previous token's experts and, for the next token:
//   1. keeps each of them (slot by slot) with probability `reuse`: temporal reuse;
//   2. fills the other slots by sampling from a fixed per-layer popularity over a random
//      permutation of the experts: a hot set of hot_fraction * n_expert experts carrying
//      `hot_share` of the activations (Zipf with exponent `hot_skew` within it), the rest
//      Zipf-distributed with exponent `tail_skew` (0 = uniform).
//      Fresh picks exclude the previous token's experts, so the measured next-token reuse is
//      exactly `reuse` in expectation (not reuse plus chance repeats). With probability `recall`
//      a fresh pick instead re-draws one of the experts used in the last `recall_window` tokens
//      (uniformly over their uses): the multi-token locality real routing shows (topics), which
//      one-step reuse plus popularity alone underestimate (small LRU caches hit more in real
//      traces than such a model predicts).
// Reuse, recall and distinctness within a token all push the measured share of popular experts
// away from the popularity they are drawn with (an expert in the previous set cannot be drawn
// fresh, and an expert is at most once in a token). Fresh picks therefore use f ∝ q / (1 - k q)
// for a target share q (the stationary inclusion of a kept-or-redrawn expert is k f / (1 + k f)),
// and at construction the hot set's fresh weight is calibrated by a short simulation (bisection
// on one scale factor, ~2k tokens per distinct layer target) so that the measured hot share
// matches `hot_share` for any k and n_expert (tested).
// The first `early_layers` MoE layers ramp from near uniform (early_start of the deep-layer
// reuse, hot excess and skew at layer 0) to the full values: real early layers are near uniform
// (Qwen3-30B layer 0 touched 107 of 128 experts in 128 tokens).
//
// Defaults are fitted (tests/moe/routing_synthetic_test.cc checks them) to published figures of
// real models (docs/routing-trace.md, FIELD-NOTES): next-token reuse 8-38% (we use 25%, Flash-MoE
// measured 25.6% on Qwen3.5-397B); per-layer LRU caches of 16/32/64/128 experts at K=4 on a
// 512-expert layer hitting about 49/59/68/71%; a few hot experts carrying 20-45% (we use 35% on
// 1/32 of the experts).
//
// Non-goals: modelling the correlation between layers of one token, or content dependence.
// Thread-safety: not thread-safe; one instance per engine. Deterministic for a given seed, shape
// and call sequence per layer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "moe/route_prediction.h"
#include "moe/routing_hook.h"
#include "moe/routing_trace.h"

namespace sluice {

struct SyntheticRoutingParams {
  uint64_t seed = 1;
  double reuse = 0.25;      // deep layers: P(a token keeps each of the previous token's experts)
  double hot_share = 0.35;  // deep layers: share of activations carried by the hot set
  double hot_fraction = 1.0 / 32;  // hot set size / n_expert (16 of 512), at least 1 expert
  double hot_skew = 0.5;           // Zipf exponent of popularity within the hot set
  double tail_skew = 0.0;          // Zipf exponent over the other experts (0: uniform)
  double recall = 0.33;            // deep layers: P(a fresh pick re-uses an expert of the last
                                   // recall_window tokens instead of drawing by popularity)
  int recall_window = 7;           // tokens of history for recall
  int early_layers = 3;            // MoE layers over which reuse and skew ramp up
  double early_start = 0.25;       // layer 0 gets this fraction of the deep-layer values
  double weight_spread = 0.5;      // stddev of the log mixing weights (normalized to sum 1)
  double predict = kDefaultPredictAccuracy;  // share of experts the simulated next-layer
                                             // predictor gets right (moe/route_prediction.h)

  // "reuse=0.25,hot_share=0.35,seed=7" (keys as the field names; empty = defaults).
  // InvalidArgument naming the key for unknown keys and values out of range.
  static Result<SyntheticRoutingParams> Parse(std::string_view spec);
  std::string ToString() const;  // the same syntax, every key
};

// What the generator aims for at one MoE layer (after the early-layer ramp).
struct SyntheticLayerTargets {
  double reuse = 0;      // expected fraction of a token's experts used by the previous token
  double hot_share = 0;  // expected share of activations on the hot set
  int hot_experts = 0;   // size of the hot set
  double hot_skew = 0;   // Zipf exponents used at this layer
  double tail_skew = 0;
  double recall = 0;  // P(a fresh pick comes from the recent window)
};

class SyntheticRouting {
 public:
  // CHECK-fails on an invalid shape (validate it first) or params (Parse validates).
  SyntheticRouting(const SyntheticRoutingParams& params, const RoutingShape& shape);
  ~SyntheticRouting();

  // The next token's route at MoE layer index `moe_index` (k = shape.k distinct ids, weights
  // summing to 1). Each layer advances independently, one token per call. `stream`: whose
  // token it is: each stream has its own history (previous token, recall window); popularity
  // and the random draws are shared.
  void NextRoute(int moe_index, Route* route, int stream = 0);
  const SyntheticLayerTargets& targets(int moe_index) const;
  // The hot set of a layer (its experts ids), for tests and the bench report.
  const std::vector<int>& hot_experts(int moe_index) const;
  const RoutingShape& shape() const { return shape_; }
  const SyntheticRoutingParams& params() const { return params_; }

  // n_token routes for every MoE layer as a trace.
  RoutingTrace Generate(int64_t n_token);

 private:
  struct Layer;
  SyntheticRoutingParams params_;
  RoutingShape shape_;
  std::vector<std::unique_ptr<Layer>> layers_;
};

// The RoutingHook for `--routing synthetic[:params]`: ignores the router, asks the generator.
// PredictRoute draws the layer's next route early (the next OnRoute of that layer returns it, so
// the routes do not depend on whether the engine predicted) and hands out a copy corrupted to
// params.predict accuracy.
class SyntheticRoutingHook : public RoutingHook {
 public:
  SyntheticRoutingHook(const SyntheticRoutingParams& params, const RoutingShape& shape);
  void OnRoute(int layer, int64_t token_index, std::span<const float> router_probs,
               Route* route) override;
  bool PredictRoute(int layer, int64_t token_index, Route* predicted) override;
  void SetStream(int stream) override;

 private:
  struct Peek {
    Route route;  // the layer's next route of the stream, drawn early by PredictRoute
    bool valid = false;
  };
  Peek& peek(int moe_index);

  SyntheticRouting routing_;
  RoutePredictionSim predictor_;
  int stream_ = 0;
  std::vector<std::vector<Peek>> peeked_;  // (streams, n_moe_layer)
};

}  // namespace sluice
