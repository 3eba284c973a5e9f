// ChatSession against a scripted engine: which tokens reach the KV cache, when replies stop, and
// what the user sees. The tokenizer and the chat template are the real ones, on the test model's
// vocabulary (tests/support/test_model.h); the expected token sequences are computed independently
// by rendering and encoding the whole conversation.
#include "chat/chat_session.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

using testing::kTestImEnd;

// Returns scripted tokens from SampleNext and records every Append.
class ScriptedEngine : public TokenEngine {
 public:
  explicit ScriptedEngine(int context) : context_(context) {}

  int context_length() const override { return context_; }
  std::span<const int32_t> kv_tokens() const override { return kv_; }
  Status TruncateKv(int n) override {
    EXPECT_LE(n, kv_length());
    kv_.resize(n);
    return Status::Ok();
  }
  Status Append(std::span<const int32_t> tokens) override {
    if (fail_appends_) return IoError("scripted read failure");
    EXPECT_LE(kv_.size() + tokens.size(), static_cast<size_t>(context_));
    kv_.insert(kv_.end(), tokens.begin(), tokens.end());
    appended_ += tokens.size();
    counters_.cache.hits += 3 * tokens.size();
    counters_.cache.misses += tokens.size();
    counters_.cache.bytes_read += 1000 * tokens.size();
    logits_ready_ = true;
    return Status::Ok();
  }
  Result<int32_t> SampleNext() override {
    EXPECT_TRUE(logits_ready_) << "sampled without an Append since the last sample";
    logits_ready_ = false;
    if (next_ >= script_.size()) return int32_t{'x' - 33};  // "x" forever once the script ends
    return script_[next_++];
  }
  EngineCounters counters() const override { return counters_; }

  void Script(std::vector<int32_t> tokens) {
    script_ = std::move(tokens);
    next_ = 0;
  }
  const std::vector<int32_t>& kv() const { return kv_; }
  size_t TakeAppended() { return std::exchange(appended_, 0); }
  void set_fail_appends(bool fail) { fail_appends_ = fail; }

 private:
  int context_;
  std::vector<int32_t> kv_;
  std::vector<int32_t> script_;
  size_t next_ = 0;
  size_t appended_ = 0;
  bool logits_ready_ = false;
  bool fail_appends_ = false;
  EngineCounters counters_;
};

class ChatSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Tokenizer>> tokenizer =
        Tokenizer::FromMetadata(testing::TestModelMetadata({}));
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
    tokenizer_ = std::move(*tokenizer);
    Result<ChatTemplate> tmpl = ChatTemplate::FromMetadata(testing::TestModelMetadata({}));
    ASSERT_TRUE(tmpl.ok()) << tmpl.status().ToString();
    ASSERT_EQ(tmpl->name(), "chatml");
    ASSERT_EQ(tmpl->warning(), "");
    template_ = std::make_unique<ChatTemplate>(std::move(*tmpl));
  }

  std::vector<int32_t> Ids(const std::string& text) { return tokenizer_->Encode(text); }

  // What the KV cache must hold before the reply to `messages`: the whole conversation rendered
  // with the assistant header, encoded with special tokens.
  std::vector<int32_t> ExpectedPrompt(const std::vector<ChatMessage>& messages) {
    std::string text = template_->Render(messages, {.add_generation_prompt = true});
    return tokenizer_->Encode(text, {.parse_special = true});
  }

  std::unique_ptr<ChatSession> NewSession(ScriptedEngine* engine, ChatSessionOptions options = {}) {
    return std::make_unique<ChatSession>(engine, tokenizer_.get(), template_.get(), options);
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatTemplate> template_;
};

TEST_F(ChatSessionTest, RepliesUntilEndOfGenerationAndStreamsText) {
  ScriptedEngine engine(1024);
  std::vector<int32_t> reply = Ids("hello there");
  std::vector<int32_t> script = reply;
  script.push_back(kTestImEnd);
  engine.Script(script);
  auto session = NewSession(&engine);
  std::string streamed;
  Result<ReplyStats> stats = session->Reply(
      "hi", [&](std::string_view t) { streamed += t; }, nullptr);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(streamed, "hello there");
  EXPECT_EQ(stats->stop, StopReason::kEndOfGeneration);
  EXPECT_EQ(stats->generated_tokens, static_cast<int>(reply.size()));
  EXPECT_EQ(stats->decoded_tokens, static_cast<int>(reply.size()));  // each fed back before EOG
  std::vector<int32_t> prompt = ExpectedPrompt({{ChatRole::kUser, "hi"}});
  EXPECT_EQ(stats->prompt_tokens, static_cast<int>(prompt.size()));
  // The KV holds the prompt and every reply token but the end-of-generation one.
  std::vector<int32_t> kv = prompt;
  kv.insert(kv.end(), reply.begin(), reply.end());
  EXPECT_EQ(engine.kv(), kv);
  EXPECT_EQ(stats->delta.cache.bytes_read, 1000 * kv.size());
  ASSERT_EQ(session->history().size(), 2u);
  EXPECT_EQ(session->history()[1].content, "hello there");
}

TEST_F(ChatSessionTest, SecondTurnPrefillsOnlyItsOwnTokens) {
  ScriptedEngine engine(1024);
  std::vector<int32_t> script = Ids("the answer");
  script.push_back(kTestImEnd);
  engine.Script(script);
  auto session = NewSession(&engine, {.system = "be brief"});
  ASSERT_TRUE(session->Reply("first question", nullptr, nullptr).ok());
  std::vector<int32_t> kv_after_first = engine.kv();
  engine.TakeAppended();

  engine.Script(script);
  Result<ReplyStats> second = session->Reply("and a second one", nullptr, nullptr);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  std::vector<int32_t> full = ExpectedPrompt({{ChatRole::kSystem, "be brief"},
                                              {ChatRole::kUser, "first question"},
                                              {ChatRole::kAssistant, "the answer"},
                                              {ChatRole::kUser, "and a second one"}});
  // Everything already in the KV was reused: the first turn's tokens are a prefix of the second.
  ASSERT_LE(kv_after_first.size(), full.size());
  EXPECT_TRUE(std::equal(kv_after_first.begin(), kv_after_first.end(), full.begin()));
  EXPECT_EQ(second->reused_tokens, static_cast<int>(kv_after_first.size()));
  EXPECT_EQ(second->prompt_tokens, static_cast<int>(full.size() - kv_after_first.size()));
  // Prefill appended exactly those; the rest of the appends were the reply's tokens.
  EXPECT_EQ(engine.TakeAppended(), full.size() - kv_after_first.size() + script.size() - 1);
  EXPECT_TRUE(std::equal(full.begin(), full.end(), engine.kv().begin()));
}

// Replies the encoder would not produce (a non-canonical split, a byte that is no character)
// are still reused whole: the next turn prefills only what it adds.
TEST_F(ChatSessionTest, OddlyTokenizedRepliesAreStillReused) {
  ScriptedEngine engine(1024);
  std::vector<int32_t> reply = {tokenizer_->FindToken("t"), tokenizer_->FindToken("h"),
                                tokenizer_->FindToken("e"), tokenizer_->FindToken("ÿ")};
  std::vector<int32_t> script = reply;
  script.push_back(kTestImEnd);
  engine.Script(script);
  auto session = NewSession(&engine);
  ASSERT_TRUE(session->Reply("hi", nullptr, nullptr).ok());
  size_t kv_after_first = engine.kv().size();
  engine.Script({kTestImEnd});
  Result<ReplyStats> second = session->Reply("more", nullptr, nullptr);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->reused_tokens, static_cast<int>(kv_after_first));
  std::vector<int32_t> added =
      tokenizer_->Encode("<|im_end|>\n<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n",
                         {.parse_special = true});
  EXPECT_EQ(second->prompt_tokens, static_cast<int>(added.size()));
}

TEST_F(ChatSessionTest, TokenLimitStopsWithoutAnUnusedForwardPass) {
  ScriptedEngine engine(1024);
  engine.Script(Ids("abcdef"));
  auto session = NewSession(&engine, {.max_reply_tokens = 3});
  Result<ReplyStats> stats = session->Reply("go", nullptr, nullptr);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->generated_tokens, 3);
  EXPECT_EQ(stats->decoded_tokens, 2);
  EXPECT_EQ(stats->stop, StopReason::kTokenLimit);
  size_t prompt = ExpectedPrompt({{ChatRole::kUser, "go"}}).size();
  EXPECT_EQ(engine.kv().size(), prompt + 2);  // the third token was sampled, never appended
  EXPECT_EQ(session->history()[1].content, "abc");
}

TEST_F(ChatSessionTest, CancelStopsWithinOneToken) {
  ScriptedEngine engine(1024);
  engine.Script(Ids("abcdefgh"));
  auto session = NewSession(&engine);
  std::atomic<bool> cancel{false};
  std::string streamed;
  Result<ReplyStats> stats = session->Reply(
      "go",
      [&](std::string_view t) {
        streamed += t;
        if (streamed.size() >= 2) cancel = true;  // as the SIGINT handler would
      },
      &cancel);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stop, StopReason::kCancelled);
  EXPECT_EQ(streamed, "ab");
  EXPECT_EQ(stats->generated_tokens, 2);
  EXPECT_EQ(session->history()[1].content, "ab");  // the partial reply stays in the conversation
}

TEST_F(ChatSessionTest, CancelBeforeTheFirstTokenLeavesNoTurn) {
  ScriptedEngine engine(1024);
  engine.Script(Ids("abc"));
  auto session = NewSession(&engine);
  std::atomic<bool> cancel{true};
  Result<ReplyStats> stats = session->Reply("go", nullptr, &cancel);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stop, StopReason::kCancelled);
  EXPECT_EQ(stats->generated_tokens, 0);
  EXPECT_TRUE(session->history().empty());
}

TEST_F(ChatSessionTest, PromptLongerThanTheContextIsRefused) {
  std::vector<int32_t> prompt = ExpectedPrompt({{ChatRole::kUser, std::string(200, 'z')}});
  ScriptedEngine engine(static_cast<int>(prompt.size()));  // no room for a reply token
  auto session = NewSession(&engine);
  Result<ReplyStats> stats = session->Reply(std::string(200, 'z'), nullptr, nullptr);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(stats.status().message().find(std::to_string(prompt.size()) + " tokens"),
            std::string::npos)
      << stats.status().message();
  EXPECT_TRUE(session->history().empty());
  EXPECT_TRUE(engine.kv().empty());
}

TEST_F(ChatSessionTest, ReplyStopsWhenTheContextFills) {
  size_t prompt = ExpectedPrompt({{ChatRole::kUser, "go"}}).size();
  ScriptedEngine engine(static_cast<int>(prompt) + 3);
  engine.Script(Ids("abcdefgh"));
  auto session = NewSession(&engine);
  Result<ReplyStats> stats = session->Reply("go", nullptr, nullptr);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->stop, StopReason::kContextFull);
  EXPECT_EQ(engine.kv().size(), prompt + 3);
  EXPECT_EQ(stats->generated_tokens, 4);  // 3 appended, the 4th sampled from the last logits
  // The next turn cannot fit: a clear error, and /reset makes room again.
  Result<ReplyStats> next = session->Reply("more", nullptr, nullptr);
  ASSERT_FALSE(next.ok());
  EXPECT_NE(next.status().message().find("/reset"), std::string::npos);
  ASSERT_TRUE(session->Reset().ok());
  EXPECT_TRUE(engine.kv().empty());
  EXPECT_TRUE(session->history().empty());
  engine.Script({kTestImEnd});
  EXPECT_TRUE(session->Reply("more", nullptr, nullptr).ok());
}

TEST_F(ChatSessionTest, EngineFailureEmptiesTheKvCache) {
  ScriptedEngine engine(1024);
  engine.Script({kTestImEnd});
  auto session = NewSession(&engine);
  ASSERT_TRUE(session->Reply("one", nullptr, nullptr).ok());
  engine.set_fail_appends(true);
  Result<ReplyStats> stats = session->Reply("two", nullptr, nullptr);
  ASSERT_FALSE(stats.ok());
  EXPECT_EQ(stats.status().code(), StatusCode::kIoError);
  EXPECT_TRUE(engine.kv().empty());
  engine.set_fail_appends(false);
  engine.Script({kTestImEnd});
  ASSERT_TRUE(session->Reply("three", nullptr, nullptr).ok());
  // Re-prefilled from scratch: the KV matches the conversation exactly.
  EXPECT_EQ(engine.kv(), ExpectedPrompt({{ChatRole::kUser, "one"},
                                         {ChatRole::kAssistant, ""},
                                         {ChatRole::kUser, "three"}}));
}

TEST_F(ChatSessionTest, RawCompletionSkipsTheTemplate) {
  ScriptedEngine engine(1024);
  engine.Script(Ids("xyz"));
  auto session = NewSession(&engine, {.max_reply_tokens = 3});
  std::string streamed;
  Result<ReplyStats> stats = session->Complete(
      "the cat", [&](std::string_view t) { streamed += t; }, nullptr);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(streamed, "xyz");
  std::vector<int32_t> kv = Ids("the cat");
  kv.push_back(Ids("x")[0]);
  kv.push_back(Ids("y")[0]);
  EXPECT_EQ(engine.kv(), kv);
  EXPECT_TRUE(session->history().empty());
}

TEST_F(ChatSessionTest, SplitCharactersAreNeverStreamedHalfWay) {
  ScriptedEngine engine(1024);
  std::vector<int32_t> script = Ids("caf\xC3\xA9 \xE2\x82\xAC");  // "café €": 2- and 3-byte chars
  script.push_back(kTestImEnd);
  engine.Script(script);
  auto session = NewSession(&engine);
  std::vector<std::string> pieces;
  ASSERT_TRUE(session
                  ->Reply(
                      "go", [&](std::string_view t) { pieces.emplace_back(t); }, nullptr)
                  .ok());
  std::string joined;
  for (const std::string& p : pieces) {
    joined += p;
    // No piece ends inside a character: its last lead byte has all its continuation bytes.
    size_t i = p.size();
    while (i > 0 && (static_cast<unsigned char>(p[i - 1]) & 0xC0) == 0x80) --i;
    ASSERT_GT(i, 0u);
    unsigned char lead = static_cast<unsigned char>(p[i - 1]);
    size_t need = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    EXPECT_EQ(p.size() - (i - 1), need) << "piece ends mid-character";
  }
  EXPECT_EQ(joined, "caf\xC3\xA9 \xE2\x82\xAC");
}

}  // namespace
// gpt-oss replies are harmony messages on channels: only the final channel is shown and kept
// (the analysis channel too when asked), and the reply stops at <|return|>, not at the <|end|>
// that closes the analysis message.
TEST(ChatSessionHarmony, ShowsTheFinalChannelAndTheAnalysisWhenAsked) {
  Metadata md = testing::TestModelMetadata({.chat_template = false});
  std::vector<std::string> tokens = md.Find("tokenizer.ggml.tokens")->strings;
  std::vector<int32_t> types;
  for (int64_t t : md.Find("tokenizer.ggml.token_type")->ints)
    types.push_back(static_cast<int32_t>(t));
  const int32_t start = static_cast<int32_t>(tokens.size());
  for (const char* special : {"<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>"}) {
    tokens.push_back(special);
    types.push_back(3);  // CONTROL
  }
  md.SetStringArray("tokenizer.ggml.tokens", tokens);
  md.SetI32Array("tokenizer.ggml.token_type", types);
  md.SetString("tokenizer.chat_template", "<|start|>system<|message|>{{ x }}<|end|>");
  auto tokenizer = Tokenizer::FromMetadata(md);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  auto tmpl = ChatTemplate::FromMetadata(md);
  ASSERT_TRUE(tmpl.ok());
  ASSERT_EQ(tmpl->name(), "harmony");
  const int32_t kStart = start, kChannel = start + 1, kMessage = start + 2, kEnd = start + 3,
                kReturn = start + 4;
  auto text = [&](const std::string& s) { return (*tokenizer)->Encode(s); };
  std::vector<int32_t> script = {kChannel};
  for (const auto& part :
       {text("analysis"), std::vector<int32_t>{kMessage}, text("hmm"),
        std::vector<int32_t>{kEnd, kStart}, text("assistant"), std::vector<int32_t>{kChannel},
        text("final"), std::vector<int32_t>{kMessage}, text("Hello"),
        std::vector<int32_t>{kReturn}}) {
    script.insert(script.end(), part.begin(), part.end());
  }
  for (bool show : {false, true}) {
    ScriptedEngine engine(1024);
    engine.Script(script);
    ChatSession session(&engine, tokenizer->get(), &*tmpl, {.show_reasoning = show});
    std::string streamed;
    Result<ReplyStats> stats = session.Reply(
        "hi", [&](std::string_view t) { streamed += t; }, nullptr);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->stop, StopReason::kEndOfGeneration);
    EXPECT_EQ(streamed, show ? "[analysis]\nhmm\n[final]\nHello" : "Hello");
    if (!show) {
      EXPECT_EQ(session.history().back().content, "Hello");
    }
  }
}

}  // namespace sluice
