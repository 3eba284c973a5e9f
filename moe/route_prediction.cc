#include "moe/route_prediction.h"

#include "core/base/check.h"

namespace sluice {
namespace {

bool Contains(const Route& r, int id) {
  for (int j = 0; j < r.k; ++j) {
    if (r.ids[j] == id) return true;
  }
  return false;
}

}  // namespace

RoutePredictionSim::RoutePredictionSim(double accuracy, uint64_t seed)
    : accuracy_(accuracy), rng_(seed ^ 0x9e3779b97f4a7c15ull) {
  CHECK(accuracy >= 0.0 && accuracy <= 1.0) << accuracy;
}

void RoutePredictionSim::Predict(const Route& truth, int n_expert, Route* predicted) {
  CHECK(truth.k >= 0 && truth.k <= n_expert) << truth.k << " of " << n_expert;
  *predicted = truth;
  std::uniform_real_distribution<double> coin(0.0, 1.0);
  std::uniform_int_distribution<int> any(0, n_expert - 1);
  int replaced = 0;
  for (int j = 0; j < truth.k; ++j) {
    if (coin(rng_) < accuracy_) continue;
    if (n_expert - truth.k - replaced <= 0) break;  // nothing left to guess wrong with
    // A wrong guess: an expert neither in the true route nor already guessed. Rejection
    // sampling ends fast since k is far below n_expert in every model we stream.
    int id;
    do {
      id = any(rng_);
    } while (Contains(truth, id) || Contains(*predicted, id));
    predicted->ids[j] = id;
    ++replaced;
  }
}

}  // namespace sluice
