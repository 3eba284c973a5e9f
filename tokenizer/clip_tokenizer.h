// ClipTokenizer: the text tokenizer of CLIP, which every Stable Diffusion text encoder uses (CLIP
// ViT-L/14, OpenCLIP ViT-H/14 and ViT-bigG/14), as openai/CLIP's simple_tokenizer.py defines it:
//   1. whitespace runs become one space, the ends are trimmed, and the text is lower-cased
//      (Python's str.lower(); ftfy's mojibake repair and HTML unescaping are not done);
//   2. it is split into words by the pattern
//        <|startoftext|> | <|endoftext|> | 's|'t|'re|'ve|'m|'ll|'d | \p{L}+ | \p{N} |
//        [^\s\p{L}\p{N}]+
//      (whitespace between words is dropped; note one digit per word);
//   3. each word's bytes become symbols of GPT-2's byte alphabet, the last one marked with "</w>",
//      and adjacent symbols are merged by merge rank (lowest first, leftmost among equals).
// Vocabulary (49,408 ids): the 256 byte symbols in the alphabet's order, the same with "</w>",
// each merge's result in rank order, then <|startoftext|> 49406 and <|endoftext|> 49407.
//
// The merges are built into the binary (tokenizer/data/clip-merges.txt, OpenAI CLIP, MIT licence;
// docs/dependencies.md); FromMerges reads a diffusers folder's tokenizer/merges.txt instead.
//
// Thread-safety: immutable after creation; Encode may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/status.h"

namespace sluice {

class ClipTokenizer {
 public:
  static constexpr int32_t kStartOfText = 49406;
  static constexpr int32_t kEndOfText = 49407;
  static constexpr int kContextLength = 77;  // tokens the text encoders take

  // The built-in merges.
  static Result<std::unique_ptr<ClipTokenizer>> Builtin();
  // merges.txt text: a "#version" line, then "a b" per line in rank order; only the first
  // 49,152 - 256 - 2 merges are used, as CLIP does. Corrupt naming `source` and the line for a
  // malformed line.
  static Result<std::unique_ptr<ClipTokenizer>> FromMerges(std::string_view text,
                                                           const std::string& source);

  // The ids of `text` (no start or end token).
  std::vector<int32_t> Encode(std::string_view text) const;
  // The text of ids (words joined with spaces where a "</w>" ended them), for tests and logs.
  std::string Decode(const std::vector<int32_t>& ids) const;
  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }

 private:
  ClipTokenizer() = default;
  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const;

  std::vector<std::string> tokens_;                   // id -> symbol text (UTF-8)
  std::unordered_map<std::string, int32_t> ids_;      // symbol text -> id
  std::unordered_map<uint64_t, int32_t> merge_rank_;  // (left id, right id) -> rank
  std::unordered_map<uint64_t, int32_t> merge_id_;    // (left id, right id) -> merged id
  int32_t byte_id_[256] = {};                         // byte -> id of its symbol
  int32_t byte_end_id_[256] = {};                     // byte -> id of its symbol + "</w>"
};

// The built-in merges.txt text (tokenizer/data/clip-merges.txt).
std::string_view ClipMergesText();

}  // namespace sluice
