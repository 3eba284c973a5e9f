// StreamDecoder: characters split across tokens are held until complete, bytes that can never
// form a character become U+FFFD, and the streamed text equals Decode() of the same ids.
#include "tokenizer/stream_decoder.h"

#include <gtest/gtest.h>

#include "tests/tokenizer/test_vocab.h"
#include "tokenizer/unicode.h"

namespace sluice {
namespace {

using testing_vocab::BpeSpec;
using testing_vocab::ByteChar;
using testing_vocab::MakeBpeMetadata;

constexpr const char* kFffd = "\xEF\xBF\xBD";

class StreamDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata(MakeBpeMetadata(
        {.merges = {"Ġ t", "h e", "Ġt he", "â Ĥ", "âĤ ¬"}, .control = {"<|im_end|>"}}));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tokenizer_ = std::move(t).value();
  }
  // The byte token of `b`.
  int32_t Byte(int b) const { return tokenizer_->FindToken(ByteChar(b)); }

  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(StreamDecoderTest, HoldsBytesUntilTheCharacterCompletes) {
  StreamDecoder d(*tokenizer_);
  EXPECT_EQ(d.Push(Byte('a')), "a");
  EXPECT_EQ(d.Push(Byte(0xF0)), "");  // 🚀 = F0 9F 9A 80
  EXPECT_EQ(d.pending_bytes(), 1u);
  EXPECT_EQ(d.Push(Byte(0x9F)), "");
  EXPECT_EQ(d.Push(Byte(0x9A)), "");
  EXPECT_EQ(d.pending_bytes(), 3u);
  EXPECT_EQ(d.Push(Byte(0x80)), "\xF0\x9F\x9A\x80");
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_EQ(d.Push(Byte('b')), "b");
  EXPECT_EQ(d.Flush(), "");
}

TEST_F(StreamDecoderTest, MultiByteTokensEndingMidCharacter) {
  // "âĤ" is a merged token holding E2 82: the first two bytes of € (E2 82 AC).
  const int32_t e2_82 = tokenizer_->FindToken("âĤ");
  ASSERT_GE(e2_82, 0);
  StreamDecoder d(*tokenizer_);
  EXPECT_EQ(d.Push(Byte('x')), "x");
  EXPECT_EQ(d.Push(e2_82), "");
  EXPECT_EQ(d.Push(Byte(0xAC)), "€");
}

TEST_F(StreamDecoderTest, InvalidBytesBecomeReplacementCharacters) {
  StreamDecoder d(*tokenizer_);
  EXPECT_EQ(d.Push(Byte(0xFF)), kFffd);  // can never start a character
  EXPECT_EQ(d.Push(Byte(0xE2)), "");
  EXPECT_EQ(d.Push(Byte('A')), std::string(kFffd) + "A");  // E2 followed by ASCII
  EXPECT_EQ(d.Push(Byte(0xC0)), kFffd);                    // overlong lead
  EXPECT_EQ(d.Push(Byte(0xED)), "");
  EXPECT_EQ(d.Push(Byte(0xA0)), std::string(kFffd) + kFffd);  // surrogate: ED, A0 both invalid
  EXPECT_EQ(d.Push(Byte(0xE2)), "");
  EXPECT_EQ(d.Push(Byte(0x82)), "");
  EXPECT_EQ(d.Flush(), kFffd);  // one replacement for the unfinished E2 82
  EXPECT_EQ(d.pending_bytes(), 0u);
}

TEST_F(StreamDecoderTest, StreamedTextEqualsDecode) {
  for (const std::string text :
       {"the theme", "naïve café €5 中文 🚀✅ done", "\n\n\t x", "a\xF0\x9F\x98\x81z"}) {
    const std::vector<int32_t> ids = tokenizer_->Encode(text);
    StreamDecoder d(*tokenizer_);
    std::string streamed;
    for (int32_t id : ids) {
      const std::string chunk = d.Push(id);
      // Every chunk is valid UTF-8 on its own.
      std::string clean;
      AppendSanitizedUtf8(chunk, /*at_end=*/true, &clean);
      EXPECT_EQ(clean, chunk);
      streamed += chunk;
    }
    streamed += d.Flush();
    EXPECT_EQ(streamed, tokenizer_->Decode(ids));
    EXPECT_EQ(streamed, text);
  }
}

TEST_F(StreamDecoderTest, ControlTokensAreSilentUnlessRendered) {
  const int32_t end = tokenizer_->FindToken("<|im_end|>");
  StreamDecoder quiet(*tokenizer_);
  EXPECT_EQ(quiet.Push(Byte('a')), "a");
  EXPECT_EQ(quiet.Push(end), "");
  StreamDecoder loud(*tokenizer_, {.render_special = true});
  EXPECT_EQ(loud.Push(Byte(0xE2)), "");
  // A rendered control token ends the unfinished character.
  EXPECT_EQ(loud.Push(end), std::string(kFffd) + "<|im_end|>");
}

TEST_F(StreamDecoderTest, ResetDropsHeldBytes) {
  StreamDecoder d(*tokenizer_);
  EXPECT_EQ(d.Push(Byte(0xE2)), "");
  d.Reset();
  EXPECT_EQ(d.pending_bytes(), 0u);
  EXPECT_EQ(d.Push(Byte('o')), "o");
}

}  // namespace
}  // namespace sluice
