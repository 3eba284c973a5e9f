// Pre-tokenizer splits, each expected list worked out by hand from the family's regex (quoted in
// tokenizer/pretokenizer_patterns.cc) with leftmost-first alternation and greedy quantifiers.
#include "tokenizer/pretokenizer.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

std::vector<std::string> Split(std::string_view preset, std::string_view text) {
  Result<PreTokenizer> pre = PreTokenizer::ForName(preset);
  EXPECT_TRUE(pre.ok()) << pre.status().ToString();
  std::vector<std::string> out;
  if (!pre.ok()) return out;
  for (std::string_view piece : pre->Split(text)) out.emplace_back(piece);
  return out;
}

using V = std::vector<std::string>;

TEST(PreTokenizerTest, Qwen2) {
  EXPECT_EQ(Split("qwen2", "Hello world"), (V{"Hello", " world"}));
  // Contractions are case-insensitive; digits are split one by one; a space before digits stays
  // alone (\s+(?!\S) leaves nothing, \s+ takes it).
  EXPECT_EQ(Split("qwen2", "I'M 123 abc"), (V{"I", "'M", " ", "1", "2", "3", " abc"}));
  // \s*[\r\n]+ ends at the last newline; then \s+(?!\S) keeps one space for the next word.
  EXPECT_EQ(Split("qwen2", "a\n\n  b"), (V{"a", "\n\n", " ", " b"}));
  EXPECT_EQ(Split("qwen2", "Hello!!!\n\nok  "), (V{"Hello", "!!!\n\n", "ok", "  "}));
  // A non-letter, non-digit character (here '_' and '$') joins the letters after it.
  EXPECT_EQ(Split("qwen2", "x_y $z"), (V{"x", "_y", " $", "z"}));
  // A combining mark is not a letter: "é" written e + U+0301 breaks in two.
  EXPECT_EQ(Split("qwen2", "e\xCC\x81t"), (V{"e", "\xCC\x81t"}));
}

TEST(PreTokenizerTest, Qwen35KeepsCombiningMarksInWords) {
  EXPECT_EQ(Split("qwen35", "e\xCC\x81t"), (V{"e\xCC\x81t"}));
  EXPECT_EQ(Split("qwen35", "I'm 12"), (V{"I", "'m", " ", "1", "2"}));
}

TEST(PreTokenizerTest, Llama3GroupsDigitsByThree) {
  EXPECT_EQ(Split("llama-bpe", "12345 ab"), (V{"123", "45", " ab"}));
  EXPECT_EQ(Split("llama3", "x1234567"), (V{"x", "123", "456", "7"}));
  Result<PreTokenizer> pre = PreTokenizer::ForName("llama3");
  ASSERT_TRUE(pre.ok());
  EXPECT_EQ(pre->name(), "llama-bpe");
  EXPECT_TRUE(pre->ignore_merges());
}

TEST(PreTokenizerTest, Gpt2) {
  // Contractions are case-sensitive: "'M" is punctuation then a letter.
  EXPECT_EQ(Split("gpt2", "I'm I'M"), (V{"I", "'m", " I", "'", "M"}));
  EXPECT_EQ(Split("gpt2", "  hello 42!"), (V{" ", " hello", " 42", "!"}));
  EXPECT_EQ(Split("default", "a\n\nb"), (V{"a", "\n", "\n", "b"}));
}

TEST(PreTokenizerTest, Gpt4oIsCaseAware) {
  EXPECT_EQ(Split("gpt-4o", "HelloWorld HELLOworld"), (V{"Hello", "World", " HELLOworld"}));
  EXPECT_EQ(Split("gpt-4o", "HELLO"), (V{"HELLO"}));
  // Contractions attach to the word.
  EXPECT_EQ(Split("gpt-4o", "don't"), (V{"don't"}));
  EXPECT_EQ(Split("gpt-4o", "1234567"), (V{"123", "456", "7"}));
  // Punctuation runs take trailing newlines and slashes.
  EXPECT_EQ(Split("gpt-4o", "a ...//\nb"), (V{"a", " ...//\n", "b"}));
}

TEST(PreTokenizerTest, DeepSeekLlm) {
  // [\r\n] | \s?[letters]+ | \s?[punct]+ | \s+$ | [CJK]+ | \p{N}+, applied in sequence.
  EXPECT_EQ(Split("deepseek-llm", "Hello, 世界 123\n"),
            (V{"Hello", ",", " ", "世界", " ", "123", "\n"}));
  EXPECT_EQ(Split("deepseek-llm", "ab  "), (V{"ab", "  "}));
}

TEST(PreTokenizerTest, DeepSeekV3) {
  // \p{N}{1,3} first, then CJK/kana, then the main pattern; "123" is left as a gap.
  EXPECT_EQ(Split("deepseek-v3", "abc123456!!x"), (V{"abc", "123", "456", "!!", "x"}));
  // ASCII punctuation glued to the ASCII letters after it.
  EXPECT_EQ(Split("deepseek-v3", "a.b"), (V{"a", ".b"}));
  EXPECT_EQ(Split("deepseek-v3", "日本語です ok"), (V{"日本語です", " ok"}));
}

TEST(PreTokenizerTest, DeepSeekCoder) {
  EXPECT_EQ(Split("deepseek-coder", "ab12 c"), (V{"ab", "1", "2", " c"}));
}

TEST(PreTokenizerTest, PiecesAlwaysConcatenateToTheInput) {
  const std::string inputs[] = {"",
                                " ",
                                "\n",
                                "plain words",
                                "  a\tb\r\n\r\n c  ",
                                "ÄÖÜ äöü ß",
                                "🚀🚀 ✅ (x)",
                                "\xff\xfe invalid \xe2\x82 utf8 \xc0\xaf",
                                "日本語とカタカナ",
                                "1,234.56",
                                "a'b'c's'S"};
  for (const std::string& name : PreTokenizer::SupportedNames()) {
    Result<PreTokenizer> pre = PreTokenizer::ForName(name);
    ASSERT_TRUE(pre.ok());
    for (const std::string& text : inputs) {
      std::string joined;
      for (std::string_view piece : pre->Split(text)) {
        EXPECT_FALSE(piece.empty()) << name;
        joined.append(piece);
      }
      EXPECT_EQ(joined, text) << name;
    }
  }
}

TEST(PreTokenizerTest, UnknownNameIsUnsupported) {
  Result<PreTokenizer> pre = PreTokenizer::ForName("chameleon");
  ASSERT_FALSE(pre.ok());
  EXPECT_EQ(pre.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(pre.status().message().find("'chameleon'"), std::string::npos);
}

}  // namespace
}  // namespace sluice
