// Several sequences in one forward pass (Engine::Step, the server's continuous batching) give each
// sequence exactly the logits it gets alone, bit for bit, at the smallest RAM budget and with
// everything resident; prompt chunks of one sequence mix with decode rows of others; an expert
// that several sequences route to in a step is read once for all of them; bad steps are refused
// with nothing processed.
#include <gtest/gtest.h>

#include <cstring>

#include "core/ops/argmax.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

TinyModelSpec StepSpec() {
  return TinyModelSpec{.n_layer = 3,
                       .n_expert = 16,
                       .n_expert_used = 4,
                       .matrix_type = GgmlType::kQ8_0,
                       .expert_type = GgmlType::kQ4_0,
                       .embd_type = GgmlType::kQ8_0,
                       .seed = 11};
}

constexpr int kSequences = 5;
constexpr int kDecode = 8;

// Every sequence's logits after each of its prompt's last token and each decoded token.
using Logits = std::vector<std::vector<float>>;

std::vector<int32_t> Prompt(int i, int n_vocab) {
  std::vector<int32_t> p = TestTokens(3 + 7 * i, n_vocab);
  for (int32_t& t : p) t = (t + 31 * i) % n_vocab;  // different prompts of different lengths
  return p;
}

Logits RunAlone(const std::string& path, EngineOptions o, std::span<const int32_t> prompt) {
  Logits out;
  auto engine = Engine::Open(path, o);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return out;
  Engine& e = **engine;
  EXPECT_TRUE(e.Prefill(prompt).ok());
  out.emplace_back(e.logits().begin(), e.logits().end());
  for (int i = 0; i < kDecode; ++i) {
    EXPECT_TRUE(e.Decode(ArgMax(e.logits())).ok());
    out.emplace_back(e.logits().begin(), e.logits().end());
  }
  return out;
}

// All sequences on one engine: sequence i joins at step i (its prompt in chunks of up to 4 tokens
// beside the others' decode rows), decodes greedily, and leaves after kDecode tokens.
std::vector<Logits> RunTogether(Engine& e, const std::vector<std::vector<int32_t>>& prompts,
                                EngineCounters* counters) {
  std::vector<Logits> out(prompts.size());
  std::vector<std::unique_ptr<Sequence>> seqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto s = e.NewSequence();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    if (!s.ok()) return out;
    seqs.push_back(std::move(*s));
  }
  std::vector<size_t> fed(prompts.size(), 0);
  std::vector<int32_t> next(prompts.size(), -1);
  const EngineCounters before = e.counters();
  for (int step = 0;; ++step) {
    std::vector<Engine::StepInput> inputs;
    for (size_t i = 0; i < prompts.size(); ++i) {
      if (static_cast<int>(i) > step || out[i].size() == kDecode + 1) continue;
      if (fed[i] < prompts[i].size()) {
        const size_t n = std::min<size_t>(4, prompts[i].size() - fed[i]);
        inputs.push_back({.seq = seqs[i].get(),
                          .tokens = std::span<const int32_t>(prompts[i]).subspan(fed[i], n),
                          .prompt = true});
      } else {
        inputs.push_back({.seq = seqs[i].get(), .tokens = std::span<const int32_t>(&next[i], 1)});
      }
    }
    if (inputs.empty()) break;
    Status s = e.Step(inputs);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return out;
    for (const Engine::StepInput& in : inputs) {
      const size_t i = static_cast<size_t>(
          std::find_if(seqs.begin(), seqs.end(), [&](auto& q) { return q.get() == in.seq; }) -
          seqs.begin());
      if (in.prompt) fed[i] += in.tokens.size();
      if (fed[i] < prompts[i].size()) continue;  // mid-prompt: its logits are not used
      std::span<const float> l = seqs[i]->logits();
      out[i].emplace_back(l.begin(), l.end());
      next[i] = ArgMax(l);
    }
  }
  if (counters != nullptr) *counters = e.counters() - before;
  return out;
}

class StepTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("model.gguf");
    ASSERT_TRUE(WriteTinyModel(path_, StepSpec()).ok());
    for (int i = 0; i < kSequences; ++i) prompts_.push_back(Prompt(i, StepSpec().n_vocab));
  }
  EngineOptions Options(int sequences) const {
    return EngineOptions{.threads = 2, .batch_size = 16, .max_sequences = sequences};
  }
  uint64_t MinimumBudget(int sequences) const {
    auto probe = Engine::Open(path_, Options(sequences));
    EXPECT_TRUE(probe.ok()) << probe.status().ToString();
    return probe.ok() ? (*probe)->memory_plan().minimum_budget_bytes : 0;
  }

  TempDir dir_;
  std::string path_;
  std::vector<std::vector<int32_t>> prompts_;
};

TEST_F(StepTest, SequencesSteppedTogetherGetTheLogitsTheyGetAlone) {
  std::vector<Logits> alone;
  for (const auto& p : prompts_) alone.push_back(RunAlone(path_, Options(1), p));
  // Everything resident, and the smallest budget the plan allows (experts stream every step).
  for (uint64_t budget : {uint64_t{0}, MinimumBudget(kSequences + 1)}) {
    EngineOptions o = Options(kSequences + 1);  // + the engine's own sequence
    o.ram_budget_bytes = budget;
    auto engine = Engine::Open(path_, o);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    const std::vector<Logits> together = RunTogether(**engine, prompts_, nullptr);
    for (int i = 0; i < kSequences; ++i) {
      ASSERT_EQ(together[i].size(), alone[i].size()) << "sequence " << i;
      for (size_t t = 0; t < alone[i].size(); ++t) {
        ASSERT_EQ(together[i][t].size(), alone[i][t].size());
        EXPECT_EQ(0, std::memcmp(together[i][t].data(), alone[i][t].data(),
                                 alone[i][t].size() * sizeof(float)))
            << "sequence " << i << " token " << t << " at budget " << budget;
      }
    }
  }
}

TEST_F(StepTest, AnExpertRoutedByManySequencesIsReadOncePerStep) {
  // At the smallest budget nothing stays cached between layers' uses, so every expert a step
  // needs is read in that step. Stepped together, a step's reads are the union of its rows'
  // experts: at most what the same rows read one sequence at a time, and fewer when they share.
  EngineOptions o = Options(kSequences + 1);
  o.ram_budget_bytes = MinimumBudget(kSequences + 1);
  auto together_engine = Engine::Open(path_, o);
  ASSERT_TRUE(together_engine.ok()) << together_engine.status().ToString();
  EngineCounters together;
  RunTogether(**together_engine, prompts_, &together);
  uint64_t alone_misses = 0;
  int64_t alone_tokens = 0;
  for (const auto& p : prompts_) {
    EngineOptions one = Options(1);
    one.ram_budget_bytes = MinimumBudget(1);
    auto e = Engine::Open(path_, one);
    ASSERT_TRUE(e.ok());
    const EngineCounters before = (*e)->counters();
    ASSERT_TRUE((*e)->Prefill(p).ok());
    for (int i = 0; i < kDecode; ++i) ASSERT_TRUE((*e)->Decode(ArgMax((*e)->logits())).ok());
    const EngineCounters c = (*e)->counters() - before;
    alone_misses += c.cache.misses;
    alone_tokens += c.prompt_tokens + c.decoded_tokens;
  }
  EXPECT_EQ(together.prompt_tokens + together.decoded_tokens, alone_tokens);
  EXPECT_GT(together.cache.misses, 0u);
  EXPECT_LT(together.cache.misses, alone_misses);
}

TEST_F(StepTest, BadStepsAreRefusedWithNothingProcessed) {
  auto engine = Engine::Open(path_, Options(3));
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  Engine& e = **engine;
  auto a = e.NewSequence();
  ASSERT_TRUE(a.ok());
  const std::vector<int32_t> one = {1};
  const std::vector<int32_t> many(17, 1);  // above batch_size 16
  const std::vector<int32_t> bad = {static_cast<int32_t>(StepSpec().n_vocab)};
  Sequence& s = **a;
  const std::vector<std::pair<std::vector<Engine::StepInput>, std::string>> cases = {
      {{}, "no sequences"},
      {{{.seq = &s, .tokens = {}}}, "no tokens"},
      {{{.seq = &s, .tokens = one}, {.seq = &s, .tokens = one}}, "repeats input 0"},
      {{{.seq = &s, .tokens = many}}, "batch size is 16"},
      {{{.seq = &s, .tokens = one}, {.seq = &e.sequence(), .tokens = bad}},
       "outside the vocabulary"},
  };
  for (const auto& [inputs, message] : cases) {
    Status st = e.Step(inputs);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << message;
    EXPECT_NE(st.ToString().find(message), std::string::npos) << st.ToString();
    EXPECT_EQ(s.n_past(), 0) << message;
    EXPECT_EQ(e.sequence().n_past(), 0) << message;
  }
}

}  // namespace
}  // namespace sluice::testing
