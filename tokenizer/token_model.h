// TokenModel: the algorithm that turns plain text into ids (byte-level BPE or SentencePiece),
// behind the Tokenizer (tokenizer.h), which handles special tokens, BOS and decoding around it.
// Internal to tokenizer/.
//
// Thread-safety: implementations are immutable after creation; EncodeFragment may be called
// concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "tokenizer/vocab.h"

namespace sluice {

class TokenModel {
 public:
  virtual ~TokenModel() = default;

  // Appends the ids of `text`, a stretch of input with no special token inside.
  // `after_special`: the fragment starts the input or follows a special token (where
  // SentencePiece inserts its space prefix).
  virtual void EncodeFragment(std::string_view text, bool after_special,
                              std::vector<int32_t>* out) const = 0;

  // The bytes a normal, byte or unused token stands for in decoded text (BPE: the GPT-2 byte
  // alphabet mapped back to bytes; SentencePiece: "▁" -> " ", "<0x0A>" -> "\n").
  virtual std::string PieceBytes(int32_t id) const = 0;
};

// tokenizer/bpe.cc. Unsupported when the vocabulary's pre-tokenizer is unknown; Corrupt when a
// byte of the GPT-2 alphabet has no token or a merge is malformed.
Result<std::unique_ptr<TokenModel>> CreateBpeModel(const Vocab& vocab);
// tokenizer/spm.cc: libsentencepiece with a model built from the vocabulary.
Result<std::unique_ptr<TokenModel>> CreateSentencePieceModel(const Vocab& vocab);

}  // namespace sluice
