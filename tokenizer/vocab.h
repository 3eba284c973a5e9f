// Vocab: the tokenizer part of a model's metadata, read and checked once. Keys (as GGUF defines
// them):
//   tokenizer.ggml.model         "gpt2" (byte-level BPE) or "llama" (SentencePiece)
//   tokenizer.ggml.pre           pre-tokenizer name, BPE only (absent: "default")
//   tokenizer.ggml.tokens        string[n_vocab]
//   tokenizer.ggml.scores        f32[n_vocab]    (SentencePiece merge priorities; optional for BPE)
//   tokenizer.ggml.token_type    i32[n_vocab]    (TokenType; absent: all normal)
//   tokenizer.ggml.merges        string[]        ("left right", rank = index; BPE only)
//   tokenizer.ggml.{bos,eos,eot,eom,unknown,padding}_token_id   u32
//   tokenizer.ggml.add_bos_token, add_space_prefix              bool
// Absent ids are -1, except that SentencePiece vocabularies default to <unk>=0, <s>=1, </s>=2 as
// llama.cpp's converter assumes. Absent flags: add_bos is true for SentencePiece and Llama 3,
// false otherwise; add_space_prefix is true for SentencePiece and false for BPE.
//
// Non-goals: encoding (tokenizer.h). Thread-safety: immutable after LoadVocab.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/status.h"
#include "io/metadata.h"

namespace sluice {

// GGUF's token types (llama_token_type).
enum class TokenType : int32_t {
  kUndefined = 0,
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,      // <s>, <|im_start|>: never produced from plain text
  kUserDefined = 4,  // added tokens matched verbatim in any text (<think>)
  kUnused = 5,
  kByte = 6,  // SentencePiece byte fallback <0xNN>
};

enum class VocabKind { kBpe, kSentencePiece };

struct Vocab {
  std::string source;  // the model file, for error messages
  VocabKind kind = VocabKind::kBpe;
  std::string model_name;           // tokenizer.ggml.model as written
  std::string pre;                  // tokenizer.ggml.pre, "default" when absent
  std::vector<std::string> tokens;  // (n_vocab)
  std::vector<float> scores;        // (n_vocab) or empty
  std::vector<TokenType> types;     // (n_vocab)
  std::vector<std::string> merges;  // BPE only
  int32_t bos_id = -1, eos_id = -1, eot_id = -1, eom_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false;
  bool add_space_prefix = false;
  // Text -> id; with duplicate texts the lowest id wins.
  std::unordered_map<std::string, int32_t> ids;

  int32_t size() const { return static_cast<int32_t>(tokens.size()); }
  // -1 when absent.
  int32_t Find(std::string_view text) const;
};

// Reads and validates the tokenizer keys. Errors name the source file and the key, e.g.
//   "model.gguf: tokenizer.ggml.scores has 31999 entries, expected 32000 (one per token)".
Result<Vocab> LoadVocab(const Metadata& metadata);

}  // namespace sluice
