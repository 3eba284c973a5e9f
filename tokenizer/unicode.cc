#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace sluice {
namespace {

using unicode_internal::kUnicodeRunCount;
using unicode_internal::kUnicodeRuns;

UnicodeClass LookUp(char32_t c) {
  // The first run whose start is > c, minus one, is the run holding c.
  const uint32_t key = (static_cast<uint32_t>(c) << 8) | 0xFF;
  const uint32_t* end = kUnicodeRuns + kUnicodeRunCount;
  const uint32_t* it = std::upper_bound(kUnicodeRuns, end, key);
  return static_cast<UnicodeClass>(*(it - 1) & 0xFF);
}

const std::array<UnicodeClass, 128>& AsciiClasses() {
  static const std::array<UnicodeClass, 128> table = [] {
    std::array<UnicodeClass, 128> t{};
    for (char32_t c = 0; c < 128; ++c) t[c] = LookUp(c);
    return t;
  }();
  return table;
}

}  // namespace

UnicodeClass ClassOf(char32_t c) {
  if (c < 128) return AsciiClasses()[c];
  if (c > kMaxCodePoint) return UnicodeClass::kOther;
  return LookUp(c);
}

const char* UnicodeDataVersion() { return unicode_internal::kUnicodeVersion; }

bool IsWhitespace(char32_t c) {
  if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
  if (c < 0x85) return false;
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

size_t ValidUtf8SequenceLength(std::string_view text, bool* complete_prefix) {
  *complete_prefix = false;
  if (text.empty()) return 0;
  const auto b0 = static_cast<uint8_t>(text[0]);
  if (b0 < 0x80) return 1;
  size_t need = 0;
  // Allowed range of the second byte: it excludes overlong forms (E0 80..9F, F0 80..8F),
  // surrogates (ED A0..BF) and values past U+10FFFF (F4 90..BF).
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;  // a continuation byte, C0/C1 (always overlong) or F5..FF
  }
  for (size_t k = 1; k <= need; ++k) {
    if (k >= text.size()) {
      *complete_prefix = true;
      return 0;
    }
    const auto b = static_cast<uint8_t>(text[k]);
    const uint8_t min = k == 1 ? lo : 0x80;
    const uint8_t max = k == 1 ? hi : 0xBF;
    if (b < min || b > max) return 0;
  }
  return need + 1;
}

namespace {

// Bytes covered by the maximal subpart of an invalid sequence at text[0] (at least 1): the lead
// byte plus the continuation bytes that were still acceptable.
size_t InvalidSubpartLength(std::string_view text) {
  size_t skip = 1;
  while (skip < text.size() && skip < 4) {
    bool prefix = false;
    ValidUtf8SequenceLength(text.substr(0, skip + 1), &prefix);
    if (!prefix) break;
    ++skip;
  }
  return skip;
}

}  // namespace

size_t AppendSanitizedUtf8(std::string_view bytes, bool at_end, std::string* out) {
  size_t i = 0;
  while (i < bytes.size()) {
    bool prefix = false;
    const size_t len = ValidUtf8SequenceLength(bytes.substr(i), &prefix);
    if (len > 0) {
      out->append(bytes.substr(i, len));
      i += len;
    } else if (prefix && !at_end) {
      break;  // wait for the rest of this character
    } else {
      AppendUtf8(kReplacementChar, out);
      i += prefix ? bytes.size() - i : InvalidSubpartLength(bytes.substr(i));
    }
  }
  return i;
}

std::u32string DecodeUtf8(std::string_view text, std::vector<uint32_t>* byte_offsets) {
  std::u32string out;
  out.reserve(text.size());
  if (byte_offsets != nullptr) {
    byte_offsets->clear();
    byte_offsets->reserve(text.size() + 1);
  }
  size_t i = 0;
  while (i < text.size()) {
    if (byte_offsets != nullptr) byte_offsets->push_back(static_cast<uint32_t>(i));
    bool prefix = false;
    const size_t len = ValidUtf8SequenceLength(text.substr(i), &prefix);
    if (len == 0) {
      out.push_back(kReplacementChar);
      i += prefix ? text.size() - i : InvalidSubpartLength(text.substr(i));
      continue;
    }
    const auto b0 = static_cast<uint8_t>(text[i]);
    char32_t c;
    if (len == 1) {
      c = b0;
    } else if (len == 2) {
      c = (b0 & 0x1Fu) << 6 | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu);
    } else if (len == 3) {
      c = (b0 & 0x0Fu) << 12 | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu) << 6 |
          (static_cast<uint8_t>(text[i + 2]) & 0x3Fu);
    } else {
      c = (b0 & 0x07u) << 18 | (static_cast<uint8_t>(text[i + 1]) & 0x3Fu) << 12 |
          (static_cast<uint8_t>(text[i + 2]) & 0x3Fu) << 6 |
          (static_cast<uint8_t>(text[i + 3]) & 0x3Fu);
    }
    out.push_back(c);
    i += len;
  }
  if (byte_offsets != nullptr) byte_offsets->push_back(static_cast<uint32_t>(text.size()));
  return out;
}

void AppendUtf8(char32_t c, std::string* out) {
  if (c > kMaxCodePoint || (c >= 0xD800 && c <= 0xDFFF)) c = kReplacementChar;
  if (c < 0x80) {
    out->push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (c >> 6)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (c >> 12)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (c >> 18)));
    out->push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string EncodeUtf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char32_t c : text) AppendUtf8(c, &out);
  return out;
}

}  // namespace sluice
