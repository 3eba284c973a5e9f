// Tokenizer: text <-> token ids for a model, built from its metadata (GGUF or archive; the keys
// are listed in tokenizer/vocab.h). Two algorithms behind one interface:
//   - byte-level BPE (tokenizer.ggml.model = gpt2: Qwen, Llama 3, DeepSeek, GPT-style vocabularies)
//     with the family's pre-tokenizer (tokenizer/pretokenizer.h);
//   - SentencePiece (tokenizer.ggml.model = llama: Llama 2, Mistral, Mixtral) through
//     libsentencepiece (tokenizer/spm.cc).
//
// Special tokens: before the algorithm sees the text, added tokens are cut out of it, leftmost
// first and longest first at one position. USER_DEFINED tokens (e.g. Qwen3's <think>) are always
// cut out, as Hugging Face tokenizers and llama.cpp do; CONTROL and UNKNOWN tokens (<|im_start|>,
// <s>) only with EncodeOptions::parse_special, so user text that happens to contain
// "<|im_end|>" cannot inject a turn boundary.
//
// Decoding: Decode() for whole sequences, StreamDecoder (tokenizer/stream_decoder.h) for output
// produced token by token.
//
// Non-goals: normalizers (NFKC, lowercasing) that no supported family uses; WordPiece/Unigram/RWKV
// vocabularies (Unsupported error naming tokenizer.ggml.model).
// Thread-safety: immutable after FromMetadata; all methods may be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "io/metadata.h"
#include "tokenizer/vocab.h"

namespace sluice {

class TokenModel;

struct EncodeOptions {
  // Prepend bos_id() when the vocabulary asks for it (tokenizer.ggml.add_bos_token).
  bool add_bos = false;
  // Turn the text of CONTROL/UNKNOWN tokens ("<|im_start|>", "<s>") into those tokens. Off: such
  // text is tokenized as ordinary characters.
  bool parse_special = false;
};

struct DecodeOptions {
  // Print the text of CONTROL/UNKNOWN tokens ("<|im_end|>"); off: they produce nothing.
  bool render_special = false;
  // SentencePiece vocabularies with add_space_prefix: drop the leading space of the first piece
  // that has text, the space the encoder added, so that Decode(Encode(t)) == t.
  bool strip_space_prefix = true;
};

class Tokenizer {
 public:
  // Errors: NotFound (no tokenizer keys), Unsupported (tokenizer.ggml.model or .pre not
  // supported, naming it), Corrupt (inconsistent arrays, ids out of range).
  static Result<std::unique_ptr<Tokenizer>> FromMetadata(const Metadata& metadata);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  std::vector<int32_t> Encode(std::string_view text, const EncodeOptions& options = {}) const;
  std::string Decode(std::span<const int32_t> ids, const DecodeOptions& options = {}) const;

  // The bytes token `id` stands for in decoded text; for CONTROL/UNKNOWN tokens, their text.
  // CHECK-fails on an id outside [0, vocab_size()).
  const std::string& TokenPiece(int32_t id) const;
  // CONTROL or UNKNOWN: not text (never printed by default, never produced from plain text).
  bool IsControl(int32_t id) const;
  TokenType token_type(int32_t id) const;
  // -1 when no token has exactly this text.
  int32_t FindToken(std::string_view text) const { return vocab_.Find(text); }

  int32_t vocab_size() const { return vocab_.size(); }
  int32_t bos_id() const { return vocab_.bos_id; }  // -1: none
  int32_t eos_id() const { return vocab_.eos_id; }  // -1: none
  int32_t eot_id() const { return vocab_.eot_id; }  // -1: none
  bool add_bos() const { return vocab_.add_bos; }
  VocabKind kind() const { return vocab_.kind; }
  // The pre-tokenizer name as written in the metadata ("default" when absent).
  const std::string& pre_tokenizer() const { return vocab_.pre; }
  const Vocab& vocab() const { return vocab_; }

  // End of generation: eos, eot and eom ids from the metadata, plus any CONTROL/USER_DEFINED token
  // whose text is a known end-of-turn marker (<|im_end|>, <|eot_id|>, <|eom_id|>, <|endoftext|>,
  // <|end_of_text|>, <|end|>, <end_of_turn>, <｜end▁of▁sentence｜>, </s>). Sorted ascending.
  const std::vector<int32_t>& end_of_generation_ids() const { return eog_ids_; }
  bool IsEndOfGeneration(int32_t id) const;

 private:
  explicit Tokenizer(Vocab vocab);
  Status Init();
  // The added token starting at text[pos] (longest first), or -1.
  int32_t MatchAddedToken(std::string_view text, size_t pos, bool parse_special) const;

  Vocab vocab_;
  std::unique_ptr<TokenModel> model_;
  std::vector<std::string> pieces_;  // (n_vocab) decoded bytes, or the text of control tokens
  // Added tokens that can be cut out of text, by first byte, longest first.
  std::array<std::vector<int32_t>, 256> added_by_first_byte_;
  std::vector<int32_t> eog_ids_;
};

}  // namespace sluice
