// The synthetic routing generator shows the statistics it is asked for, measured here with code
// independent of the generator: next-token reuse, the share of the most used experts, LRU hit
// rates from a separate LRU simulation, and near-uniform early layers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <list>
#include <random>
#include <set>
#include <unordered_map>
#include <vector>

#include "moe/synthetic_routing.h"

namespace sluice {
namespace {

RoutingShape Shape(int n_layer, int n_expert, int k) {
  RoutingShape s;
  s.n_layer = n_layer;
  for (int i = 0; i < n_layer; ++i) s.moe_layers.push_back(i);
  s.n_expert = n_expert;
  s.k = k;
  return s;
}

// Fraction of token t's experts that token t-1 also used, over the trace, at MoE index m.
double MeasuredReuse(const RoutingTrace& trace, int m) {
  int64_t reused = 0, total = 0;
  for (int64_t t = 1; t < trace.n_token(); ++t) {
    const Route& cur = trace.route(t, m);
    const Route& prev = trace.route(t - 1, m);
    for (int j = 0; j < cur.k; ++j) {
      reused += std::count(prev.ids, prev.ids + prev.k, cur.ids[j]);
      ++total;
    }
  }
  return static_cast<double>(reused) / total;
}

// Share of all activations at MoE index m carried by the `top` most used experts.
double TopShare(const RoutingTrace& trace, int m, int top) {
  std::vector<int64_t> count(trace.shape().n_expert, 0);
  int64_t total = 0;
  for (int64_t t = 0; t < trace.n_token(); ++t) {
    const Route& r = trace.route(t, m);
    for (int j = 0; j < r.k; ++j) ++count[r.ids[j]];
    total += r.k;
  }
  std::sort(count.begin(), count.end(), std::greater<int64_t>());
  int64_t sum = 0;
  for (int i = 0; i < top; ++i) sum += count[i];
  return static_cast<double>(sum) / total;
}

// A per-layer LRU cache of `capacity` experts fed the trace at MoE index m; hit rate after a
// warm-up of `warmup` tokens.
double LruHitRate(const RoutingTrace& trace, int m, int capacity, int warmup) {
  std::list<int> order;  // most recent first
  std::unordered_map<int, std::list<int>::iterator> where;
  int64_t hits = 0, accesses = 0;
  for (int64_t t = 0; t < trace.n_token(); ++t) {
    const Route& r = trace.route(t, m);
    for (int j = 0; j < r.k; ++j) {
      auto it = where.find(r.ids[j]);
      bool hit = it != where.end();
      if (t >= warmup) {
        hits += hit;
        ++accesses;
      }
      if (hit) {
        order.erase(it->second);
      } else if (static_cast<int>(order.size()) == capacity) {
        where.erase(order.back());
        order.pop_back();
      }
      order.push_front(r.ids[j]);
      where[r.ids[j]] = order.begin();
    }
  }
  return static_cast<double>(hits) / accesses;
}

TEST(SyntheticRouting, RoutesAreValid) {
  SyntheticRouting gen(SyntheticRoutingParams{}, Shape(4, 64, 6));
  RoutingTrace trace = gen.Generate(500);
  for (int64_t t = 0; t < trace.n_token(); ++t) {
    for (int m = 0; m < 4; ++m) {
      const Route& r = trace.route(t, m);
      ASSERT_EQ(r.k, 6);
      std::set<int> ids(r.ids, r.ids + r.k);
      EXPECT_EQ(ids.size(), 6u) << "token " << t << " layer " << m << ": repeated expert";
      double sum = 0;
      for (int j = 0; j < r.k; ++j) {
        EXPECT_GE(r.ids[j], 0);
        EXPECT_LT(r.ids[j], 64);
        EXPECT_GT(r.weights[j], 0.0f);
        sum += r.weights[j];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST(SyntheticRouting, DeterministicPerSeed) {
  SyntheticRoutingParams p;
  p.seed = 42;
  RoutingTrace a = SyntheticRouting(p, Shape(3, 128, 8)).Generate(64);
  RoutingTrace b = SyntheticRouting(p, Shape(3, 128, 8)).Generate(64);
  p.seed = 43;
  RoutingTrace c = SyntheticRouting(p, Shape(3, 128, 8)).Generate(64);
  int differ = 0;
  for (int64_t t = 0; t < 64; ++t) {
    for (int m = 0; m < 3; ++m) {
      for (int j = 0; j < 8; ++j) {
        EXPECT_EQ(a.route(t, m).ids[j], b.route(t, m).ids[j]);
        EXPECT_EQ(a.route(t, m).weights[j], b.route(t, m).weights[j]);
        differ += a.route(t, m).ids[j] != c.route(t, m).ids[j];
      }
    }
  }
  EXPECT_GT(differ, 64 * 3 * 8 / 2) << "another seed should give other routes";
}

struct StatsCase {
  int n_expert, k;
  double reuse, hot_share;
};

class RequestedStats : public ::testing::TestWithParam<StatsCase> {};

// Deep layers (past the early ramp) show the requested reuse within 0.02 and the requested share
// on the hot_n most used experts within 0.03 (3000 tokens x 9 layers; the sampling noise of
// either measure is below 0.01 here).
TEST_P(RequestedStats, DeepLayersMatchRequest) {
  const StatsCase c = GetParam();
  SyntheticRoutingParams p;
  p.reuse = c.reuse;
  p.hot_share = c.hot_share;
  p.early_layers = 3;
  p.seed = 7;
  SyntheticRouting gen(p, Shape(12, c.n_expert, c.k));
  RoutingTrace trace = gen.Generate(3000);
  const int hot_n = gen.targets(5).hot_experts;
  EXPECT_GE(hot_n, c.k);
  EXPECT_EQ(hot_n, std::max<int>(c.k, std::lround(c.n_expert / 32.0)));
  double reuse = 0, share = 0;
  for (int m = 3; m < 12; ++m) {
    reuse += MeasuredReuse(trace, m) / 9;
    share += TopShare(trace, m, hot_n) / 9;
  }
  EXPECT_NEAR(reuse, c.reuse, 0.02);
  EXPECT_NEAR(share, c.hot_share, 0.03);
}

INSTANTIATE_TEST_SUITE_P(Shapes, RequestedStats,
                         ::testing::Values(StatsCase{512, 4, 0.25, 0.35},
                                           StatsCase{512, 10, 0.38, 0.45},
                                           StatsCase{128, 8, 0.08, 0.20},
                                           StatsCase{256, 8, 0.25, 0.35},
                                           StatsCase{8, 2, 0.30, 0.50}));

// The defaults reproduce the published per-layer LRU curve of Qwen3.5-397B at K=4 (16/32/64/128
// experts: ~49/59/68/71% hits), averaged over a 60-layer model, within 4 points each.
TEST(SyntheticRouting, DefaultsMatchPublishedLruCurve) {
  SyntheticRouting gen(SyntheticRoutingParams{}, Shape(60, 512, 4));
  RoutingTrace trace = gen.Generate(3000);
  const int capacity[4] = {16, 32, 64, 128};
  const double published[4] = {0.49, 0.59, 0.68, 0.71};
  for (int c = 0; c < 4; ++c) {
    double hit = 0;
    for (int m = 0; m < 60; ++m) hit += LruHitRate(trace, m, capacity[c], 200) / 60;
    EXPECT_NEAR(hit, published[c], 0.04) << "LRU of " << capacity[c] << " experts";
  }
  // And the default reuse is within the published 8-38% band, the hot experts' share in 20-45%.
  double reuse = 0, share = 0;
  for (int m = 3; m < 60; ++m) {
    reuse += MeasuredReuse(trace, m) / 57;
    share += TopShare(trace, m, 16) / 57;
  }
  EXPECT_GE(reuse, 0.08);
  EXPECT_LE(reuse, 0.38);
  EXPECT_GE(share, 0.20);
  EXPECT_LE(share, 0.45);
}

// Early layers are closer to uniform: more distinct experts in 128 tokens, less reuse, a smaller
// hot share. (Qwen3-30B layer 0 touched 107 of 128 experts in 128 tokens.)
// Several streams (conversations decoding together) each keep their own history: interleaved
// token by token, each stream's next-token reuse is the requested one measured within the stream,
// while between the streams it is only what popularity alone gives.
TEST(SyntheticRouting, StreamsKeepTheirOwnHistory) {
  SyntheticRoutingParams p;
  p.reuse = 0.5;
  p.recall = 0;
  p.hot_share = 0.1;
  p.early_layers = 0;
  p.seed = 3;
  const RoutingShape shape = Shape(1, 512, 8);
  SyntheticRouting gen(p, shape);
  constexpr int kStreams = 3, kTokens = 2000;
  std::vector<std::vector<Route>> routes(kStreams);
  for (int t = 0; t < kTokens; ++t) {
    for (int s = 0; s < kStreams; ++s) {
      Route r;
      gen.NextRoute(0, &r, s);
      routes[s].push_back(r);
    }
  }
  auto reuse = [](const std::vector<Route>& a, const std::vector<Route>& b) {
    int64_t reused = 0, total = 0;
    for (size_t t = 1; t < a.size(); ++t) {
      for (int j = 0; j < a[t].k; ++j) {
        reused += std::count(b[t - 1].ids, b[t - 1].ids + b[t - 1].k, a[t].ids[j]);
        ++total;
      }
    }
    return static_cast<double>(reused) / total;
  };
  for (int s = 0; s < kStreams; ++s) {
    EXPECT_NEAR(reuse(routes[s], routes[s]), 0.5, 0.03) << "stream " << s;
    EXPECT_LT(reuse(routes[s], routes[(s + 1) % kStreams]), 0.1) << "streams " << s << ", next";
  }
}

TEST(SyntheticRouting, EarlyLayersNearUniform) {
  SyntheticRoutingParams p;
  p.early_layers = 4;
  SyntheticRouting gen(p, Shape(10, 128, 8));
  RoutingTrace trace = gen.Generate(1024);
  auto distinct_in_first = [&](int m, int tokens) {
    std::set<int> seen;
    for (int t = 0; t < tokens; ++t) {
      const Route& r = trace.route(t, m);
      seen.insert(r.ids, r.ids + r.k);
    }
    return static_cast<int>(seen.size());
  };
  EXPECT_GT(distinct_in_first(0, 128), distinct_in_first(8, 128));
  EXPECT_GE(distinct_in_first(0, 128), 100) << "layer 0 should touch most experts";
  EXPECT_LT(MeasuredReuse(trace, 0), MeasuredReuse(trace, 8) - 0.1);
  EXPECT_LT(TopShare(trace, 0, 8), TopShare(trace, 8, 8) - 0.1);
}

TEST(SyntheticRouting, ParsesParams) {
  auto p = SyntheticRoutingParams::Parse("reuse=0.3,hot_share=0.4,seed=9,recall_window=5");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_DOUBLE_EQ(p->reuse, 0.3);
  EXPECT_DOUBLE_EQ(p->hot_share, 0.4);
  EXPECT_EQ(p->seed, 9u);
  EXPECT_EQ(p->recall_window, 5);
  // ToString round-trips.
  auto q = SyntheticRoutingParams::Parse(p->ToString());
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->ToString(), p->ToString());
  EXPECT_TRUE(SyntheticRoutingParams::Parse("").ok());

  auto unknown = SyntheticRoutingParams::Parse("reuse=0.3,bogus=1");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("bogus"), std::string::npos);
  auto range = SyntheticRoutingParams::Parse("reuse=1.5");
  ASSERT_FALSE(range.ok());
  EXPECT_NE(range.status().message().find("reuse=1.5"), std::string::npos);
  EXPECT_FALSE(SyntheticRoutingParams::Parse("hot_share=abc").ok());
  EXPECT_FALSE(SyntheticRoutingParams::Parse("recall_window=2.5").ok());
  EXPECT_FALSE(SyntheticRoutingParams::Parse("seed").ok());
}

TEST(SyntheticRouting, HookReplacesTheRoutersChoice) {
  RoutingShape shape = Shape(4, 32, 4);
  shape.moe_layers = {1, 3};  // layers 0 and 2 dense
  SyntheticRoutingHook hook(SyntheticRoutingParams{}, shape);
  SyntheticRouting reference(SyntheticRoutingParams{}, shape);
  for (int t = 0; t < 20; ++t) {
    for (int layer : {1, 3}) {
      Route route;
      route.k = 4;
      for (int j = 0; j < 4; ++j) route.ids[j] = j;
      hook.OnRoute(layer, t, {}, &route);
      Route expected;
      reference.NextRoute(shape.MoeIndex(layer), &expected);
      ASSERT_EQ(route.k, expected.k);
      for (int j = 0; j < 4; ++j) EXPECT_EQ(route.ids[j], expected.ids[j]);
    }
  }
}

// Asking for a prediction draws the layer's next route early; OnRoute must then hand out that
// very route, so the sequence is the generator's whether or not the engine predicted.
TEST(SyntheticRouting, PredictingDoesNotChangeTheRoutes) {
  const RoutingShape shape = Shape(3, 64, 6);
  SyntheticRoutingHook hook(SyntheticRoutingParams{}, shape);
  SyntheticRouting reference(SyntheticRoutingParams{}, shape);
  for (int t = 0; t < 50; ++t) {
    for (int layer = 0; layer < 3; ++layer) {
      if (t % 3 != 0 && layer + 1 < 3) {
        Route predicted;
        ASSERT_TRUE(hook.PredictRoute(layer + 1, t, &predicted));
        ASSERT_TRUE(hook.PredictRoute(layer + 1, t, &predicted));  // asking twice: same draw
      }
      Route route, expected;
      hook.OnRoute(layer, t, {}, &route);
      reference.NextRoute(layer, &expected);
      ASSERT_EQ(route.k, expected.k);
      for (int j = 0; j < route.k; ++j) ASSERT_EQ(route.ids[j], expected.ids[j]) << t;
    }
  }
}

// The simulated predictor keeps each expert with the asked probability and otherwise names an
// expert the route does not use; measured by counting, over many routes.
TEST(RoutePrediction, HitsTheAskedAccuracy) {
  for (double accuracy : {0.0, 0.5, 0.75, 1.0}) {
    RoutePredictionSim sim(accuracy, 3);
    Route truth;
    truth.k = 8;
    int64_t kept = 0, total = 0;
    std::mt19937 rng(5);
    for (int i = 0; i < 4000; ++i) {
      std::vector<int> ids(128);
      for (int e = 0; e < 128; ++e) ids[e] = e;
      std::shuffle(ids.begin(), ids.end(), rng);
      for (int j = 0; j < 8; ++j) truth.ids[j] = ids[j];
      Route p;
      sim.Predict(truth, 128, &p);
      ASSERT_EQ(p.k, 8);
      std::set<int> distinct(p.ids, p.ids + 8);
      ASSERT_EQ(distinct.size(), 8u);
      for (int j = 0; j < 8; ++j) {
        ASSERT_TRUE(p.ids[j] >= 0 && p.ids[j] < 128);
        const bool in_truth = std::count(truth.ids, truth.ids + 8, p.ids[j]) > 0;
        // A slot either keeps its true expert or names one outside the route.
        ASSERT_TRUE(p.ids[j] == truth.ids[j] || !in_truth);
        kept += p.ids[j] == truth.ids[j];
        ++total;
      }
    }
    const double measured = static_cast<double>(kept) / total;
    // 32000 Bernoulli draws: 5 standard deviations are under 0.014.
    EXPECT_NEAR(measured, accuracy, 0.014) << accuracy;
  }
}

TEST(RoutePrediction, SmallLayersRunOutOfWrongGuessesGracefully) {
  RoutePredictionSim sim(0.0, 1);
  Route truth;
  truth.k = 3;
  truth.ids[0] = 0, truth.ids[1] = 1, truth.ids[2] = 2;
  Route p;
  sim.Predict(truth, 4, &p);  // only expert 3 is outside the route
  std::set<int> distinct(p.ids, p.ids + 3);
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_EQ(std::count(p.ids, p.ids + 3, 3), 1);
}

TEST(SyntheticRouting, PredictParses) {
  auto p = SyntheticRoutingParams::Parse("predict=0.9");
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ(p->predict, 0.9);
  EXPECT_DOUBLE_EQ(SyntheticRoutingParams{}.predict, kDefaultPredictAccuracy);
  EXPECT_FALSE(SyntheticRoutingParams::Parse("predict=1.5").ok());
  auto back = SyntheticRoutingParams::Parse(p->ToString());
  ASSERT_TRUE(back.ok());
  EXPECT_DOUBLE_EQ(back->predict, 0.9);
}

}  // namespace
}  // namespace sluice
