// The pre-tokenizer regexes as scanners. Each Match* function returns the length of the match
// the regex engine would report at `pos` (0: no match), trying alternatives in order and, inside
// one, taking greedy quantifiers as far as they go and backing off only as far as the rest of the
// alternative needs. \s is White_Space, \p{X} is the general category (tokenizer/unicode.h).
#include <algorithm>

#include "tokenizer/pretokenizer.h"
#include "tokenizer/unicode.h"

namespace sluice::pretokenizer_internal {
namespace {

using Text = std::u32string_view;

bool IsNewline(char32_t c) { return c == '\r' || c == '\n'; }
bool IsAsciiLetter(char32_t c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsAsciiPunct(char32_t c) {  // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]
  return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
         (c >= 0x7B && c <= 0x7E);
}

template <typename Pred>
bool At(Text s, size_t i, Pred pred) {
  return i < s.size() && pred(s[i]);
}

template <typename Pred>
size_t RunOf(Text s, size_t i, Pred pred) {
  size_t j = i;
  while (j < s.size() && pred(s[j])) ++j;
  return j - i;
}

// pred{1,max}: stops after `max`, so a match costs O(max), not O(run). Scanning the whole run and
// clamping it made a 1 MB run of digits quadratic (~20 minutes).
template <typename Pred>
size_t RunOfAtMost(Text s, size_t i, Pred pred, size_t max) {
  size_t j = i;
  while (j < s.size() && j - i < max && pred(s[j])) ++j;
  return j - i;
}

// [pre]?[body]+ : the optional character is taken when the body can follow it.
template <typename Pre, typename Body>
size_t OptionalPrefixRun(Text s, size_t i, Pre pre, Body body) {
  if (At(s, i, pre) && At(s, i + 1, body)) return 1 + RunOf(s, i + 1, body);
  return RunOf(s, i, body);
}

// " ?[body]+[tail]*" (the space is never in `body`).
template <typename Body, typename Tail>
size_t OptionalSpaceRun(Text s, size_t i, Body body, Tail tail) {
  size_t j = i;
  if (At(s, j, [](char32_t c) { return c == ' '; }) && At(s, j + 1, body)) ++j;
  const size_t run = RunOf(s, j, body);
  if (run == 0) return 0;
  j += run;
  j += RunOf(s, j, tail);
  return j - i;
}

bool Never(char32_t) { return false; }

// 's|'t|'re|'ve|'m|'ll|'d, case-sensitive or (ASCII) case-insensitive.
size_t Contraction(Text s, size_t i, bool ignore_case) {
  if (!At(s, i, [](char32_t c) { return c == '\''; })) return 0;
  static constexpr const char* kSuffixes[] = {"s", "t", "re", "ve", "m", "ll", "d"};
  for (const char* suffix : kSuffixes) {
    size_t k = 0;
    for (; suffix[k] != '\0'; ++k) {
      if (i + 1 + k >= s.size()) break;
      char32_t c = s[i + 1 + k];
      if (ignore_case && c >= 'A' && c <= 'Z') c += 'a' - 'A';
      if (c != static_cast<char32_t>(suffix[k])) break;
    }
    if (suffix[k] == '\0') return 1 + k;
  }
  return 0;
}

// \s+(?!\S): all of a whitespace run that reaches the end, else all but its last character.
size_t SpacesNotBeforeNonSpace(Text s, size_t i) {
  const size_t run = RunOf(s, i, IsWhitespace);
  if (run == 0 || i + run == s.size()) return run;
  return run - 1;
}

// \s*[\r\n]+ : the whitespace run up to and including its last \r or \n.
size_t SpacesThroughNewline(Text s, size_t i) {
  const size_t run = RunOf(s, i, IsWhitespace);
  size_t end = 0;
  for (size_t j = i; j < i + run; ++j) {
    if (IsNewline(s[j])) end = j + 1;
  }
  return end == 0 ? 0 : end - i;
}

size_t Spaces(Text s, size_t i) { return RunOf(s, i, IsWhitespace); }

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
size_t MatchGpt2(Text s, size_t i) {
  auto other = [](char32_t c) { return !IsWhitespace(c) && !IsLetter(c) && !IsNumber(c); };
  if (size_t n = Contraction(s, i, false)) return n;
  if (size_t n = OptionalSpaceRun(s, i, IsLetter, Never)) return n;
  if (size_t n = OptionalSpaceRun(s, i, IsNumber, Never)) return n;
  if (size_t n = OptionalSpaceRun(s, i, other, Never)) return n;
  if (size_t n = SpacesNotBeforeNonSpace(s, i)) return n;
  return Spaces(s, i);
}

// The Qwen2 / Llama 3 / Qwen3.5 family:
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?WORD+|\p{N}{1,MAX_DIGITS}|
//    ?[^\s\p{L}\p{N}MARKS]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// with WORD = \p{L} (Qwen2, Llama 3) or [\p{L}\p{M}] (Qwen3.5, which also keeps \p{M} out of the
// punctuation run).
template <size_t kMaxDigits, bool kMarksInWords>
size_t MatchQwenLike(Text s, size_t i) {
  auto word = [](char32_t c) { return IsLetter(c) || (kMarksInWords && IsMark(c)); };
  auto prefix = [](char32_t c) { return !IsNewline(c) && !IsLetter(c) && !IsNumber(c); };
  auto other = [](char32_t c) {
    return !IsWhitespace(c) && !IsLetter(c) && !IsNumber(c) && !(kMarksInWords && IsMark(c));
  };
  if (size_t n = Contraction(s, i, true)) return n;
  if (size_t n = OptionalPrefixRun(s, i, prefix, word)) return n;
  if (size_t n = RunOfAtMost(s, i, IsNumber, kMaxDigits)) return n;
  if (size_t n = OptionalSpaceRun(s, i, other, IsNewline)) return n;
  if (size_t n = SpacesThroughNewline(s, i)) return n;
  if (size_t n = SpacesNotBeforeNonSpace(s, i)) return n;
  return Spaces(s, i);
}

// GPT-4o (o200k):
//   [^\r\n\p{L}\p{N}]?UPPER*LOWER+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//   [^\r\n\p{L}\p{N}]?UPPER+LOWER*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|
//   \p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
// UPPER = [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}], LOWER = [\p{Ll}\p{Lm}\p{Lo}\p{M}].
bool IsUpperish(char32_t c) {
  UnicodeClass k = ClassOf(c);
  return k == UnicodeClass::kUpper || k == UnicodeClass::kTitle || k == UnicodeClass::kModifier ||
         k == UnicodeClass::kOtherLetter || k == UnicodeClass::kMark;
}
bool IsLowerish(char32_t c) {
  UnicodeClass k = ClassOf(c);
  return k == UnicodeClass::kLower || k == UnicodeClass::kModifier ||
         k == UnicodeClass::kOtherLetter || k == UnicodeClass::kMark;
}
bool IsO200kPrefix(char32_t c) { return !IsNewline(c) && !IsLetter(c) && !IsNumber(c); }

// UPPER*LOWER+ from `start`: UPPER* backs off until LOWER+ can match. 0 when it cannot.
size_t UpperStarLowerPlus(Text s, size_t start) {
  const size_t upper = RunOf(s, start, IsUpperish);
  for (size_t u = upper + 1; u-- > 0;) {
    if (At(s, start + u, IsLowerish)) return u + RunOf(s, start + u, IsLowerish);
  }
  return 0;
}

size_t UpperPlusLowerStar(Text s, size_t start) {
  const size_t upper = RunOf(s, start, IsUpperish);
  if (upper == 0) return 0;
  return upper + RunOf(s, start + upper, IsLowerish);
}

size_t MatchGpt4o(Text s, size_t i) {
  for (auto body : {UpperStarLowerPlus, UpperPlusLowerStar}) {
    // The optional prefix is tried first, then (backtracking) without it.
    for (size_t skip : {size_t{1}, size_t{0}}) {
      if (skip == 1 && !At(s, i, IsO200kPrefix)) continue;
      if (size_t n = body(s, i + skip)) {
        const size_t end = i + skip + n;
        return end + Contraction(s, end, true) - i;
      }
    }
  }
  if (size_t n = RunOfAtMost(s, i, IsNumber, 3)) return n;
  auto other = [](char32_t c) { return !IsWhitespace(c) && !IsLetter(c) && !IsNumber(c); };
  auto tail = [](char32_t c) { return IsNewline(c) || c == '/'; };
  if (size_t n = OptionalSpaceRun(s, i, other, tail)) return n;
  if (size_t n = SpacesThroughNewline(s, i)) return n;
  if (size_t n = SpacesNotBeforeNonSpace(s, i)) return n;
  return Spaces(s, i);
}

// ---- DeepSeek: sequences of simpler regexes ----

struct Range {
  char32_t first, last;
};

template <size_t N>
bool InRanges(const Range (&ranges)[N], char32_t c) {
  for (const Range& r : ranges) {
    if (c >= r.first && c <= r.last) return true;
  }
  return false;
}

// DeepSeek LLM's letter class: a subset of the cased letters (Lu, Ll, Lt), exactly as its
// tokenizer.json spells it.
constexpr Range kDeepSeekLetters[] = {
    {0x41, 0x5A},       {0x61, 0x7A},       {0xB5, 0xB5},       {0xC0, 0xD6},
    {0xD8, 0xF6},       {0xF8, 0x1BA},      {0x1BC, 0x1BF},     {0x1C4, 0x293},
    {0x295, 0x2AF},     {0x370, 0x373},     {0x376, 0x377},     {0x37B, 0x37D},
    {0x37F, 0x37F},     {0x386, 0x386},     {0x388, 0x38A},     {0x38C, 0x38C},
    {0x38E, 0x3A1},     {0x3A3, 0x3F5},     {0x3F7, 0x481},     {0x48A, 0x52F},
    {0x531, 0x556},     {0x10A0, 0x10C5},   {0x13A0, 0x13F5},   {0x13F8, 0x13FD},
    {0x1C90, 0x1CBA},   {0x1CBD, 0x1CBF},   {0x1D00, 0x1D2B},   {0x1D6B, 0x1D77},
    {0x1D79, 0x1D9A},   {0x1E00, 0x1F15},   {0x1F18, 0x1F1D},   {0x1F20, 0x1F45},
    {0x1F48, 0x1F4D},   {0x1F50, 0x1F57},   {0x1F59, 0x1F59},   {0x1F5B, 0x1F5B},
    {0x1F5D, 0x1F5D},   {0x1F5F, 0x1F7D},   {0x1F80, 0x1FB4},   {0x1FB6, 0x1FBC},
    {0x1FBE, 0x1FBE},   {0x1FC2, 0x1FC4},   {0x1FC6, 0x1FCC},   {0x1FD0, 0x1FD3},
    {0x1FD6, 0x1FDB},   {0x1FE0, 0x1FEC},   {0x1FF2, 0x1FF4},   {0x1FF6, 0x1FFC},
    {0x2102, 0x2102},   {0x2107, 0x2107},   {0x210A, 0x2113},   {0x2115, 0x2115},
    {0x2119, 0x211D},   {0x2124, 0x2124},   {0x2126, 0x2126},   {0x2128, 0x2128},
    {0x212A, 0x212D},   {0x212F, 0x2134},   {0x2139, 0x2139},   {0x213C, 0x213F},
    {0x2145, 0x2149},   {0x214E, 0x214E},   {0x2183, 0x2184},   {0x2C00, 0x2C7B},
    {0x2C7E, 0x2CE4},   {0x2CEB, 0x2CEE},   {0x2CF2, 0x2CF3},   {0xA640, 0xA66D},
    {0xA680, 0xA69B},   {0xA722, 0xA76F},   {0xA771, 0xA787},   {0xA78B, 0xA78E},
    {0xAB70, 0xABBF},   {0xFB00, 0xFB06},   {0xFB13, 0xFB17},   {0xFF21, 0xFF3A},
    {0xFF41, 0xFF5A},   {0x10400, 0x1044F}, {0x104B0, 0x104D3}, {0x104D8, 0x104FB},
    {0x10C80, 0x10CB2}, {0x10CC0, 0x10CF2}, {0x118A0, 0x118DF}, {0x1E900, 0x1E943},
};
// [!-/:-~！-／：-～‘-‟　-。]
constexpr Range kDeepSeekPunct[] = {{0x21, 0x2F},     {0x3A, 0x7E},     {0xFF01, 0xFF0F},
                                    {0xFF1A, 0xFF5E}, {0x2018, 0x201F}, {0x3000, 0x3002}};
// [一-龥ࠀ-一가-퟿]
constexpr Range kDeepSeekCjk[] = {{0x4E00, 0x9FA5}, {0x0800, 0x4E00}, {0xAC00, 0xD7FF}};
// [一-龥぀-ゟ゠-ヿ]
constexpr Range kDeepSeekV3Cjk[] = {{0x4E00, 0x9FA5}, {0x3040, 0x309F}, {0x30A0, 0x30FF}};

bool IsDeepSeekLetter(char32_t c) { return InRanges(kDeepSeekLetters, c); }
bool IsDeepSeekPunct(char32_t c) { return InRanges(kDeepSeekPunct, c); }
bool IsDeepSeekCjk(char32_t c) { return InRanges(kDeepSeekCjk, c); }
bool IsDeepSeekV3Cjk(char32_t c) { return InRanges(kDeepSeekV3Cjk, c); }

// [\r\n]
size_t MatchNewline(Text s, size_t i) { return At(s, i, IsNewline) ? 1 : 0; }
// \s?[letters]+
size_t MatchDeepSeekWord(Text s, size_t i) {
  return OptionalPrefixRun(s, i, IsWhitespace, IsDeepSeekLetter);
}
// \s?[!-/:-~！-／：-～‘-‟　-。]+
size_t MatchDeepSeekPunct(Text s, size_t i) {
  return OptionalPrefixRun(s, i, IsWhitespace, IsDeepSeekPunct);
}
// \s+$
size_t MatchTrailingSpaces(Text s, size_t i) {
  const size_t run = Spaces(s, i);
  return i + run == s.size() ? run : 0;
}
// [一-龥ࠀ-一가-퟿]+
size_t MatchDeepSeekCjk(Text s, size_t i) { return RunOf(s, i, IsDeepSeekCjk); }
// \p{N}+
size_t MatchNumbers(Text s, size_t i) { return RunOf(s, i, IsNumber); }
// \p{N}
size_t MatchDigit(Text s, size_t i) { return At(s, i, IsNumber) ? 1 : 0; }
// \s?\p{L}+
size_t MatchSpaceLetters(Text s, size_t i) {
  return OptionalPrefixRun(s, i, IsWhitespace, IsLetter);
}
// \s?\p{P}+
size_t MatchSpacePunct(Text s, size_t i) { return OptionalPrefixRun(s, i, IsWhitespace, IsPunct); }
// \p{N}{1,3}
size_t MatchDigits3(Text s, size_t i) { return RunOfAtMost(s, i, IsNumber, 3); }
// [一-龥぀-ゟ゠-ヿ]+
size_t MatchDeepSeekV3Cjk(Text s, size_t i) { return RunOf(s, i, IsDeepSeekV3Cjk); }

// [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|
//  ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
size_t MatchDeepSeekV3Main(Text s, size_t i) {
  if (At(s, i, IsAsciiPunct) && At(s, i + 1, IsAsciiLetter)) {
    return 1 + RunOf(s, i + 1, IsAsciiLetter);
  }
  auto prefix = [](char32_t c) {
    return !IsNewline(c) && !IsLetter(c) && !IsPunct(c) && !IsSymbol(c);
  };
  auto word = [](char32_t c) { return IsLetter(c) || IsMark(c); };
  if (size_t n = OptionalPrefixRun(s, i, prefix, word)) return n;
  auto punct = [](char32_t c) { return IsPunct(c) || IsSymbol(c); };
  if (size_t n = OptionalSpaceRun(s, i, punct, IsNewline)) return n;
  if (size_t n = SpacesThroughNewline(s, i)) return n;
  if (size_t n = SpacesNotBeforeNonSpace(s, i)) return n;
  return Spaces(s, i);
}

}  // namespace

const std::vector<Preset>& Presets() {
  static const std::vector<Preset> presets = {
      {"gpt2", {"gpt-2", "default"}, {MatchGpt2}, false},
      {"qwen2", {"stablelm2", "deepseek-r1-qwen"}, {MatchQwenLike<1, false>}, false},
      {"qwen35", {}, {MatchQwenLike<1, true>}, false},
      {"llama-bpe", {"llama3", "llama-v3"}, {MatchQwenLike<3, false>}, true},
      {"deepseek-llm",
       {},
       {MatchNewline, MatchDeepSeekWord, MatchDeepSeekPunct, MatchTrailingSpaces, MatchDeepSeekCjk,
        MatchNumbers},
       false},
      {"deepseek-coder",
       {},
       {MatchNewline, MatchSpaceLetters, MatchSpacePunct, MatchDeepSeekCjk, MatchDigit},
       false},
      {"deepseek-v3", {}, {MatchDigits3, MatchDeepSeekV3Cjk, MatchDeepSeekV3Main}, false},
      {"gpt-4o", {"llama4"}, {MatchGpt4o}, false},
  };
  return presets;
}

}  // namespace sluice::pretokenizer_internal
