// SentencePiece vocabularies built by hand: merges by piece score, byte fallback, the space
// prefix (at the start and after special tokens) and its removal when decoding. Expected pieces
// are worked out by hand: at each step the adjacent pair whose concatenation is a piece with the
// highest score merges.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/tokenizer/test_vocab.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

using testing_vocab::Ids;

struct Piece {
  std::string text;
  float score;
};

// <unk>, <s>, </s>, <0x00>..<0xFF>, then `pieces` (NORMAL).
Metadata MakeSpmMetadata(const std::vector<Piece>& pieces, bool add_space_prefix = true,
                         int32_t unk_type = 2) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<float> scores = {0, 0, 0};
  std::vector<int32_t> types = {unk_type, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    tokens.push_back(buf);
    scores.push_back(0);
    types.push_back(6);
  }
  for (const Piece& p : pieces) {
    tokens.push_back(p.text);
    scores.push_back(p.score);
    types.push_back(1);
  }
  Metadata meta("test-spm.gguf");
  meta.SetString("tokenizer.ggml.model", "llama");
  meta.SetStringArray("tokenizer.ggml.tokens", tokens);
  meta.SetF32Array("tokenizer.ggml.scores", scores);
  meta.SetI32Array("tokenizer.ggml.token_type", types);
  meta.SetU32("tokenizer.ggml.bos_token_id", 1);
  meta.SetU32("tokenizer.ggml.eos_token_id", 2);
  meta.SetU32("tokenizer.ggml.unknown_token_id", 0);
  meta.SetBool("tokenizer.ggml.add_space_prefix", add_space_prefix);
  return meta;
}

const std::vector<Piece> kBase = {{"▁", -1},  {"h", -2},  {"e", -2},   {"l", -2},  {"o", -2},
                                  {"ll", -1}, {"he", -2}, {"▁he", -3}, {"llo", -4}};

std::unique_ptr<Tokenizer> Make(std::vector<Piece> extra, bool add_space_prefix = true) {
  std::vector<Piece> pieces = kBase;
  pieces.insert(pieces.end(), extra.begin(), extra.end());
  Result<std::unique_ptr<Tokenizer>> t =
      Tokenizer::FromMetadata(MakeSpmMetadata(pieces, add_space_prefix));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? std::move(t).value() : nullptr;
}

TEST(SpmTest, HighestScoringPairMergesFirst) {
  // ▁ h e l l o: ll(-1), then he(-2), then ▁he(-3), then llo(-4), then ▁hello(-10).
  auto whole = Make({{"▁hello", -10}});
  EXPECT_EQ(whole->Encode("hello"), Ids(*whole, {"▁hello"}));
  // With ▁hell(-3.5) instead: after ▁he + ll, ▁hell(-3.5) beats llo(-4).
  auto hell = Make({{"▁hell", -3.5}});
  EXPECT_EQ(hell->Encode("hello"), Ids(*hell, {"▁hell", "o"}));
  // ... unless ▁hell scores below llo.
  auto he_llo = Make({{"▁hell", -4.5}});
  EXPECT_EQ(he_llo->Encode("hello"), Ids(*he_llo, {"▁he", "llo"}));
}

TEST(SpmTest, UnknownCharactersFallBackToBytes) {
  auto t = Make({});
  EXPECT_EQ(t->Encode("hi"), Ids(*t, {"▁", "h", "<0x69>"}));
  EXPECT_EQ(t->Encode("é"), Ids(*t, {"▁", "<0xC3>", "<0xA9>"}));
  EXPECT_EQ(t->Decode(t->Encode("é")), "é");
}

TEST(SpmTest, SpacePrefixAndSpaces) {
  auto t = Make({});
  EXPECT_EQ(t->Encode(""), std::vector<int32_t>{});
  EXPECT_EQ(t->Encode(" "), Ids(*t, {"▁", "▁"}));
  EXPECT_EQ(t->Encode("he he"), Ids(*t, {"▁he", "▁he"}));
  auto no_prefix = Make({}, /*add_space_prefix=*/false);
  EXPECT_EQ(no_prefix->Encode("hello"), Ids(*no_prefix, {"he", "llo"}));
}

TEST(SpmTest, SpacePrefixAfterSpecialTokens) {
  auto t = Make({{"▁hello", -10}});
  EXPECT_EQ(t->Encode("<s>hello", {.parse_special = true}), Ids(*t, {"<s>", "▁hello"}));
  // Not parsed: "<s>" is three unknown characters (bytes), and "hello" is no longer at a word
  // start, so ▁hello cannot form.
  EXPECT_EQ(t->Encode("<s>hello"), Ids(*t, {"▁", "<0x3C>", "<0x73>", "<0x3E>", "he", "llo"}));
  EXPECT_EQ(t->Encode("hello", {.add_bos = true}), Ids(*t, {"<s>", "▁hello"}));
}

TEST(SpmTest, DecodeDropsTheAddedSpaceOnce) {
  auto t = Make({{"▁hello", -10}});
  for (const std::string text : {"hello", " hello", "he  hello", "hello\n"}) {
    EXPECT_EQ(t->Decode(t->Encode(text)), text);
  }
  const std::vector<int32_t> ids = Ids(*t, {"▁hello"});
  EXPECT_EQ(t->Decode(ids, {.strip_space_prefix = false}), " hello");
  EXPECT_EQ(t->TokenPiece(ids[0]), " hello");
  EXPECT_EQ(t->TokenPiece(t->FindToken("<0x0A>")), "\n");
}

TEST(SpmTest, AnUnknownTokenIdOutsideTheVocabularyIsCorrupt) {
  Metadata meta = MakeSpmMetadata(kBase);
  meta.SetU32("tokenizer.ggml.unknown_token_id", 100000);
  Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata(meta);
  ASSERT_FALSE(t.ok());
  EXPECT_NE(t.status().message().find("unknown_token_id"), std::string::npos)
      << t.status().ToString();
}

// Phi-3's vocabulary (llama.cpp's test vocabulary, used by Phi-3.5-MoE) marks <unk> as a
// control or normal token; llama.cpp takes the unknown token from unknown_token_id alone, and so
// does sluice (issue 16: it refused the vocabulary). The tokens come out the same as with an
// UNKNOWN-typed <unk>.
TEST(SpmTest, AnUnknownTokenOfAnotherTypeIsAccepted) {
  const std::vector<Piece> pieces = {{"▁he", -3}, {"ll", -1}, {"▁hello", -10}, {"he", -2}};
  auto reference = Tokenizer::FromMetadata(MakeSpmMetadata(pieces, true, 2));
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  for (int32_t unk_type : {1, 3}) {  // NORMAL, CONTROL
    auto t = Tokenizer::FromMetadata(MakeSpmMetadata(pieces, true, unk_type));
    ASSERT_TRUE(t.ok()) << unk_type << ": " << t.status().ToString();
    for (std::string text : {"hello", "hello hell", "héllo ☃", "<unk> x"}) {
      EXPECT_EQ((*t)->Encode(text), (*reference)->Encode(text)) << unk_type << " " << text;
      EXPECT_EQ((*t)->Decode((*t)->Encode(text)), (*reference)->Decode((*reference)->Encode(text)));
    }
  }
}

}  // namespace
}  // namespace sluice
