// CLIP's tokenizer against ids an independent port of openai/CLIP's simple_tokenizer.py computed
// (tests/diffusion/golden/clip_tokens.json, written by scripts/diffusion_golden.py), plus two
// encodings widely published ("a photo of a cat", "hello world"); the emphasis syntax as
// AUTOMATIC1111 parses it; the 77-token window.
#include "tokenizer/clip_tokenizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffusion/prompt.h"

namespace sluice::diffusion {
namespace {

const ClipTokenizer& Tok() {
  static const ClipTokenizer* t = [] {
    auto r = ClipTokenizer::Builtin();
    CHECK(r.ok()) << r.status().ToString();
    return r->release();
  }();
  return *t;
}

TEST(ClipTokenizer, KnownEncodings) {
  EXPECT_EQ(Tok().vocab_size(), 49408);
  EXPECT_EQ(Tok().Encode("a photo of a cat"), (std::vector<int32_t>{320, 1125, 539, 320, 2368}));
  EXPECT_EQ(Tok().Encode("Hello   World"), (std::vector<int32_t>{3306, 1002}));
  EXPECT_EQ(Tok().Decode(Tok().Encode("a photo of a cat")), "a photo of a cat");
}

TEST(ClipTokenizer, MatchesTheReferencePort) {
  std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/tests/diffusion/golden/clip_tokens.json");
  ASSERT_TRUE(in) << "golden file missing";
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str());
  ASSERT_GE(j["cases"].size(), 10u);
  for (const auto& c : j["cases"]) {
    const std::string text = c["text"];
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(Tok().Encode(text), want) << "'" << text << "'";
  }
}

TEST(ClipTokenizer, LongInputIsLinearAndMalformedMergesAreRefused) {
  // A megabyte without a space is one word: the merge loop must not be quadratic.
  const std::string word(1 << 20, 'a');
  EXPECT_FALSE(Tok().Encode(word).empty());
  EXPECT_FALSE(ClipTokenizer::FromMerges("#version: 0.2\na\n", "m.txt").ok());
  auto r = ClipTokenizer::FromMerges("#version: 0.2\nzz q\n", "m.txt");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("m.txt: line 2"), std::string::npos) << r.status().ToString();
  EXPECT_FALSE(ClipTokenizer::FromMerges("#version: 0.2\ni n\n", "m.txt").ok());  // too few
}

TEST(Emphasis, ParsesAsAutomatic1111Does) {
  using W = std::vector<WeightedText>;
  EXPECT_EQ(ParseEmphasis("normal text"), (W{{"normal text", 1.0f}}));
  EXPECT_EQ(ParseEmphasis(""), (W{{"", 1.0f}}));
  EXPECT_EQ(ParseEmphasis("an (important) word"),
            (W{{"an ", 1.0f}, {"important", 1.1f}, {" word", 1.0f}}));
  EXPECT_EQ(ParseEmphasis("a (word:1.5) b"), (W{{"a ", 1.0f}, {"word", 1.5f}, {" b", 1.0f}}));
  EXPECT_EQ(ParseEmphasis("a [word] b"), (W{{"a ", 1.0f}, {"word", 1.0f / 1.1f}, {" b", 1.0f}}));
  const W nested = ParseEmphasis("((double))");
  ASSERT_EQ(nested.size(), 1u);
  EXPECT_NEAR(nested[0].weight, 1.21f, 1e-6);
  EXPECT_EQ(ParseEmphasis("\\(literal\\)"), (W{{"(literal)", 1.0f}}));
  EXPECT_EQ(ParseEmphasis("(unclosed"), (W{{"unclosed", 1.1f}}));
  EXPECT_EQ(ParseEmphasis("a : b"), (W{{"a : b", 1.0f}}));
  EXPECT_EQ(ParseEmphasis("x)"), (W{{"x)", 1.0f}}));
  EXPECT_EQ(ParseEmphasis("(a:1.2.3)"), (W{{"a:1.2.3", 1.1f}}));  // not a number: text
  const W mixed = ParseEmphasis("(a (b:2) c:0.5)");
  ASSERT_EQ(mixed.size(), 3u);
  EXPECT_EQ(mixed[0], (WeightedText{"a ", 0.5f}));
  EXPECT_EQ(mixed[1], (WeightedText{"b", 1.0f}));
  EXPECT_EQ(mixed[2], (WeightedText{" c", 0.5f}));
}

TEST(Emphasis, TokensCarryTheirWeightsInTheWindow) {
  const ClipTokens t = TokenizePrompt(Tok(), "a (photo:1.5) of a cat", 49407);
  ASSERT_EQ(t.ids.size(), 77u);
  ASSERT_EQ(t.weights.size(), 77u);
  EXPECT_EQ(std::vector<int32_t>(t.ids.begin(), t.ids.begin() + 7),
            (std::vector<int32_t>{49406, 320, 1125, 539, 320, 2368, 49407}));
  EXPECT_EQ(t.weights[2], 1.5f);
  EXPECT_EQ(t.weights[1], 1.0f);
  EXPECT_EQ(t.ids[76], 49407);
  EXPECT_FALSE(t.truncated);
  const ClipTokens zero = TokenizePrompt(Tok(), "cat", 0);
  EXPECT_EQ(zero.ids[3], 0);  // OpenCLIP pads with 0
  std::string long_prompt;
  for (int i = 0; i < 100; ++i) long_prompt += "cat ";
  const ClipTokens cut = TokenizePrompt(Tok(), long_prompt, 49407);
  EXPECT_TRUE(cut.truncated);
  EXPECT_EQ(cut.prompt_tokens, 100);
  EXPECT_EQ(cut.ids.size(), 77u);
  EXPECT_EQ(cut.ids[75], 2368);
  EXPECT_EQ(cut.ids[76], 49407);
}

TEST(Emphasis, WeightsScaleTokensAndKeepTheMean) {
  ClipTokens t = TokenizePrompt(Tok(), "(cat:2)", 49407);
  std::vector<float> hidden(77 * 4);
  for (size_t i = 0; i < hidden.size(); ++i) hidden[i] = 0.5f + 0.01f * static_cast<float>(i % 13);
  const std::vector<float> before = hidden;
  ApplyTokenWeights(t, 4, hidden.data());
  double mean_before = 0, mean_after = 0;
  for (size_t i = 0; i < hidden.size(); ++i) {
    mean_before += before[i];
    mean_after += hidden[i];
  }
  EXPECT_NEAR(mean_after, mean_before, 1e-3);
  // Token 1 (cat) relative to token 0 doubled.
  EXPECT_NEAR(hidden[4] / hidden[0], 2.0 * before[4] / before[0], 1e-5);
}

}  // namespace
}  // namespace sluice::diffusion
