// Byte-level BPE on hand-built vocabularies: merge order, piece boundaries, added tokens, the byte
// alphabet, and the errors for vocabularies we cannot use. Expected segmentations are worked out
// by hand from the merge ranks; ids are then looked up by token text.
#include <gtest/gtest.h>

#include "tests/tokenizer/test_vocab.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

using testing_vocab::Ids;

using testing_vocab::BpeSpec;
using testing_vocab::ByteChar;
using testing_vocab::MakeBpeMetadata;

std::unique_ptr<Tokenizer> Make(const BpeSpec& spec) {
  Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata(MakeBpeMetadata(spec));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(BpeTest, LowestRankMergesFirst) {
  auto el_first = Make({.merges = {"e l", "h e"}});
  EXPECT_EQ(el_first->Encode("hel"), Ids(*el_first, {"h", "el"}));
  auto he_first = Make({.merges = {"h e", "e l"}});
  EXPECT_EQ(he_first->Encode("hel"), Ids(*he_first, {"he", "l"}));
}

TEST(BpeTest, EqualRanksMergeLeftmostFirst) {
  auto t = Make({.merges = {"a a"}});
  EXPECT_EQ(t->Encode("aaa"), Ids(*t, {"aa", "a"}));
  EXPECT_EQ(t->Encode("aaaa"), Ids(*t, {"aa", "aa"}));
}

TEST(BpeTest, MergesChainAndSpaceIsByteG) {
  auto t = Make({.merges = {"h e", "l l", "he ll", "hell o"}});
  EXPECT_EQ(t->Encode("hello"), Ids(*t, {"hello"}));
  // " hello" is one qwen2 piece, but no merge joins 'Ġ' (the space) to anything.
  EXPECT_EQ(t->Encode(" hello"), Ids(*t, {"Ġ", "hello"}));
}

TEST(BpeTest, MergesNeverCrossPreTokenizerPieces) {
  auto t = Make({.merges = {"a 1", "a Ġ"}});
  // qwen2 splits "a1" into "a" | "1" and "a b" into "a" | " b".
  EXPECT_EQ(t->Encode("a1"), Ids(*t, {"a", "1"}));
  EXPECT_EQ(t->Encode("a b"), Ids(*t, {"a", "Ġ", "b"}));
}

TEST(BpeTest, ByteAlphabetIdsMatchGpt2Order) {
  auto t = Make({});
  EXPECT_EQ(t->Encode("!"), std::vector<int32_t>{0});
  EXPECT_EQ(t->Encode(" "), std::vector<int32_t>{220});
  EXPECT_EQ(t->Encode("\n"), std::vector<int32_t>{198});
  // Invalid UTF-8 still encodes byte for byte and decodes back unchanged.
  const std::string raw =
      "\xff\xfe"
      "a\x80";
  const std::vector<int32_t> ids = t->Encode(raw);
  EXPECT_EQ(ids, Ids(*t, {ByteChar(0xFF), ByteChar(0xFE), "a", ByteChar(0x80)}));
  EXPECT_EQ(t->Decode(ids), raw);
}

TEST(BpeTest, RoundTripsVariedText) {
  auto t = Make({.merges = {"Ġ t", "h e", "Ġt he", "i n", "Ċ Ċ"}});
  for (const std::string text :
       {"the cat in the hat", "  leading and trailing  ", "tabs\tand\n\nnewlines\r\n",
        "naïve café 中文 🚀 ✅", "I'm you'LL 12345 ...!!!", ""}) {
    EXPECT_EQ(t->Decode(t->Encode(text)), text);
  }
}

TEST(BpeTest, UserDefinedTokensAlwaysCutOutControlOnlyWhenParsingSpecial) {
  auto t = Make({.merges = {"h i"}, .control = {"<|im_start|>"}, .user_defined = {"<think>"}});
  EXPECT_EQ(t->Encode("<think>hi"), Ids(*t, {"<think>", "hi"}));
  // Without parse_special the control text is plain characters (no merges apply to them).
  std::vector<std::string> chars;
  for (char c : std::string("<|im_start|>")) chars.push_back(std::string(1, c));
  EXPECT_EQ(t->Encode("<|im_start|>"), Ids(*t, chars));
  EXPECT_EQ(t->Encode("<|im_start|>hi", {.parse_special = true}), Ids(*t, {"<|im_start|>", "hi"}));
}

TEST(BpeTest, LongestAddedTokenWinsAtAPosition) {
  auto t = Make({.user_defined = {"<x>", "<x><y>"}});
  EXPECT_EQ(t->Encode("<x><y><x>"), Ids(*t, {"<x><y>", "<x>"}));
}

TEST(BpeTest, DecodeHidesControlTokensUnlessAsked) {
  auto t = Make({.control = {"<|im_start|>"}});
  const std::vector<int32_t> ids = Ids(*t, {"<|im_start|>", "h"});
  EXPECT_EQ(t->Decode(ids), "h");
  EXPECT_EQ(t->Decode(ids, {.render_special = true}), "<|im_start|>h");
}

TEST(BpeTest, IgnoreMergesEmitsWholeWordTokens) {
  // "abc" is a token but no merge builds it: Llama 3 (ignore_merges) emits it whole, Qwen2 cannot.
  auto llama = Make({.pre = "llama-bpe", .merges = {"a b"}, .extra_normal = {"abc"}});
  EXPECT_EQ(llama->Encode("abc"), Ids(*llama, {"abc"}));
  auto qwen = Make({.pre = "qwen2", .merges = {"a b"}, .extra_normal = {"abc"}});
  EXPECT_EQ(qwen->Encode("abc"), Ids(*qwen, {"ab", "c"}));
}

TEST(BpeTest, EndOfGenerationSet) {
  auto t = Make({.control = {"<|endoftext|>", "<|im_end|>", "<|im_start|>"}});
  const std::vector<int32_t> expected = Ids(*t, {"<|endoftext|>", "<|im_end|>"});
  EXPECT_EQ(t->end_of_generation_ids(), expected);
  EXPECT_EQ(t->eos_id(), expected[0]);
  EXPECT_TRUE(t->IsEndOfGeneration(expected[1]));
  EXPECT_FALSE(t->IsEndOfGeneration(t->FindToken("<|im_start|>")));
  EXPECT_FALSE(t->IsEndOfGeneration(t->FindToken("a")));
}

TEST(BpeTest, UnsupportedPreTokenizerIsAnErrorNamingIt) {
  Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata(MakeBpeMetadata({.pre = "bloom"}));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(t.status().message().find("'bloom'"), std::string::npos) << t.status().ToString();
  EXPECT_NE(t.status().message().find("test-bpe.gguf"), std::string::npos);
  EXPECT_NE(t.status().message().find("qwen2"), std::string::npos) << "lists the supported names";
}

TEST(BpeTest, UnsupportedModelIsAnErrorNamingIt) {
  Metadata meta = MakeBpeMetadata({});
  meta.SetString("tokenizer.ggml.model", "bert");
  Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata(meta);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(t.status().message().find("'bert'"), std::string::npos);
}

TEST(BpeTest, MissingByteTokenIsCorrupt) {
  Metadata meta = MakeBpeMetadata({});
  std::vector<std::string> tokens = *meta.GetStringArray("tokenizer.ggml.tokens");
  tokens[0] = "!!";  // byte 0x21 '!' no longer has a token
  meta.SetStringArray("tokenizer.ggml.tokens", tokens);
  Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata(meta);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(t.status().message().find("0x21"), std::string::npos) << t.status().ToString();
}

TEST(BpeTest, InconsistentArraysAndIdsAreCorrupt) {
  Metadata meta = MakeBpeMetadata({});
  meta.SetF32Array("tokenizer.ggml.scores", std::vector<float>(10, 0.0f));
  Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata(meta);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("tokenizer.ggml.scores has 10 entries, expected 256"),
            std::string::npos)
      << t.status().ToString();

  Metadata bad_id = MakeBpeMetadata({});
  bad_id.SetU32("tokenizer.ggml.bos_token_id", 999);
  t = Tokenizer::FromMetadata(bad_id);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("bos_token_id = 999 is out of range"), std::string::npos)
      << t.status().ToString();
}

}  // namespace
}  // namespace sluice
