// Sampler and router against independent computations: frequencies of draws against the
// probabilities each filter implies, routes against a double-precision softmax/top-k.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "chat/sampler.h"
#include "moe/router.h"

namespace sluice {
namespace {

std::vector<float> LogitsFromProbs(const std::vector<double>& p) {
  std::vector<float> l;
  for (double x : p) l.push_back(static_cast<float>(std::log(x)));
  return l;
}

// Draw counts per id over n samples.
std::vector<double> Frequencies(Sampler& s, const std::vector<float>& logits, int n) {
  std::vector<double> f(logits.size(), 0.0);
  for (int i = 0; i < n; ++i) f[s.Sample(logits, {})] += 1.0 / n;
  return f;
}

SamplerOptions Plain(float temperature) {
  return SamplerOptions{
      .temperature = temperature, .top_k = 0, .top_p = 1.0f, .min_p = 0.0f, .seed = 123};
}

TEST(Sampler, GreedyIsArgmaxWithTiesToTheLowestId) {
  Sampler s(Plain(0.0f));
  EXPECT_EQ(s.Sample(std::vector<float>{0.1f, 3.0f, -1.0f, 3.0f}, {}), 1);
  EXPECT_EQ(ArgMax(std::vector<float>{2.0f, 2.0f}), 0);
}

TEST(Sampler, TemperatureOneDrawsFromTheSoftmax) {
  const std::vector<double> p = {0.5, 0.3, 0.15, 0.05};
  Sampler s(Plain(1.0f));
  const int n = 40000;
  const std::vector<double> f = Frequencies(s, LogitsFromProbs(p), n);
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(f[i], p[i], 4 * std::sqrt(p[i] * (1 - p[i]) / n)) << i;
  }
}

TEST(Sampler, TemperatureSharpensAsPowerOfProbabilities) {
  const std::vector<double> p = {0.5, 0.3, 0.2};
  Sampler s(Plain(0.5f));  // p^(1/T) = p^2, renormalised
  const double z = 0.25 + 0.09 + 0.04;
  const std::vector<double> want = {0.25 / z, 0.09 / z, 0.04 / z};
  const int n = 40000;
  const std::vector<double> f = Frequencies(s, LogitsFromProbs(p), n);
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_NEAR(f[i], want[i], 4 * std::sqrt(want[i] * (1 - want[i]) / n)) << i;
  }
}

TEST(Sampler, TopKTopPAndMinPCutTheTail) {
  const std::vector<float> logits = LogitsFromProbs({0.5, 0.3, 0.15, 0.05});
  SamplerOptions o = Plain(1.0f);
  o.top_k = 2;
  Sampler top_k(o);
  std::vector<double> f = Frequencies(top_k, logits, 20000);
  EXPECT_EQ(f[2] + f[3], 0.0);
  EXPECT_NEAR(f[0], 0.5 / 0.8, 0.02);

  o = Plain(1.0f);
  o.top_p = 0.85f;  // 0.5 + 0.3 = 0.8 < 0.85: the third token completes the nucleus
  Sampler top_p(o);
  f = Frequencies(top_p, logits, 20000);
  EXPECT_EQ(f[3], 0.0);
  EXPECT_GT(f[2], 0.1);

  o = Plain(1.0f);
  o.min_p = 0.5f;  // keep p >= 0.25: ids 0 (0.5) and 1 (0.3)
  Sampler min_p(o);
  f = Frequencies(min_p, logits, 20000);
  EXPECT_EQ(f[2] + f[3], 0.0);
  EXPECT_NEAR(f[1], 0.3 / 0.8, 0.02);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerOptions o = Plain(0.0f);
  o.repeat_penalty = 1.1f;
  Sampler s(o);
  // 2.0 / 1.1 = 1.82 < 1.9: the repeated token loses.
  EXPECT_EQ(s.Sample(std::vector<float>{2.0f, 1.9f}, std::vector<int32_t>{0, 0}), 1);
  // -1.0 * 1.1 = -1.1 < -1.05.
  EXPECT_EQ(s.Sample(std::vector<float>{-1.0f, -1.05f}, std::vector<int32_t>{0}), 1);
  // Outside the window (last 1 token) no penalty.
  o.repeat_last_n = 1;
  Sampler window(o);
  EXPECT_EQ(window.Sample(std::vector<float>{2.0f, 1.9f}, std::vector<int32_t>{0, 1}), 0);
}

TEST(Sampler, PresenceAndFrequencyPenaltiesSubtractPerOccurrenceAndOnce) {
  SamplerOptions o = Plain(0.0f);
  o.frequency_penalty = 0.3f;
  Sampler freq(o);
  // Token 0 seen 3 times: 2.0 - 0.9 = 1.1 < 1.2; seen once: 2.0 - 0.3 = 1.7 > 1.2.
  EXPECT_EQ(freq.Sample(std::vector<float>{2.0f, 1.2f}, std::vector<int32_t>{0, 0, 0}), 1);
  EXPECT_EQ(freq.Sample(std::vector<float>{2.0f, 1.2f}, std::vector<int32_t>{0}), 0);
  o.frequency_penalty = 0.0f;
  o.presence_penalty = 0.5f;
  Sampler presence(o);
  // Once, whatever the count: 2.0 - 0.5 = 1.5 against 1.6 loses, against 1.4 wins.
  EXPECT_EQ(presence.Sample(std::vector<float>{2.0f, 1.6f}, std::vector<int32_t>{0, 0, 0}), 1);
  EXPECT_EQ(presence.Sample(std::vector<float>{2.0f, 1.4f}, std::vector<int32_t>{0, 0, 0}), 0);
  // Negative values favour what was said.
  o.presence_penalty = -0.5f;
  Sampler favour(o);
  EXPECT_EQ(favour.Sample(std::vector<float>{1.0f, 1.4f}, std::vector<int32_t>{0}), 0);
  o.presence_penalty = 2.5f;
  EXPECT_FALSE(ValidateSamplerOptions(o).ok());
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferentTokens) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 0.7f);
  SamplerOptions o = Plain(1.0f);
  auto draw = [&](uint64_t seed) {
    o.seed = seed;
    Sampler s(o);
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(s.Sample(logits, {}));
    return ids;
  };
  EXPECT_EQ(draw(5), draw(5));
  EXPECT_NE(draw(5), draw(6));
}

TEST(Sampler, OptionsAreValidated) {
  EXPECT_FALSE(ValidateSamplerOptions({.top_p = 0.0f}).ok());
  EXPECT_FALSE(ValidateSamplerOptions({.min_p = 1.5f}).ok());
  EXPECT_FALSE(ValidateSamplerOptions({.top_k = -1}).ok());
  EXPECT_FALSE(ValidateSamplerOptions({.repeat_penalty = 0.0f}).ok());
  EXPECT_TRUE(ValidateSamplerOptions({}).ok());
}

TEST(Router, SoftmaxTopKRenormalisedMatchesDoubleReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 2.0f);
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 64, k = 1 + trial % 8;
    std::vector<float> logits(n);
    for (float& x : logits) x = dist(rng);
    std::vector<double> p(n);
    const double mx = *std::max_element(logits.begin(), logits.end());
    double z = 0;
    for (int e = 0; e < n; ++e) z += p[e] = std::exp(logits[e] - mx);
    std::vector<int> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    double top = 0;
    for (int j = 0; j < k; ++j) top += p[order[j]];

    Route route;
    ComputeRoute(RouterParams{.k = k}, logits, &route);
    ASSERT_EQ(route.k, k);
    for (int j = 0; j < k; ++j) {
      EXPECT_EQ(route.ids[j], order[j]);
      EXPECT_NEAR(route.weights[j], p[order[j]] / top, 1e-6);
      EXPECT_NEAR(logits[order[j]], p[order[j]] / z, 1e-6);  // probabilities left in place
    }
  }
}

TEST(Router, TiesGoToTheLowerIdAndOptionsApply) {
  std::vector<float> logits = {1.0f, 3.0f, 3.0f, 0.0f};
  Route route;
  ComputeRoute(RouterParams{.norm_topk = false, .scale = 2.0f, .k = 2}, logits, &route);
  EXPECT_EQ(route.ids[0], 1);
  EXPECT_EQ(route.ids[1], 2);
  const double p = std::exp(3.0) / (std::exp(1.0) + 2 * std::exp(3.0) + 1.0);
  EXPECT_NEAR(route.weights[0], 2 * p, 1e-6);  // not renormalised, scaled

  logits = {0.0f, 2.0f, -1.0f};
  ComputeRoute(RouterParams{.gating = GatingFunc::kSigmoid, .norm_topk = false, .k = 1}, logits,
               &route);
  EXPECT_EQ(route.ids[0], 1);
  EXPECT_NEAR(route.weights[0], 1.0 / (1.0 + std::exp(-2.0)), 1e-6);
}

// DeepSeek-V3 / GLM-4.5 routing, worked by hand: sigmoid probabilities, a selection bias that
// changes which experts win but not their weights, and a group limit.
TEST(Router, SelectionBiasAndGroupLimit) {
  // 8 experts in 4 groups of 2. Logits chosen so sigmoid order differs from the biased order.
  const std::vector<float> base = {2.0f, 1.9f, -1.0f, 0.0f, 1.0f, 0.5f, -2.0f, -3.0f};
  const float bias[8] = {0.0f, 0.0f, 0.9f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  std::vector<double> p(8), sel(8);
  for (int e = 0; e < 8; ++e) {
    p[e] = sigmoid(base[e]);
    sel[e] = p[e] + bias[e];
  }
  // Without groups, k = 3 by sel: 0 (0.881), 1 (0.870), 2 (0.269 + 0.9 = 1.169) -> 2, 0, 1.
  std::vector<float> logits = base;
  Route route;
  const RouterParams plain{.gating = GatingFunc::kSigmoid, .norm_topk = true, .k = 3};
  ComputeRoute(plain, logits, &route, bias);
  ASSERT_EQ(route.k, 3);
  EXPECT_EQ(route.ids[0], 2);
  EXPECT_EQ(route.ids[1], 0);
  EXPECT_EQ(route.ids[2], 1);
  const double sum = p[2] + p[0] + p[1];
  EXPECT_NEAR(route.weights[0], p[2] / sum, 1e-6);  // the unbiased probability
  EXPECT_NEAR(route.weights[1], p[0] / sum, 1e-6);

  // Groups {0,1} {2,3} {4,5} {6,7}: scores (top-2 sums of sel) 1.751, 1.669, 1.353, 0.166.
  // Keep 1 group: only experts 0 and 1 may win, whatever the bias of expert 2.
  logits = base;
  RouterParams grouped = plain;
  grouped.k = 2;
  grouped.n_groups = 4;
  grouped.n_groups_used = 1;
  grouped.scale = 2.5f;
  ComputeRoute(grouped, logits, &route, bias);
  EXPECT_EQ(route.ids[0], 0);
  EXPECT_EQ(route.ids[1], 1);
  EXPECT_NEAR(route.weights[0], 2.5 * p[0] / (p[0] + p[1]), 1e-6);
  // Keep 2 groups: {0,1} and {2,3}; k = 3 -> 2, 0, 1 as without groups, and expert 4
  // (sel 0.731, above expert 3's 0.5) is excluded with its group.
  logits = base;
  grouped.n_groups_used = 2;
  grouped.k = 4;
  ComputeRoute(grouped, logits, &route, bias);
  EXPECT_EQ(route.ids[0], 2);
  EXPECT_EQ(route.ids[1], 0);
  EXPECT_EQ(route.ids[2], 1);
  EXPECT_EQ(route.ids[3], 3);
}

TEST(Router, HookRoutesAreValidated) {
  Route r;
  r.k = 2;
  r.ids[0] = 1, r.ids[1] = 1;
  EXPECT_FALSE(ValidateRoute(r, 2, 8, 0, 0).ok());
  r.ids[1] = 8;
  EXPECT_FALSE(ValidateRoute(r, 2, 8, 0, 0).ok());
  r.ids[1] = 2;
  EXPECT_TRUE(ValidateRoute(r, 2, 8, 0, 0).ok());
  r.k = 3;
  EXPECT_FALSE(ValidateRoute(r, 2, 8, 0, 0).ok());
  r.k = 2;
  r.weights[0] = std::nanf("");
  EXPECT_FALSE(ValidateRoute(r, 2, 8, 0, 0).ok());
}

}  // namespace
}  // namespace sluice
