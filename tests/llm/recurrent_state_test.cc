// The recurrent state of hybrid models (gated delta-net layers: Qwen3.5, Qwen3-Next) is part of a
// conversation, on ../shared/refdata/archs' tiny models:
//  - going back (Truncate: a cancelled or regenerated reply) and continuing gives the bits a fresh
//    run of the kept tokens plus the new ones gives (the engine replays the kept tokens);
//  - a step that fails midway (an I/O error on an expert read) leaves the conversation
//    consistent: retrying it continues exactly as the fault-free run;
//  - several sequences in one step give each the bits it gets alone.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>

#include "core/ops/argmax.h"
#include "io/gguf_convert.h"
#include "llm/engine.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

const std::string kArchDir = std::string(SLUICE_REFDATA_DIR) + "/archs";

class RecurrentState : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kArchDir + "/README.md")) {
      GTEST_SKIP() << "reference data not found at " << kArchDir;
    }
    model_ = kArchDir + "/" + GetParam() + ".gguf";
  }
  std::string model_;
};

std::vector<float> LastLogits(Engine& e) { return {e.logits().begin(), e.logits().end()}; }

TEST_P(RecurrentState, TruncateThenContinueEqualsAFreshRun) {
  const EngineOptions o{.threads = 2, .batch_size = 8, .kv_type = KvType::kF32};
  const std::vector<int32_t> prompt = TestTokens(20, 299), more = {7, 100, 42, 3, 250, 18, 9};
  auto a = Engine::Open(model_, o);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  Engine& e = **a;
  ASSERT_TRUE(e.Prefill(prompt).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(e.Decode(ArgMax(e.logits())).ok());
  e.Truncate(static_cast<int64_t>(prompt.size()));  // drop the reply
  EXPECT_TRUE(e.sequence().needs_replay());
  ASSERT_TRUE(e.Prefill(more).ok());
  EXPECT_FALSE(e.sequence().needs_replay());
  ASSERT_EQ(e.n_past(), static_cast<int64_t>(prompt.size() + more.size()));

  auto b = Engine::Open(model_, o);
  ASSERT_TRUE(b.ok());
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), more.begin(), more.end());
  ASSERT_TRUE((*b)->Prefill(all).ok());
  const std::vector<float> want = LastLogits(**b), got = LastLogits(e);
  EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)));
  // And the conversation goes on the same way.
  for (int i = 0; i < 4; ++i) {
    const int32_t t = ArgMax(e.logits());
    ASSERT_EQ(t, ArgMax((*b)->logits())) << i;
    ASSERT_TRUE(e.Decode(t).ok());
    ASSERT_TRUE((*b)->Decode(t).ok());
  }
}

// Fails one expert read once armed.
class FailOnce : public IoFaultInjector {
 public:
  void Arm() { armed_.store(true); }
  int64_t OnRead(int, uint64_t, uint64_t, uint8_t*, int64_t result) override {
    if (!armed_.load() || fired_.exchange(true)) return result;
    return -EIO;
  }
  bool fired() const { return fired_.load(); }

 private:
  std::atomic<bool> armed_{false}, fired_{false};
};

TEST_P(RecurrentState, AStepThatFailsMidwayCanBeRetried) {
  TempDir dir;
  const std::string archive = dir.File("m.sluice");
  ASSERT_TRUE(ConvertGgufToArchive(model_, archive).ok());
  auto probe = Engine::Open(archive, {.threads = 1});
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  const uint64_t budget = (*probe)->memory_plan().minimum_budget_bytes;
  probe->reset();
  const std::vector<int32_t> prompt = TestTokens(12, 299);

  auto run = [&](FailOnce* faults, std::vector<int32_t>* tokens) {
    auto engine = Engine::Open(archive, {.ram_budget_bytes = budget,
                                         .threads = 1,
                                         .io = IoBackendKind::kPread,
                                         .io_faults = faults});
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    Engine& e = **engine;
    ASSERT_TRUE(e.Prefill(prompt).ok());
    if (faults != nullptr) faults->Arm();
    int failures = 0;
    while (tokens->size() < 10) {
      const int32_t t = ArgMax(e.logits());
      Status s = e.Decode(t);
      if (!s.ok()) {  // the read failed in some layer: the step did not happen; retry it
        ++failures;
        ASSERT_LE(failures, 1) << s.ToString();
        EXPECT_EQ(e.n_past(), static_cast<int64_t>(prompt.size() + tokens->size()));
        continue;
      }
      tokens->push_back(t);
    }
    if (faults != nullptr) {
      EXPECT_EQ(failures, 1) << "the fault never hit a decode read";
    }
  };
  std::vector<int32_t> clean, faulted;
  run(nullptr, &clean);
  FailOnce faults;
  run(&faults, &faulted);
  EXPECT_TRUE(faults.fired());
  EXPECT_EQ(faulted, clean);
}

TEST_P(RecurrentState, SequencesInOneStepEqualEachAlone) {
  const EngineOptions o{.threads = 2, .batch_size = 32, .max_sequences = 3};
  const std::vector<int32_t> p1 = TestTokens(9, 299), p2 = {5, 6, 7, 8, 9, 10, 11};
  auto engine = Engine::Open(model_, o);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  Engine& e = **engine;
  auto s1 = e.NewSequence();
  auto s2 = e.NewSequence();
  ASSERT_TRUE(s1.ok() && s2.ok());
  const Engine::StepInput both[] = {{.seq = s1->get(), .tokens = p1, .prompt = true},
                                    {.seq = s2->get(), .tokens = p2, .prompt = true}};
  ASSERT_TRUE(e.Step(both).ok());
  for (const auto& [seq, prompt] : {std::pair{s1->get(), p1}, std::pair{s2->get(), p2}}) {
    auto alone = Engine::Open(model_, o);
    ASSERT_TRUE(alone.ok());
    ASSERT_TRUE((*alone)->Prefill(prompt).ok());
    EXPECT_EQ(0, std::memcmp((*alone)->logits().data(), seq->logits().data(),
                             seq->logits().size() * sizeof(float)));
  }
}

INSTANTIATE_TEST_SUITE_P(Hybrid, RecurrentState,
                         ::testing::Values("tiny-qwen35moe-q4_k-pure", "tiny-qwen3next-q8_0"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return n;
                         });

}  // namespace
}  // namespace sluice::testing
