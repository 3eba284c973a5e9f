// Streaming never changes the result: the same logits, bit for bit, at any RAM budget (minimum,
// in between, whole model), from the GGUF and from the converted archive, through the cache or
// the mapping, with either I/O backend, any batch size, any thread count and any dense residency.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "core/ops/argmax.h"
#include "io/gguf_convert.h"
#include "moe/synthetic_routing.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

// A model with more experts than the smallest cache holds, quantized like a real one.
TinyModelSpec StreamingSpec() {
  return TinyModelSpec{.n_layer = 3,
                       .n_expert = 16,
                       .n_expert_used = 4,
                       .matrix_type = GgmlType::kQ8_0,
                       .expert_type = GgmlType::kQ4_0,
                       .embd_type = GgmlType::kQ8_0,
                       .seed = 7};
}

struct Trace {
  std::vector<float> prompt_logits;  // (n_prompt, n_vocab)
  std::vector<float> decode_logits;  // (n_decode, n_vocab)
  std::vector<int32_t> generated;
  EngineCounters counters;
  int slot_count = 0;
};

// Prefill `tokens`, then 6 greedy decode steps.
Trace RunTrace(const std::string& path, const EngineOptions& options,
               std::span<const int32_t> tokens) {
  Trace t;
  auto engine = Engine::Open(path, options);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return t;
  Engine& e = **engine;
  t.prompt_logits.resize(tokens.size() * e.config().n_vocab);
  Status s = e.Prefill(tokens, t.prompt_logits);
  EXPECT_TRUE(s.ok()) << s.ToString();
  for (int i = 0; i < 6; ++i) {
    const int32_t id = ArgMax(e.logits());
    t.generated.push_back(id);
    s = e.Decode(id);
    EXPECT_TRUE(s.ok()) << s.ToString();
    t.decode_logits.insert(t.decode_logits.end(), e.logits().begin(), e.logits().end());
  }
  t.counters = e.counters();
  t.slot_count = e.expert_cache() != nullptr ? e.expert_cache()->slot_count() : 0;
  return t;
}

void ExpectIdentical(const Trace& a, const Trace& b, const std::string& what) {
  ASSERT_EQ(a.prompt_logits.size(), b.prompt_logits.size()) << what;
  EXPECT_EQ(0, std::memcmp(a.prompt_logits.data(), b.prompt_logits.data(),
                           a.prompt_logits.size() * sizeof(float)))
      << what << ": prompt logits differ";
  ASSERT_EQ(a.decode_logits.size(), b.decode_logits.size()) << what;
  EXPECT_EQ(0, std::memcmp(a.decode_logits.data(), b.decode_logits.data(),
                           a.decode_logits.size() * sizeof(float)))
      << what << ": decode logits differ";
  EXPECT_EQ(a.generated, b.generated) << what;
}

class Streaming : public ::testing::Test {
 protected:
  void SetUp() override {
    spec_ = StreamingSpec();
    gguf_ = dir_.File("model.gguf");
    archive_ = dir_.File("model.sluice");
    ASSERT_TRUE(WriteTinyModel(gguf_, spec_).ok());
    auto converted = ConvertGgufToArchive(gguf_, archive_);
    ASSERT_TRUE(converted.ok()) << converted.status().ToString();
    tokens_ = TestTokens(37, spec_.n_vocab);
  }
  EngineOptions Base() const { return EngineOptions{.threads = 2, .batch_size = 16}; }

  TempDir dir_;
  TinyModelSpec spec_;
  std::string gguf_, archive_;
  std::vector<int32_t> tokens_;
};

TEST_F(Streaming, EveryBudgetGgufAndArchiveGiveBitIdenticalLogits) {
  const Trace reference = RunTrace(gguf_, Base(), tokens_);  // unlimited: every expert fits
  for (const std::string& path : {gguf_, archive_}) {
    auto probe = Engine::Open(path, Base());
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    const MemoryPlan plan = (*probe)->memory_plan();
    probe->reset();
    const uint64_t whole = plan.fixed_bytes() + plan.all_experts_bytes;
    const uint64_t budgets[] = {plan.minimum_budget_bytes, (plan.minimum_budget_bytes + whole) / 2,
                                whole};
    for (uint64_t budget : budgets) {
      EngineOptions o = Base();
      o.ram_budget_bytes = budget;
      const Trace t = RunTrace(path, o, tokens_);
      ExpectIdentical(reference, t, path + " at budget " + std::to_string(budget));
      if (budget == plan.minimum_budget_bytes) {
        EXPECT_EQ(t.slot_count, spec_.n_expert_used);
        EXPECT_GT(t.counters.cache.misses, uint64_t(spec_.n_layer * spec_.n_expert));
      }
      if (budget == whole) {
        EXPECT_EQ(t.slot_count, spec_.n_layer * spec_.n_expert);
        // Every expert is read at most once when all fit.
        EXPECT_LE(t.counters.cache.misses, uint64_t(spec_.n_layer * spec_.n_expert));
      }
    }
  }
}

TEST_F(Streaming, MmapSourceAndBothIoBackendsAreIdentical) {
  const Trace reference = RunTrace(gguf_, Base(), tokens_);
  EngineOptions mmap = Base();
  mmap.expert_source = ExpertSourceKind::kMmap;
  ExpectIdentical(reference, RunTrace(gguf_, mmap, tokens_), "gguf mmap");
  ExpectIdentical(reference, RunTrace(archive_, mmap, tokens_), "archive mmap");
  for (IoBackendKind kind : {IoBackendKind::kPread, IoBackendKind::kUring}) {
    EngineOptions o = Base();
    o.io = kind;
    auto engine = Engine::Open(gguf_, o);
    if (!engine.ok() && kind == IoBackendKind::kUring) {
      std::printf("io_uring unavailable, not compared: %s\n", engine.status().ToString().c_str());
      continue;
    }
    ExpectIdentical(reference, RunTrace(gguf_, o, tokens_), IoBackendKindName(kind));
  }
}

TEST_F(Streaming, BatchSizeThreadsAndTokenByTokenAreIdentical) {
  EngineOptions one = Base();
  one.batch_size = 1;
  const Trace reference = RunTrace(gguf_, one, tokens_);
  for (int batch : {3, 16, 64}) {
    for (int threads : {1, 2}) {
      EngineOptions o = Base();
      o.batch_size = batch;
      o.threads = threads;
      ExpectIdentical(reference, RunTrace(gguf_, o, tokens_),
                      "batch " + std::to_string(batch) + " threads " + std::to_string(threads));
    }
  }
  // Decode() one token at a time gives the prompt rows too.
  auto engine = Engine::Open(gguf_, Base());
  ASSERT_TRUE(engine.ok());
  const int64_t v = spec_.n_vocab;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    ASSERT_TRUE((*engine)->Decode(tokens_[i]).ok());
    ASSERT_EQ(0, std::memcmp((*engine)->logits().data(), reference.prompt_logits.data() + i * v,
                             v * sizeof(float)))
        << "position " << i;
  }
}

TEST_F(Streaming, DenseResidencyDoesNotChangeResults) {
  const Trace reference = RunTrace(gguf_, Base(), tokens_);
  for (DenseResidency r : {DenseResidency::kMmap, DenseResidency::kMlock}) {
    EngineOptions o = Base();
    o.dense = r;
    auto engine = Engine::Open(gguf_, o);
    if (!engine.ok() && engine.status().code() == StatusCode::kResourceExhausted) {
      std::printf("mlock refused here (%s): not compared\n", engine.status().ToString().c_str());
      continue;
    }
    ExpectIdentical(reference, RunTrace(gguf_, o, tokens_), DenseResidencyName(r));
  }
}

TEST_F(Streaming, TruncateThenContinueEqualsAFreshRun) {
  auto engine = Engine::Open(gguf_, Base());
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  ASSERT_TRUE(e.Prefill(tokens_).ok());
  e.Truncate(20);
  EXPECT_EQ(e.n_past(), 20);
  ASSERT_TRUE(e.Prefill(std::span(tokens_).subspan(20)).ok());
  std::vector<float> after(e.logits().begin(), e.logits().end());
  const Trace fresh = RunTrace(gguf_, Base(), tokens_);
  const int64_t v = spec_.n_vocab;
  EXPECT_EQ(0, std::memcmp(after.data(), fresh.prompt_logits.data() + (tokens_.size() - 1) * v,
                           v * sizeof(float)));
}

TEST_F(Streaming, BudgetBelowTheMinimumIsRefusedWithTheNumbers) {
  auto probe = Engine::Open(gguf_, Base());
  ASSERT_TRUE(probe.ok());
  const uint64_t minimum = (*probe)->memory_plan().minimum_budget_bytes;
  EngineOptions o = Base();
  o.ram_budget_bytes = minimum - 1;
  auto engine = Engine::Open(gguf_, o);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(engine.status().message().find("needs at least"), std::string::npos)
      << engine.status().ToString();
  EXPECT_NE(engine.status().message().find("dense weights"), std::string::npos);
  o.ram_budget_bytes = 1 << 20;  // below the dense part alone
  engine = Engine::Open(gguf_, o);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kResourceExhausted);
}

// Reading the next layer's predicted experts ahead (and dropping the wrong guesses) only moves
// reads earlier: with the model's router as predictor and with synthetic routing's simulated
// predictor, the results are bit-identical to no prefetching, and the prefetch did happen.
TEST_F(Streaming, NextLayerPrefetchDoesNotChangeResults) {
  auto probe = Engine::Open(archive_, Base());
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  const MemoryPlan plan = (*probe)->memory_plan();
  probe->reset();
  const uint64_t whole = plan.fixed_bytes() + plan.all_experts_bytes;
  RoutingShape shape{.n_layer = spec_.n_layer,
                     .moe_layers = {0, 1, 2},
                     .n_expert = spec_.n_expert,
                     .k = spec_.n_expert_used};
  for (bool synthetic : {false, true}) {
    Trace runs[2];
    for (int i = 0; i < 2; ++i) {
      EngineOptions o = Base();
      o.ram_budget_bytes = (plan.minimum_budget_bytes + whole) / 2;
      o.prefetch_next = i == 0 ? 0 : spec_.n_expert_used;
      SyntheticRoutingParams params;
      params.predict = 0.5;  // plenty of wrong guesses to drop
      SyntheticRoutingHook hook(params, shape);
      if (synthetic) o.routing_hook = &hook;
      runs[i] = RunTrace(archive_, o, tokens_);
    }
    const std::string what = synthetic ? "synthetic routing" : "model routing";
    ASSERT_GE(runs[1].slot_count, 3 * spec_.n_expert_used) << what;
    ExpectIdentical(runs[0], runs[1], what + ": prefetch on vs off");
    EXPECT_EQ(runs[0].counters.moe.predicted_experts, 0u) << what;
    // 6 decoded tokens x every layer x k predicted experts: layers 1.. by the layer before
    // them, layer 0 from the token's embedding before its attention.
    EXPECT_EQ(runs[1].counters.moe.predicted_experts,
              uint64_t(6 * spec_.n_layer * spec_.n_expert_used))
        << what;
    EXPECT_GT(runs[1].counters.moe.speculative_reads, 0u) << what;
    EXPECT_LE(runs[1].counters.moe.speculative_used, runs[1].counters.moe.speculative_reads)
        << what;
    if (synthetic) {
      // Wrong guesses were dropped from the cache, not kept as if they were about to be used.
      EXPECT_GT(runs[1].counters.cache.prefetch_wasted, 0u) << what;
    }
  }
}

// The architectures of ../shared/refdata/archs (leading dense layers, selection bias, shared
// experts...) stream like the rest: the smallest budget equals everything resident, bit for bit,
// from the GGUF and from its archive.
TEST(StreamingArchitectures, SmallestBudgetEqualsResident) {
  const std::string dir = std::string(SLUICE_REFDATA_DIR) + "/archs";
  if (!std::filesystem::exists(dir + "/README.md")) GTEST_SKIP() << "no reference data at " << dir;
  TempDir tmp;
  for (std::string name : {"tiny-glm4moe-q4_k-pure", "tiny-qwen35moe-q4_k-pure",
                           "tiny-qwen3next-q8_0", "tiny-deepseek2-q4_k-pure"}) {
    const std::string gguf = dir + "/" + name + ".gguf";
    const std::string archive = tmp.File(name + ".sluice");
    auto converted = ConvertGgufToArchive(gguf, archive);
    ASSERT_TRUE(converted.ok()) << converted.status().ToString();
    const EngineOptions base{.threads = 2, .batch_size = 16};
    const std::vector<int32_t> tokens = TestTokens(29, 299);
    const Trace reference = RunTrace(gguf, base, tokens);
    for (const std::string& path : {gguf, archive}) {
      auto probe = Engine::Open(path, base);
      ASSERT_TRUE(probe.ok()) << probe.status().ToString();
      EngineOptions o = base;
      o.ram_budget_bytes = (*probe)->memory_plan().minimum_budget_bytes;
      probe->reset();
      const Trace t = RunTrace(path, o, tokens);
      ExpectIdentical(reference, t, path + " at the smallest budget");
      EXPECT_GT(t.counters.cache.misses, 0u) << path;
    }
  }
}

// Leading dense layers have no experts: the plan counts only the MoE layers' and preloading reads
// exactly those (it asked for layer 0's before the fix, a CHECK failure).
TEST(StreamingArchitectures, DenseLayersHoldNoExperts) {
  const std::string path = std::string(SLUICE_REFDATA_DIR) + "/archs/tiny-glm4moe-q4_k-pure.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "no reference model at " << path;
  auto engine = Engine::Open(path, EngineOptions{.threads = 2});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const ModelConfig& c = (*engine)->config();
  ASSERT_EQ(c.n_dense_layers, 1);
  const MemoryPlan& plan = (*engine)->memory_plan();
  EXPECT_EQ(plan.all_experts_bytes,
            plan.slot_bytes * static_cast<uint64_t>(c.n_layer - 1) * c.n_expert);
  ASSERT_TRUE((*engine)->PreloadExperts().ok());
  EXPECT_EQ((*engine)->counters().cache.misses, static_cast<uint64_t>(c.n_layer - 1) * c.n_expert);
}

}  // namespace
}  // namespace sluice::testing
