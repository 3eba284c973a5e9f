// Continuous batching never changes a result: eight requests generating together get, each, the
// very text they get alone (greedy and seeded sampling), with prompts joining mid-decode and KV
// prefixes reused. Stop strings, token limits, the queue limit, cancellation, deadlines and
// shutdown end requests as documented, and no request is left hanging.
#include "server/batch_scheduler.h"

#include <gtest/gtest.h>

#include "core/base/clock.h"
#include "tests/server/served_model.h"

namespace sluice::server::testing {
namespace {

GenerationRequest Request(const ServedModel& m, const std::string& text, int64_t max_tokens,
                          float temperature, uint64_t seed) {
  GenerationRequest r;
  const std::vector<ChatMessage> messages = {{ChatRole::kUser, text}};
  r.prompt = m.tokenizer->Encode(m.chat_template->Render(messages, {}),
                                 EncodeOptions{.parse_special = true});
  r.sampling = SamplerOptions{.temperature = temperature, .seed = seed};
  r.max_tokens = max_tokens;
  r.stop_tokens = m.chat_template->StopTokens(*m.tokenizer);
  return r;
}

std::vector<GenerationRequest> EightRequests(const ServedModel& m) {
  std::vector<GenerationRequest> rs;
  for (int i = 0; i < 8; ++i) {
    // Half greedy, half sampled with their own seeds; prompts of different lengths.
    rs.push_back(Request(m, "question " + std::to_string(i) + std::string(i * 5, 'x'), 20 + i,
                         i % 2 == 0 ? 0.0f : 0.9f, 100 + i));
  }
  return rs;
}

ServedModel::Outcome RunOne(ServedModel& m, GenerationRequest r) {
  auto g = m.scheduler->Submit(std::move(r));
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? ServedModel::Collect(**g) : ServedModel::Outcome{};
}

// Waits until the generation has produced some text (so it holds a sequence and is decoding).
std::string FirstText(Generation& g) {
  for (;;) {
    Generation::Update u = g.Wait(1000);
    if (!u.text.empty() || u.done) return u.text;
  }
}

TEST(BatchScheduler, EightStreamsTogetherGetWhatEachGetsAlone) {
  ServedModel alone_model;
  {
    Status opened = ServedModel::Open(1, 8, &alone_model);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  std::vector<ServedModel::Outcome> alone;
  for (GenerationRequest& r : EightRequests(alone_model)) alone.push_back(RunOne(alone_model, r));

  ServedModel together_model;
  {
    Status opened = ServedModel::Open(8, 8, &together_model);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  std::vector<std::shared_ptr<Generation>> gens;
  for (GenerationRequest& r : EightRequests(together_model)) {
    auto g = together_model.scheduler->Submit(std::move(r));
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    gens.push_back(*g);
  }
  for (size_t i = 0; i < gens.size(); ++i) {
    const ServedModel::Outcome o = ServedModel::Collect(*gens[i]);
    EXPECT_EQ(o.text, alone[i].text) << "stream " << i;
    EXPECT_EQ(o.stats.generated_tokens, alone[i].stats.generated_tokens) << "stream " << i;
    EXPECT_EQ(o.reason, alone[i].reason) << "stream " << i;
    EXPECT_GT(o.stats.generated_tokens, 0);
  }
  const SchedulerMetrics m = together_model.scheduler->metrics();
  EXPECT_EQ(m.requests, 8);
  // Decoding together: fewer steps than tokens generated.
  EXPECT_LT(m.steps, m.generated_tokens);
}

TEST(BatchScheduler, AConversationsNextTurnReusesItsKvPrefix) {
  ServedModel m;
  {
    Status opened = ServedModel::Open(2, 4, &m);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  GenerationRequest first = Request(m, "hello", 6, 0.0f, 1);
  const std::vector<int32_t> prompt = first.prompt;
  const ServedModel::Outcome a = RunOne(m, first);
  EXPECT_EQ(a.stats.cached_tokens, 0);
  // The same prompt again: all but its last token come from the KV cache, and the reply is the
  // same.
  GenerationRequest again = Request(m, "hello", 6, 0.0f, 1);
  const ServedModel::Outcome b = RunOne(m, again);
  EXPECT_EQ(b.stats.cached_tokens, static_cast<int64_t>(prompt.size()) - 1);
  EXPECT_EQ(b.text, a.text);
}

TEST(BatchScheduler, StopStringsEndTheReplyJustBeforeThem) {
  ServedModel m;
  {
    Status opened = ServedModel::Open(1, 4, &m);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  const ServedModel::Outcome full = RunOne(m, Request(m, "stop here", 40, 0.0f, 1));
  ASSERT_EQ(full.reason, FinishReason::kLength);
  // An ASCII character of the reply (not its first) as the stop string.
  size_t k = 1;
  while (k < full.text.size() && static_cast<unsigned char>(full.text[k]) >= 0x80) ++k;
  ASSERT_LT(k, full.text.size()) << "no ASCII in the reply to stop at: " << full.text;
  const std::string stop = full.text.substr(k, 1);

  GenerationRequest r = Request(m, "stop here", 40, 0.0f, 1);
  r.stop = {stop, "\x01never"};
  const ServedModel::Outcome cut = RunOne(m, r);
  EXPECT_EQ(cut.reason, FinishReason::kStop);
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));

  // A stop string whose start appears but never its whole: held back, then given out in full.
  GenerationRequest partial = Request(m, "stop here", 40, 0.0f, 1);
  partial.stop = {stop + "\x01"};
  const ServedModel::Outcome whole = RunOne(m, partial);
  EXPECT_EQ(whole.reason, FinishReason::kLength);
  EXPECT_EQ(whole.text, full.text);
}

TEST(BatchScheduler, TokenLimitAndDeadline) {
  ServedModel m;
  {
    Status opened = ServedModel::Open(1, 4, &m);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  const ServedModel::Outcome five = RunOne(m, Request(m, "count", 5, 0.0f, 1));
  EXPECT_EQ(five.reason, FinishReason::kLength);
  EXPECT_EQ(five.stats.generated_tokens, 5);

  GenerationRequest late = Request(m, "late", -1, 0.0f, 1);
  late.deadline_ns = 1;  // long past
  const ServedModel::Outcome o = RunOne(m, late);
  EXPECT_EQ(o.reason, FinishReason::kDeadline);
  EXPECT_EQ(o.stats.generated_tokens, 0);
}

TEST(BatchScheduler, AFullQueueRefusesAndACancelFreesTheSequence) {
  ServedModel m;
  {
    Status opened = ServedModel::Open(1, 1, &m);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  auto a = m.scheduler->Submit(Request(m, "long one", -1, 0.0f, 1));
  ASSERT_TRUE(a.ok());
  FirstText(**a);  // A holds the only sequence
  auto b = m.scheduler->Submit(Request(m, "waits", 3, 0.0f, 1));
  ASSERT_TRUE(b.ok()) << b.status().ToString();  // queued
  auto c = m.scheduler->Submit(Request(m, "refused", 3, 0.0f, 1));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("waiting"), std::string::npos);
  (*a)->Cancel();
  EXPECT_EQ(ServedModel::Collect(**a).reason, FinishReason::kCancelled);
  const ServedModel::Outcome ob = ServedModel::Collect(**b);
  EXPECT_EQ(ob.reason, FinishReason::kLength);
  EXPECT_EQ(ob.stats.generated_tokens, 3);
  EXPECT_EQ(m.scheduler->metrics().rejected, 1);
}

TEST(BatchScheduler, BadRequestsAreRefusedAtSubmit) {
  ServedModel m;
  {
    Status opened = ServedModel::Open(1, 4, &m);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  GenerationRequest empty = Request(m, "x", 3, 0.0f, 1);
  empty.prompt.clear();
  EXPECT_EQ(m.scheduler->Submit(empty).status().code(), StatusCode::kInvalidArgument);
  GenerationRequest huge = Request(m, "x", 3, 0.0f, 1);
  huge.prompt.assign(m.engine->n_ctx(), 1);
  auto h = m.scheduler->Submit(huge);
  EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(h.status().message().find("context"), std::string::npos);
  GenerationRequest bad_id = Request(m, "x", 3, 0.0f, 1);
  bad_id.prompt.push_back(m.engine->config().n_vocab);
  EXPECT_EQ(m.scheduler->Submit(bad_id).status().code(), StatusCode::kInvalidArgument);
  GenerationRequest bad_sampling = Request(m, "x", 3, 0.0f, 1);
  bad_sampling.sampling.top_p = 0;
  EXPECT_EQ(m.scheduler->Submit(bad_sampling).status().code(), StatusCode::kInvalidArgument);
}

TEST(BatchScheduler, ShutdownEndsRunningAndQueuedRequests) {
  ServedModel m;
  {
    Status opened = ServedModel::Open(1, 4, &m);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
  }
  auto a = m.scheduler->Submit(Request(m, "long", -1, 0.0f, 1));
  auto b = m.scheduler->Submit(Request(m, "queued", -1, 0.0f, 1));
  ASSERT_TRUE(a.ok() && b.ok());
  FirstText(**a);
  m.scheduler.reset();
  EXPECT_EQ(ServedModel::Collect(**a).reason, FinishReason::kCancelled);
  EXPECT_EQ(ServedModel::Collect(**b).reason, FinishReason::kCancelled);
}

}  // namespace
}  // namespace sluice::server::testing
