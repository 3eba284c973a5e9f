// The RoutingHook is called for every (token, MoE layer) in token order with the router's
// probabilities, and the engine computes whatever route it returns.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/ops/argmax.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

class RecordingHook : public RoutingHook {
 public:
  struct Call {
    int layer;
    int64_t token;
    int top;  // argmax of the probabilities
    double sum;
    Route route;
  };
  void OnRoute(int layer, int64_t token, std::span<const float> probs, Route* route) override {
    double sum = 0;
    for (float p : probs) sum += p;
    calls.push_back(Call{layer, token, ArgMax(probs), sum, *route});
  }
  std::vector<Call> calls;
};

// Routes every token of every layer to experts 0..k-1 with equal weights.
class ForcingHook : public RoutingHook {
 public:
  explicit ForcingHook(int k) : k_(k) {}
  void OnRoute(int, int64_t, std::span<const float>, Route* route) override {
    route->k = k_;
    for (int j = 0; j < k_; ++j) route->ids[j] = j, route->weights[j] = 1.0f / k_;
  }

 private:
  int k_;
};

class BadHook : public RoutingHook {
 public:
  void OnRoute(int, int64_t, std::span<const float>, Route* route) override { route->ids[0] = 99; }
};

TEST(RoutingHook, CalledForEveryTokenAndLayerInOrder) {
  TempDir dir;
  TinyModelSpec spec{.n_layer = 3};
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(path, spec).ok());
  RecordingHook hook;
  auto engine =
      Engine::Open(path, EngineOptions{.threads = 1, .batch_size = 4, .routing_hook = &hook});
  ASSERT_TRUE(engine.ok());
  const std::vector<int32_t> tokens = TestTokens(10, spec.n_vocab);
  ASSERT_TRUE((*engine)->Prefill(tokens).ok());
  ASSERT_TRUE((*engine)->Decode(5).ok());
  (*engine)->Reset();  // token indices keep counting across a reset
  ASSERT_TRUE((*engine)->Decode(6).ok());
  ASSERT_EQ(hook.calls.size(), 12u * spec.n_layer);
  std::vector<int64_t> next(spec.n_layer, 0);
  for (const RecordingHook::Call& c : hook.calls) {
    ASSERT_GE(c.layer, 0);
    ASSERT_LT(c.layer, spec.n_layer);
    EXPECT_EQ(c.token, next[c.layer]++) << "layer " << c.layer;
    EXPECT_NEAR(c.sum, 1.0, 1e-5);
    EXPECT_EQ(c.route.k, spec.n_expert_used);
    EXPECT_EQ(c.route.ids[0], c.top);  // the router's own choice arrives first
  }
}

TEST(RoutingHook, RewrittenRoutesAreComputedAndBatchingStillMatches) {
  TempDir dir;
  TinyModelSpec spec;
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(path, spec).ok());
  const std::vector<int32_t> tokens = TestTokens(12, spec.n_vocab);
  auto plain = EngineLogits(path, EngineOptions{.threads = 1}, tokens);
  ForcingHook force(1);
  auto forced = EngineLogits(path, EngineOptions{.threads = 1, .routing_hook = &force}, tokens);
  auto forced_seq = EngineLogits(
      path, EngineOptions{.threads = 1, .batch_size = 1, .routing_hook = &force}, tokens);
  ASSERT_TRUE(plain.ok() && forced.ok() && forced_seq.ok());
  EXPECT_GT(CompareLogits(*forced, *plain, spec.n_vocab).max_abs, 1e-3);
  EXPECT_EQ(0, std::memcmp(forced->data(), forced_seq->data(), forced->size() * sizeof(float)));

  BadHook bad;
  auto engine = Engine::Open(path, EngineOptions{.threads = 1, .routing_hook = &bad});
  ASSERT_TRUE(engine.ok());
  Status s = (*engine)->Prefill(tokens);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("expert 99"), std::string::npos) << s.ToString();
}

}  // namespace
}  // namespace sluice::testing
