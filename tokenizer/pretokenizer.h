// Pre-tokenizers of byte-level BPE vocabularies: split text into the pieces that BPE merges
// within, the way each model family's tokenizer.json defines it, selected by the GGUF key
// tokenizer.ggml.pre.
//
// Each family's split is one regex, or a sequence of regexes applied one after the other, every
// regex splitting each piece left by the previous one into its matches and the gaps between them
// (the Hugging Face "Split ... Isolated" behaviour). The regexes use \p{L}, \p{N}, \p{P}, \p{S},
// \p{M} and lookahead, which std::regex cannot express, so each pattern is a hand-written scanner
// over code points (pretokenizer_patterns.cc) that reproduces the regex engine's leftmost-first,
// greedy-with-backtracking result; the regex it implements is quoted above each scanner.
//
// Supported names (aliases as llama.cpp's converter writes them):
//   gpt2 / gpt-2 / default   GPT-2
//   qwen2 / stablelm2 / deepseek-r1-qwen   Qwen2 / Qwen3 (single digits)
//   qwen35                   Qwen3.5 (Qwen2 with combining marks inside words)
//   llama-bpe / llama3 / llama-v3   Llama 3 (digits in runs of 1-3; whole words found in the
//                            vocabulary skip the merges)
//   deepseek-llm, deepseek-coder, deepseek-v3
//   gpt-4o / llama4          o200k (case-aware words)
// Anything else is an Unsupported error naming it (no silent fallback: a wrong split gives
// plausible-looking but wrong token ids).
//
// Non-goals: SentencePiece (it does not pre-split), normalizers. Thread-safety: immutable after
// ForName(); Split may be called concurrently.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace sluice {

namespace pretokenizer_internal {
struct Preset;
}

class PreTokenizer {
 public:
  // Unsupported, naming `name` and listing the supported names, when there is no such preset.
  static Result<PreTokenizer> ForName(std::string_view name);
  static std::vector<std::string> SupportedNames();

  // The canonical name of the preset ("qwen2" for "deepseek-r1-qwen").
  const std::string& name() const;
  // Whether a word that is itself a vocabulary token is emitted whole, skipping the merges
  // (tokenizer.json's "ignore_merges"; true for Llama 3).
  bool ignore_merges() const;

  // The pieces of `text` in order; they are views into `text`, non-empty, and concatenate to
  // exactly `text`. Invalid UTF-8 bytes are kept (each classified as "other"), so byte-level BPE
  // stays lossless on any input.
  std::vector<std::string_view> Split(std::string_view text) const;

 private:
  explicit PreTokenizer(const pretokenizer_internal::Preset* preset) : preset_(preset) {}
  const pretokenizer_internal::Preset* preset_;
};

namespace pretokenizer_internal {

// One regex: the length of its leftmost-first match starting exactly at text[pos] within the
// piece `text` (lookahead and `$` see the end of the piece), or 0 when it does not match there.
using PatternFn = size_t (*)(std::u32string_view text, size_t pos);

struct Preset {
  std::string name;
  std::vector<std::string> aliases;
  std::vector<PatternFn> patterns;  // applied in order
  bool ignore_merges = false;
};

// The table of presets (pretokenizer_patterns.cc).
const std::vector<Preset>& Presets();

}  // namespace pretokenizer_internal
}  // namespace sluice
