// Hand-built vocabularies for the tokenizer unit tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/metadata.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/vocab.h"

namespace sluice::testing_vocab {

// GPT-2's byte alphabet written out independently of tokenizer/bpe.cc: printable bytes
// '!'..'~', 0xA1..0xAC, 0xAE..0xFF stand for themselves; the other 68 bytes, in increasing
// order, become U+0100, U+0101, ... So '!' is token 0, 'Ġ' (space) is 220 and 'Ċ' (newline) 198
// when the tokens are listed in that order (refdata/README.md states the same ids).
inline std::string ByteChar(int byte) {
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (b == byte) {
      const unsigned cp = printable ? static_cast<unsigned>(b) : 256u + extra;
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      return s;
    }
    if (!printable) ++extra;
  }
  return "";
}

// The 256 byte tokens in GPT-2 order (printable ones first, as GPT-2's vocabulary lists them).
inline std::vector<std::string> Gpt2ByteTokens() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (printable) tokens.push_back(ByteChar(b));
  }
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!printable) tokens.push_back(ByteChar(b));
  }
  return tokens;
}

struct BpeSpec {
  std::string pre = "qwen2";
  std::vector<std::string> merges = {};   // "left right", in the GPT-2 alphabet
  std::vector<std::string> control = {};  // after the merge results, type CONTROL
  std::vector<std::string> user_defined = {};
  std::vector<std::string> extra_normal = {};  // whole tokens no merge builds (ignore_merges)
};

// Tokens: the 256 bytes, then one token per merge result (in merge order), then `extra_normal`,
// `control`, `user_defined`. eos = the first control token, if any.
inline Metadata MakeBpeMetadata(const BpeSpec& spec) {
  std::vector<std::string> tokens = Gpt2ByteTokens();
  std::vector<int32_t> types(tokens.size(), 1);
  for (const std::string& m : spec.merges) {
    const size_t space = m.find(' ');
    tokens.push_back(m.substr(0, space) + m.substr(space + 1));
    types.push_back(1);
  }
  for (const std::string& t : spec.extra_normal) {
    tokens.push_back(t);
    types.push_back(1);
  }
  const int32_t first_control = static_cast<int32_t>(tokens.size());
  for (const std::string& t : spec.control) {
    tokens.push_back(t);
    types.push_back(static_cast<int32_t>(TokenType::kControl));
  }
  for (const std::string& t : spec.user_defined) {
    tokens.push_back(t);
    types.push_back(static_cast<int32_t>(TokenType::kUserDefined));
  }
  Metadata meta("test-bpe.gguf");
  meta.SetString("tokenizer.ggml.model", "gpt2");
  meta.SetString("tokenizer.ggml.pre", spec.pre);
  meta.SetStringArray("tokenizer.ggml.tokens", tokens);
  meta.SetI32Array("tokenizer.ggml.token_type", types);
  meta.SetStringArray("tokenizer.ggml.merges", spec.merges);
  if (!spec.control.empty()) meta.SetU32("tokenizer.ggml.eos_token_id", first_control);
  meta.SetBool("tokenizer.ggml.add_bos_token", false);
  return meta;
}

// Ids of the given token texts (each must exist).
inline std::vector<int32_t> Ids(const Tokenizer& t, const std::vector<std::string>& texts) {
  std::vector<int32_t> ids;
  for (const std::string& text : texts) {
    ids.push_back(t.FindToken(text));
    EXPECT_GE(ids.back(), 0) << "no token '" << text << "'";
  }
  return ids;
}

}  // namespace sluice::testing_vocab
