// Unicode helpers for the tokenizers: UTF-8 <-> code points, the general-category class of a code
// point (for the \p{L} / \p{N} / \p{P} / \p{S} / \p{M} classes of pre-tokenizer patterns) and the
// White_Space property (for \s).
//
// The category data is a generated table (tokenizer/unicode_table.cc, from Python's unicodedata,
// Unicode 14.0): 3,448 runs of 4 bytes, looked up by binary search (12 probes), with a 128-entry
// fast path for ASCII, which is most of any prompt.
//
// Non-goals: normalization (NFC/NFKC), full case folding (ToLower is the simple mapping),
// grapheme clusters, scripts.
// Thread-safety: pure functions over constant tables; safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// General category, grouped as the tokenizer patterns need it. Numbers are the table's encoding.
enum class UnicodeClass : uint8_t {
  kOther = 0,        // Cc Cf Cs Co Cn
  kUpper = 1,        // Lu
  kLower = 2,        // Ll
  kTitle = 3,        // Lt
  kModifier = 4,     // Lm
  kOtherLetter = 5,  // Lo
  kMark = 6,         // Mn Mc Me
  kNumber = 7,       // Nd Nl No
  kPunct = 8,        // Pc Pd Ps Pe Pi Pf Po
  kSymbol = 9,       // Sm Sc Sk So
  kSeparator = 10,   // Zs Zl Zp
};

inline constexpr char32_t kMaxCodePoint = 0x10FFFF;
inline constexpr char32_t kReplacementChar = 0xFFFD;

UnicodeClass ClassOf(char32_t c);
const char* UnicodeDataVersion();

inline bool IsLetter(char32_t c) {
  UnicodeClass k = ClassOf(c);
  return k >= UnicodeClass::kUpper && k <= UnicodeClass::kOtherLetter;
}
inline bool IsNumber(char32_t c) { return ClassOf(c) == UnicodeClass::kNumber; }
inline bool IsPunct(char32_t c) { return ClassOf(c) == UnicodeClass::kPunct; }
inline bool IsSymbol(char32_t c) { return ClassOf(c) == UnicodeClass::kSymbol; }
inline bool IsMark(char32_t c) { return ClassOf(c) == UnicodeClass::kMark; }
// The White_Space property (what \s matches in the Rust and Oniguruma regex engines the
// tokenizers were defined with): U+0009-000D, 0020, 0085, 00A0, 1680, 2000-200A, 2028, 2029,
// 202F, 205F, 3000.
bool IsWhitespace(char32_t c);
// Python's str.lower() for one code point (its first code point where that is two: U+0130),
// from a generated table (tokenizer/unicode_lower_table.cc).
char32_t ToLower(char32_t c);

// Decodes UTF-8 leniently: every maximal invalid subsequence becomes one U+FFFD (the W3C/Unicode
// "maximal subpart" practice). `byte_offsets`, when not null, receives the byte offset of each
// code point and finally the total size, so that code point ranges map back to byte ranges.
std::u32string DecodeUtf8(std::string_view text, std::vector<uint32_t>* byte_offsets = nullptr);

// Appends the UTF-8 encoding of `c` (U+FFFD for surrogates or values past U+10FFFF).
void AppendUtf8(char32_t c, std::string* out);
std::string EncodeUtf8(std::u32string_view text);

// Appends `bytes` to `out` as valid UTF-8, each maximal invalid subsequence replaced by U+FFFD.
// With `at_end` false, a valid but incomplete sequence at the very end is left unconsumed (a
// later chunk may complete it). Returns the number of bytes consumed.
size_t AppendSanitizedUtf8(std::string_view bytes, bool at_end, std::string* out);

// Length of the valid UTF-8 sequence starting at text[0], or 0 when it is invalid or cut short.
// *complete_prefix is set when the bytes are a valid but incomplete start of a sequence (more
// bytes could complete it), which is how a streaming decoder knows to wait.
size_t ValidUtf8SequenceLength(std::string_view text, bool* complete_prefix);

}  // namespace sluice

namespace sluice::unicode_internal {
// Generated table (unicode_table.cc): (first_code_point << 8) | class, ascending, from 0 to the
// last run; each run lasts until the next one starts.
extern const uint32_t kUnicodeRuns[];
extern const size_t kUnicodeRunCount;
extern const char kUnicodeVersion[];
}  // namespace sluice::unicode_internal
