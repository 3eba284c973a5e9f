// ConversationTokens: earlier replies keep the tokens the model generated when the template copies
// them verbatim, and fall back to encoding the rendered text when it rewrites them. Expected
// sequences are built from ChatML text written out here, not from the function's own pieces.
#include "chat/chat_tokens.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tests/support/test_model.h"

namespace sluice {
namespace {

class ChatTokensTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Metadata metadata = testing::TestModelMetadata({});
    Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromMetadata(metadata);
    ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
    tokenizer_ = std::move(*tokenizer);
    Result<ChatTemplate> chatml = ChatTemplate::FromMetadata(metadata);
    Result<ChatTemplate> qwen3 = ChatTemplate::FromMetadata(metadata, "qwen3");
    ASSERT_TRUE(chatml.ok() && qwen3.ok());
    chatml_ = std::make_unique<ChatTemplate>(std::move(*chatml));
    qwen3_ = std::make_unique<ChatTemplate>(std::move(*qwen3));
  }

  std::vector<int32_t> Special(const std::string& text) {
    return tokenizer_->Encode(text, {.parse_special = true});
  }
  int32_t Byte(const std::string& piece) { return tokenizer_->FindToken(piece); }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ChatTemplate> chatml_, qwen3_;
};

TEST_F(ChatTokensTest, WithoutRepliesItIsTheEncodedRendering) {
  std::vector<ChatMessage> messages = {{ChatRole::kSystem, "be brief"}, {ChatRole::kUser, "hi"}};
  std::vector<int32_t> tokens =
      ConversationTokens(*chatml_, *tokenizer_, messages, std::vector<std::vector<int32_t>>(2), {});
  EXPECT_EQ(tokens, Special("<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi"
                            "<|im_end|>\n<|im_start|>assistant\n"));
}

TEST_F(ChatTokensTest, RepliesKeepTheirGeneratedTokens) {
  // "the" sampled as three byte tokens (the encoder would give "t" + "he"), then a lone 0xFF byte
  // (printed as U+FFFD): neither survives decoding and encoding again.
  std::vector<int32_t> reply = {Byte("t"), Byte("h"), Byte("e"), Byte("ÿ")};
  ASSERT_TRUE(reply[0] >= 0 && reply[1] >= 0 && reply[2] >= 0 && reply[3] >= 0);
  std::string reply_text = "the\xEF\xBF\xBD";
  ASSERT_NE(tokenizer_->Encode(reply_text), reply);

  std::vector<ChatMessage> messages = {
      {ChatRole::kUser, "hi"}, {ChatRole::kAssistant, reply_text}, {ChatRole::kUser, "more"}};
  std::vector<std::vector<int32_t>> generated = {{}, reply, {}};
  std::vector<int32_t> tokens = ConversationTokens(*chatml_, *tokenizer_, messages, generated, {});
  std::vector<int32_t> expected =
      Special("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  expected.insert(expected.end(), reply.begin(), reply.end());
  std::vector<int32_t> rest =
      Special("<|im_end|>\n<|im_start|>user\nmore<|im_end|>\n<|im_start|>assistant\n");
  expected.insert(expected.end(), rest.begin(), rest.end());
  EXPECT_EQ(tokens, expected);
}

TEST_F(ChatTokensTest, TemplatesThatRewriteRepliesGetTheirOwnText) {
  // Qwen3 drops the reasoning of replies before the last user message, so the reply's tokens
  // (which include it) must not be spliced in.
  std::string reply_text = "<think>\nsecret plan\n</think>\n\nok";
  std::vector<int32_t> reply = tokenizer_->Encode(reply_text);
  std::vector<ChatMessage> messages = {
      {ChatRole::kUser, "hi"}, {ChatRole::kAssistant, reply_text}, {ChatRole::kUser, "more"}};
  std::vector<std::vector<int32_t>> generated = {{}, reply, {}};
  RenderOptions options{.add_generation_prompt = true};
  std::string rendered = qwen3_->Render(messages, options);
  ASSERT_EQ(rendered.find("secret plan"), std::string::npos) << rendered;
  std::vector<int32_t> tokens =
      ConversationTokens(*qwen3_, *tokenizer_, messages, generated, options);
  EXPECT_EQ(tokens, Special(rendered));
}

}  // namespace
}  // namespace sluice
