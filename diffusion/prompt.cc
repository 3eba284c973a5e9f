#include "diffusion/prompt.h"

#include <cctype>
#include <charconv>
#include <cmath>

namespace sluice::diffusion {
namespace {

// At text[i] == ':', the pattern ":\s*([+-]?[.\d]+)\s*\)". Sets *len (including the ')') and
// *weight when it matches and the number parses.
bool MatchWeight(std::string_view text, size_t i, size_t* len, float* weight) {
  size_t j = i + 1;
  while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
  const size_t num = j;
  if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
  const size_t digits = j;
  while (j < text.size() && (text[j] == '.' || (text[j] >= '0' && text[j] <= '9'))) ++j;
  if (j == digits) return false;
  const size_t num_end = j;
  while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j]))) ++j;
  if (j >= text.size() || text[j] != ')') return false;
  double v = 0;
  const char* first = text.data() + num + (text[num] == '+' ? 1 : 0);
  auto [ptr, ec] = std::from_chars(first, text.data() + num_end, v);
  if (ec != std::errc() || ptr != text.data() + num_end || !std::isfinite(v)) return false;
  *len = j + 1 - i;
  *weight = static_cast<float>(v);
  return true;
}

}  // namespace

std::vector<WeightedText> ParseEmphasis(std::string_view prompt) {
  std::vector<WeightedText> res;
  std::vector<size_t> round, square;
  auto multiply = [&](size_t from, float m) {
    for (size_t p = from; p < res.size(); ++p) res[p].weight *= m;
  };
  size_t i = 0;
  while (i < prompt.size()) {
    const char c = prompt[i];
    if (c == '\\') {
      // "\(" "\)" "\[" "\]" "\\": the character; a lone backslash stays.
      if (i + 1 < prompt.size() &&
          std::string_view("()[]\\").find(prompt[i + 1]) != std::string_view::npos) {
        res.push_back({std::string(1, prompt[i + 1]), 1.0f});
        i += 2;
      } else {
        res.push_back({"\\", 1.0f});
        ++i;
      }
      continue;
    }
    if (c == '(') {
      round.push_back(res.size());
      ++i;
      continue;
    }
    if (c == '[') {
      square.push_back(res.size());
      ++i;
      continue;
    }
    if (c == ':') {
      size_t len = 0;
      float w = 1;
      if (MatchWeight(prompt, i, &len, &w) && !round.empty()) {
        multiply(round.back(), w);
        round.pop_back();
        i += len;
        continue;
      }
      if (len == 0) {
        // Not a weight: ":" is text. (A matched weight without an open bracket is text too.)
        res.push_back({":", 1.0f});
        ++i;
      } else {
        res.push_back({std::string(prompt.substr(i, len)), 1.0f});
        i += len;
      }
      continue;
    }
    if (c == ')' && !round.empty()) {
      multiply(round.back(), 1.1f);
      round.pop_back();
      ++i;
      continue;
    }
    if (c == ']' && !square.empty()) {
      multiply(square.back(), 1.0f / 1.1f);
      square.pop_back();
      ++i;
      continue;
    }
    if (c == ')' || c == ']') {  // unmatched: text
      res.push_back({std::string(1, c), 1.0f});
      ++i;
      continue;
    }
    size_t j = i;
    while (j < prompt.size() &&
           std::string_view("\\()[]:").find(prompt[j]) == std::string_view::npos) {
      ++j;
    }
    res.push_back({std::string(prompt.substr(i, j - i)), 1.0f});
    i = j;
  }
  for (size_t p : round) multiply(p, 1.1f);
  for (size_t p : square) multiply(p, 1.0f / 1.1f);
  if (res.empty()) res.push_back({"", 1.0f});
  for (size_t k = 0; k + 1 < res.size();) {
    if (res[k].weight == res[k + 1].weight) {
      res[k].text += res[k + 1].text;
      res.erase(res.begin() + static_cast<std::ptrdiff_t>(k) + 1);
    } else {
      ++k;
    }
  }
  return res;
}

ClipTokens TokenizePrompt(const ClipTokenizer& tokenizer, std::string_view prompt, int32_t pad_id) {
  constexpr int kRoom = ClipTokenizer::kContextLength - 2;
  ClipTokens t;
  t.ids.push_back(ClipTokenizer::kStartOfText);
  t.weights.push_back(1.0f);
  for (const WeightedText& run : ParseEmphasis(prompt)) {
    for (int32_t id : tokenizer.Encode(run.text)) {
      ++t.prompt_tokens;
      if (static_cast<int>(t.ids.size()) - 1 >= kRoom) {
        t.truncated = true;
        continue;
      }
      t.ids.push_back(id);
      t.weights.push_back(run.weight);
    }
  }
  t.ids.push_back(ClipTokenizer::kEndOfText);
  t.weights.push_back(1.0f);
  while (static_cast<int>(t.ids.size()) < ClipTokenizer::kContextLength) {
    t.ids.push_back(pad_id);
    t.weights.push_back(1.0f);
  }
  return t;
}

void ApplyTokenWeights(const ClipTokens& tokens, int64_t width, float* hidden) {
  bool all_one = true;
  for (float w : tokens.weights) all_one &= w == 1.0f;
  if (all_one) return;
  const int64_t n = static_cast<int64_t>(tokens.weights.size()) * width;
  double before = 0;
  for (int64_t i = 0; i < n; ++i) before += hidden[i];
  double after = 0;
  for (size_t t = 0; t < tokens.weights.size(); ++t) {
    for (int64_t i = 0; i < width; ++i) {
      float& v = hidden[t * width + i];
      v *= tokens.weights[t];
      after += v;
    }
  }
  if (after == 0) return;
  const float scale = static_cast<float>(before / after);
  for (int64_t i = 0; i < n; ++i) hidden[i] *= scale;
}

}  // namespace sluice::diffusion
