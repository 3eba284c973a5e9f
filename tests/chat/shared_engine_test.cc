// Several conversations on one engine, each on a sequence of its own (issue 11: session state has
// one owner): turns of two sessions interleaved give each exactly the replies it gets alone, and
// a session whose sequence is another's sees no KV state of the other's. No CHECK fires when
// sessions share an engine.
#include <gtest/gtest.h>

#include "chat/chat_session.h"
#include "chat/engine_token_engine.h"
#include "llm/engine.h"
#include "tests/support/test_model.h"

namespace sluice {
namespace {

class SharedEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("m.gguf");
    ASSERT_TRUE(testing::WriteTestModel(path_, {}).ok());
    Result<std::unique_ptr<Tokenizer>> tok =
        Tokenizer::FromMetadata(testing::TestModelMetadata({}));
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    tokenizer_ = std::move(*tok);
    Result<ChatTemplate> tmpl = ChatTemplate::FromMetadata(testing::TestModelMetadata({}));
    ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
    template_ = std::make_unique<ChatTemplate>(std::move(*tmpl));
  }
  std::unique_ptr<Engine> OpenEngine(int sequences) {
    auto e = Engine::Open(path_, {.threads = 2, .context_length = 512, .max_sequences = sequences});
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    return e.ok() ? std::move(*e) : nullptr;
  }
  std::string Turn(ChatSession& s, const std::string& user) {
    std::string text;
    auto r = s.Reply(
        user, [&](std::string_view t) { text.append(t); }, nullptr);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return text;
  }

  testing::TempDir dir_;
  std::string path_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatTemplate> template_;
  const SamplerOptions greedy_{.temperature = 0.0f};
  const ChatSessionOptions opts_{.max_reply_tokens = 12};
};

TEST_F(SharedEngineTest, InterleavedSessionsGetTheRepliesTheyGetAlone) {
  const std::vector<std::string> a_turns = {"hello there", "and again", "one more"};
  const std::vector<std::string> b_turns = {"something else", "x y z", "last"};
  // Alone, each on a fresh engine.
  std::vector<std::string> a_alone, b_alone;
  for (auto [turns, out] : {std::pair{&a_turns, &a_alone}, std::pair{&b_turns, &b_alone}}) {
    auto engine = OpenEngine(1);
    ASSERT_NE(engine, nullptr);
    EngineTokenEngine te(engine.get(), greedy_);
    ChatSession s(&te, tokenizer_.get(), template_.get(), opts_);
    for (const std::string& t : *turns) out->push_back(Turn(s, t));
    for (const std::string& r : *out) EXPECT_FALSE(r.empty());  // something to compare
  }
  // Together on one engine: A on the engine's sequence, B on a new one, turns interleaved.
  auto engine = OpenEngine(2);
  ASSERT_NE(engine, nullptr);
  auto seq_b = engine->NewSequence();
  ASSERT_TRUE(seq_b.ok()) << seq_b.status().ToString();
  EngineTokenEngine ta(engine.get(), greedy_);
  EngineTokenEngine tb(engine.get(), greedy_, seq_b->get());
  ChatSession a(&ta, tokenizer_.get(), template_.get(), opts_);
  ChatSession b(&tb, tokenizer_.get(), template_.get(), opts_);
  for (size_t i = 0; i < a_turns.size(); ++i) {
    EXPECT_EQ(Turn(a, a_turns[i]), a_alone[i]) << "A turn " << i;
    EXPECT_EQ(Turn(b, b_turns[i]), b_alone[i]) << "B turn " << i;
    // Each keeps its whole conversation in its own KV cache: the next turn prefills only itself.
    EXPECT_EQ(a.kv_length(), static_cast<int>(ta.kv_tokens().size()));
    EXPECT_NE(ta.kv_tokens().size(), 0u);
  }
}

TEST_F(SharedEngineTest, SequencesBeyondThePlanAreRefusedNotFatal) {
  auto engine = OpenEngine(2);
  ASSERT_NE(engine, nullptr);
  auto one = engine->NewSequence();
  ASSERT_TRUE(one.ok());
  auto two = engine->NewSequence();  // the engine's own + one = 2: no room for a third
  ASSERT_FALSE(two.ok());
  EXPECT_EQ(two.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(two.status().message().find("all 2 sequences"), std::string::npos)
      << two.status().message();
  one->reset();  // gives its place back
  EXPECT_TRUE(engine->NewSequence().ok());
}

TEST_F(SharedEngineTest, TwoSessionsOnOneSequenceStayCorrect) {
  // Misuse that used to abort: both sessions drive the engine's own sequence. Each turn then
  // finds the other's tokens in the KV cache, keeps the common prefix and prefills the rest, so
  // every reply is still the one it gets alone.
  std::string alone;
  {
    auto engine = OpenEngine(1);
    EngineTokenEngine te(engine.get(), greedy_);
    ChatSession s(&te, tokenizer_.get(), template_.get(), opts_);
    alone = Turn(s, "hello there");
  }
  auto engine = OpenEngine(1);
  EngineTokenEngine t1(engine.get(), greedy_), t2(engine.get(), greedy_);
  ChatSession s1(&t1, tokenizer_.get(), template_.get(), opts_);
  ChatSession s2(&t2, tokenizer_.get(), template_.get(), opts_);
  Turn(s2, "something else entirely");
  EXPECT_EQ(Turn(s1, "hello there"), alone);
}

}  // namespace
}  // namespace sluice
