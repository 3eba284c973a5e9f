#include "tokenizer/pretokenizer.h"

#include "tokenizer/unicode.h"

namespace sluice {

using pretokenizer_internal::PatternFn;
using pretokenizer_internal::Preset;
using pretokenizer_internal::Presets;

Result<PreTokenizer> PreTokenizer::ForName(std::string_view name) {
  for (const Preset& preset : Presets()) {
    if (preset.name == name) return PreTokenizer(&preset);
    for (const std::string& alias : preset.aliases) {
      if (alias == name) return PreTokenizer(&preset);
    }
  }
  std::string supported;
  for (const std::string& n : SupportedNames()) supported += (supported.empty() ? "" : ", ") + n;
  return Unsupported(
      "tokenizer.ggml.pre '", name,
      "': this byte-level BPE pre-tokenizer is not supported (supported: ", supported, ")");
}

std::vector<std::string> PreTokenizer::SupportedNames() {
  std::vector<std::string> names;
  for (const Preset& preset : Presets()) {
    names.push_back(preset.name);
    names.insert(names.end(), preset.aliases.begin(), preset.aliases.end());
  }
  return names;
}

const std::string& PreTokenizer::name() const { return preset_->name; }
bool PreTokenizer::ignore_merges() const { return preset_->ignore_merges; }

namespace {

struct Piece {
  size_t begin, end;  // code point indices
};

// Splits every piece into the pattern's matches and the gaps between them.
std::vector<Piece> ApplyPattern(std::u32string_view text, const std::vector<Piece>& pieces,
                                PatternFn pattern) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (const Piece& piece : pieces) {
    const std::u32string_view s = text.substr(piece.begin, piece.end - piece.begin);
    size_t gap_start = 0;
    size_t pos = 0;
    while (pos < s.size()) {
      const size_t n = pattern(s, pos);
      if (n == 0) {
        ++pos;
        continue;
      }
      if (gap_start < pos) out.push_back({piece.begin + gap_start, piece.begin + pos});
      out.push_back({piece.begin + pos, piece.begin + pos + n});
      pos += n;
      gap_start = pos;
    }
    if (gap_start < s.size()) out.push_back({piece.begin + gap_start, piece.end});
  }
  return out;
}

}  // namespace

std::vector<std::string_view> PreTokenizer::Split(std::string_view text) const {
  std::vector<uint32_t> offsets;  // byte offset of every code point, then text.size()
  const std::u32string code_points = DecodeUtf8(text, &offsets);
  std::vector<Piece> pieces;
  if (!code_points.empty()) pieces.push_back({0, code_points.size()});
  for (PatternFn pattern : preset_->patterns) pieces = ApplyPattern(code_points, pieces, pattern);
  std::vector<std::string_view> out;
  out.reserve(pieces.size());
  for (const Piece& p : pieces)
    out.push_back(text.substr(offsets[p.begin], offsets[p.end] - offsets[p.begin]));
  return out;
}

}  // namespace sluice
