// Pins of the engine's exact output, recorded with the code before the streaming layer was
// made model-agnostic (issue 11, at a1a2c80): the xxh3-64 of every logit bit of each refdata model
// and of a tiny model sampled at a fixed seed, at a full budget and at a streaming one. A refactor
// that changes one bit of any logit changes its hash. The refdata models' closeness to an outside
// implementation is tested in refdata_test.cc; this test pins that nothing moved at all. The pins
// hold the AVX2 kernels' float order (the AVX-512 path has summed the 32-element formats' blocks in
// the scalar order since, block32_avx512.cc): the pinned runs use that path, and on the machine's
// best path the streamed run must equal the resident one.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "chat/sampler.h"
#include "core/kernels/dispatch.h"
#include "io/xxh3.h"
#include "llm/engine.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

const std::string kRefDir = SLUICE_REFDATA_DIR;

struct Pin {
  const char* model;
  uint64_t prompt_hash;  // logits of the 32-token prompt, every position
  uint64_t gen_hash;     // logits of 8 greedy steps after it
};

// xxh3 of the logits of prompt 1..32 (batched) and of 8 greedy decode steps; fully resident, or
// at the smallest budget the memory plan accepts (experts streamed through the fewest slots).
std::pair<uint64_t, uint64_t> RunModel(const std::string& path, bool minimum_budget) {
  EngineOptions o{.threads = 2, .batch_size = 64, .kv_type = KvType::kF32};
  if (minimum_budget) {
    auto probe = Engine::Open(path, o);
    EXPECT_TRUE(probe.ok()) << probe.status().ToString();
    if (!probe.ok()) return {0, 0};
    o.ram_budget_bytes = (*probe)->memory_plan().minimum_budget_bytes;
  }
  auto engine = Engine::Open(path, o);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return {0, 0};
  Engine& e = **engine;
  std::vector<int32_t> prompt;
  for (int i = 1; i <= 32; ++i) prompt.push_back(i);
  std::vector<float> all(prompt.size() * e.config().n_vocab);
  EXPECT_TRUE(e.Prefill(prompt, all).ok());
  const uint64_t prompt_hash = Xxh3_64(all.data(), all.size() * sizeof(float));
  std::vector<float> gen;
  for (int k = 0; k < 8; ++k) {
    gen.insert(gen.end(), e.logits().begin(), e.logits().end());
    int32_t best = 0;
    for (int32_t v = 1; v < static_cast<int32_t>(e.logits().size()); ++v) {
      if (e.logits()[v] > e.logits()[best]) best = v;
    }
    EXPECT_TRUE(e.Decode(best).ok());
  }
  return {prompt_hash, Xxh3_64(gen.data(), gen.size() * sizeof(float))};
}

TEST(LogitPins, RefdataModelsGiveTheRecordedBits) {
  if (!std::filesystem::exists(kRefDir + "/README.md")) {
    GTEST_SKIP() << "reference data not found at " << kRefDir;
  }
  const Pin pins[] = {
      {"tiny-qwen3moe-f32", 0x72e77c528de9a4f3ull, 0x725a5f4f4bdec4f7ull},
      {"tiny-qwen3moe-q8_0", 0xd6a6fafc319e5155ull, 0xd2fad3f8e4911378ull},
      {"tiny-qwen3moe-q4_0-pure", 0xafc9dc0683239be9ull, 0x02f8e310832a906bull},
      {"tiny-qwen3moe256-f32", 0x4e1adbe26b424779ull, 0x4014d8d67a8942b5ull},
      {"tiny-qwen3moe256-q4_k-pure", 0xf259c0104409fee3ull, 0x8788b6e6cc3d3f59ull},
  };
  if (!IsaSupported(Isa::kAvx2)) GTEST_SKIP() << "the pins were recorded on the avx2 path";
  const Isa best = ActiveIsa();
  for (const Pin& pin : pins) {
    const std::string path = kRefDir + "/" + pin.model + ".gguf";
    EXPECT_EQ(RunModel(path, false), RunModel(path, true)) << pin.model << " on " << IsaName(best);
    ASSERT_TRUE(ForceIsa(Isa::kAvx2));
    for (bool minimum : {false, true}) {
      auto [p, g] = RunModel(path, minimum);
      std::printf("{\"%s\", 0x%016llxull, 0x%016llxull},  // minimum budget %d\n", pin.model,
                  static_cast<unsigned long long>(p), static_cast<unsigned long long>(g), minimum);
      EXPECT_EQ(p, pin.prompt_hash) << pin.model << " prompt logits, minimum budget " << minimum;
      EXPECT_EQ(g, pin.gen_hash) << pin.model << " generated logits, minimum budget " << minimum;
    }
    ForceIsa(best);
  }
}

// A tiny model sampled at temperature 0.8 with seed 7: the token ids, which depend on the
// sampler's random stream as well as the logits.
TEST(LogitPins, SampledTokensAtAFixedSeed) {
  TempDir dir;
  const std::string path = dir.File("m.gguf");
  TinyModelSpec spec;
  spec.expert_type = GgmlType::kQ4_K;
  spec.n_embd = 256;
  spec.n_ff = 256;
  ASSERT_TRUE(WriteTinyModel(path, spec).ok());
  auto engine = Engine::Open(path, {.threads = 2, .kv_type = KvType::kF32});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  Engine& e = **engine;
  const std::vector<int32_t> prompt = {5, 17, 33, 2};
  ASSERT_TRUE(e.Prefill(prompt).ok());
  Sampler sampler({.temperature = 0.8f, .seed = 7});
  std::vector<int32_t> ids;
  for (int i = 0; i < 24; ++i) {
    ids.push_back(sampler.Sample(e.logits(), e.history()));
    ASSERT_TRUE(e.Decode(ids.back()).ok());
  }
  std::string got;
  for (int32_t id : ids) got += std::to_string(id) + ",";
  std::printf("sampled: %s\n", got.c_str());
  EXPECT_EQ(got, "63,62,32,28,58,38,74,24,87,21,87,82,91,73,14,3,26,12,44,37,30,21,28,58,");
}

}  // namespace
}  // namespace sluice::testing
