// Every pre-tokenizer pattern is linear in its input (issue 16: a 1 MB run of digits took ~20
// minutes): 1 MB of each character class, and of a few mixes, through every preset. The test
// asserts the split's invariants (non-empty pieces that concatenate to the input); a quadratic
// scanner shows up as this test running into ctest's timeout instead of taking milliseconds.
#include <gtest/gtest.h>

#include <string>

#include "tokenizer/pretokenizer.h"

namespace sluice {
namespace {

constexpr size_t kBytes = 1 << 20;

std::string Repeat(const std::string& unit) {
  std::string s;
  s.reserve(kBytes + unit.size());
  while (s.size() < kBytes) s += unit;
  return s;
}

TEST(PreTokenizerLinear, OneMegabyteOfEachClassThroughEveryPreset) {
  const std::pair<const char*, std::string> inputs[] = {
      {"digits", "7"},          {"letters", "a"},
      {"capitals", "Q"},        {"spaces", " "},
      {"tabs", "\t"},           {"newlines", "\n"},
      {"crlf", "\r\n"},         {"punctuation", "!"},
      {"apostrophes", "'"},     {"cjk", "\xe4\xb8\xad"},
      {"marks", "e\xcc\x81"},   {"space-letter", " a"},
      {"space-digit", " 1"},    {"spaces-then-newline", "    \n"},
      {"invalid-utf8", "\xff"}, {"letter-digit", "a1"},
  };
  for (const std::string& name : PreTokenizer::SupportedNames()) {
    Result<PreTokenizer> p = PreTokenizer::ForName(name);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    if (p->name() != name) continue;  // an alias: the same scanners as its preset
    for (const auto& [what, unit] : inputs) {
      const std::string text = Repeat(unit);
      const std::vector<std::string_view> pieces = p->Split(text);
      size_t at = 0;
      for (std::string_view piece : pieces) {
        ASSERT_FALSE(piece.empty()) << name << " " << what;
        ASSERT_EQ(piece.data(), text.data() + at) << name << " " << what;
        at += piece.size();
      }
      EXPECT_EQ(at, text.size()) << name << " " << what;
    }
  }
}

}  // namespace
}  // namespace sluice
