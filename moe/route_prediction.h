// A stand-in for a next-layer expert predictor, for routing that does not come from the model's
// router (synthetic routing, trace replay). Real engines predict layer l+1's experts by applying
// its router to layer l's state; published figures put that at 71-98% of the experts right
// (FIELD-NOTES: colibri measured 71.6%). With a synthetic or replayed route the real router
// predicts nothing, so the hook that knows the coming route hands the engine a corrupted copy:
// each expert kept with probability `accuracy`, otherwise replaced by a uniformly drawn expert
// the route does not use. The bench thus pays for wrong guesses (wasted reads, late misses)
// exactly as a real predictor of that accuracy would make it.
//
// Thread-safety: not thread-safe (one RNG); one instance per hook. Deterministic for a seed.
#pragma once

#include <cstdint>
#include <random>

#include "moe/routing_hook.h"

namespace sluice {

// Default accuracy: near the low end of the published range, so the bench does not flatter.
inline constexpr double kDefaultPredictAccuracy = 0.75;

class RoutePredictionSim {
 public:
  // accuracy in [0, 1].
  RoutePredictionSim(double accuracy, uint64_t seed);
  // *predicted: truth's k experts, each kept with probability accuracy or replaced by a distinct
  // expert outside truth (while any is left); weights copied (prefetching ignores them).
  void Predict(const Route& truth, int n_expert, Route* predicted);
  double accuracy() const { return accuracy_; }

 private:
  double accuracy_;
  std::mt19937_64 rng_;
};

}  // namespace sluice
