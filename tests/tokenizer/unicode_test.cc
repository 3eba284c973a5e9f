// The Unicode table and UTF-8 helpers, against facts from the Unicode Character Database and the
// "maximal subpart" replacement rule of Unicode chapter 3.
#include "tokenizer/unicode.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(UnicodeTest, GeneralCategories) {
  EXPECT_EQ(ClassOf('A'), UnicodeClass::kUpper);
  EXPECT_EQ(ClassOf('z'), UnicodeClass::kLower);
  EXPECT_EQ(ClassOf(0x01C5), UnicodeClass::kTitle);        // ǅ
  EXPECT_EQ(ClassOf(0x02B0), UnicodeClass::kModifier);     // ʰ
  EXPECT_EQ(ClassOf(0x4E2D), UnicodeClass::kOtherLetter);  // 中
  EXPECT_EQ(ClassOf(0x0301), UnicodeClass::kMark);         // combining acute
  EXPECT_EQ(ClassOf(0x17B6), UnicodeClass::kMark);         // Khmer vowel sign aa (Mc)
  EXPECT_EQ(ClassOf('7'), UnicodeClass::kNumber);
  EXPECT_EQ(ClassOf(0x00BD), UnicodeClass::kNumber);  // ½ (No)
  EXPECT_EQ(ClassOf(0x0663), UnicodeClass::kNumber);  // Arabic-Indic three
  EXPECT_EQ(ClassOf(0x2167), UnicodeClass::kNumber);  // Ⅷ (Nl)
  EXPECT_EQ(ClassOf('!'), UnicodeClass::kPunct);
  EXPECT_EQ(ClassOf('_'), UnicodeClass::kPunct);
  EXPECT_EQ(ClassOf(0x3002), UnicodeClass::kPunct);  // 。
  EXPECT_EQ(ClassOf('$'), UnicodeClass::kSymbol);
  EXPECT_EQ(ClassOf('~'), UnicodeClass::kSymbol);
  EXPECT_EQ(ClassOf(0x20AC), UnicodeClass::kSymbol);   // €
  EXPECT_EQ(ClassOf(0x1F680), UnicodeClass::kSymbol);  // 🚀
  EXPECT_EQ(ClassOf(' '), UnicodeClass::kSeparator);
  EXPECT_EQ(ClassOf(0x3000), UnicodeClass::kSeparator);
  EXPECT_EQ(ClassOf('\n'), UnicodeClass::kOther);
  EXPECT_EQ(ClassOf(0x200D), UnicodeClass::kOther);  // ZWJ (Cf)
  EXPECT_EQ(ClassOf(0xE000), UnicodeClass::kOther);  // private use
  EXPECT_EQ(ClassOf(0x10FFFF), UnicodeClass::kOther);
  EXPECT_EQ(ClassOf(0x110000), UnicodeClass::kOther);
}

TEST(UnicodeTest, WhiteSpaceProperty) {
  for (uint32_t c : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028,
                     0x2029, 0x202F, 0x205F, 0x3000}) {
    EXPECT_TRUE(IsWhitespace(c)) << std::hex << c;
  }
  for (uint32_t c : {0x08, 0x0E, 0x1C, 0x1F, 0x61, 0x200B, 0x180E, 0xFEFF}) {
    EXPECT_FALSE(IsWhitespace(c)) << std::hex << c;
  }
}

TEST(UnicodeTest, DecodeValidUtf8) {
  const std::u32string cps = DecodeUtf8("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x9A\x80");
  EXPECT_EQ(cps, (std::u32string{'a', 0xE9, 0x20AC, 0x1F680}));
  EXPECT_EQ(EncodeUtf8(cps), "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x9A\x80");
}

TEST(UnicodeTest, EveryScalarValueRoundTrips) {
  for (char32_t c = 0; c <= kMaxCodePoint; ++c) {
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    std::string bytes;
    AppendUtf8(c, &bytes);
    const std::u32string back = DecodeUtf8(bytes);
    ASSERT_EQ(back.size(), 1u) << std::hex << static_cast<uint32_t>(c);
    ASSERT_EQ(back[0], c);
  }
}

TEST(UnicodeTest, InvalidBytesBecomeOneReplacementPerMaximalSubpart) {
  const char32_t R = kReplacementChar;
  // Truncated 3-byte sequence followed by ASCII: one U+FFFD for E2 82.
  EXPECT_EQ(DecodeUtf8("\xE2\x82"
                       "A"),
            (std::u32string{R, 'A'}));
  // C0 is never valid (overlong); the stray continuation byte is a second error.
  EXPECT_EQ(DecodeUtf8("\xC0\xAF"), (std::u32string{R, R}));
  // A surrogate (ED A0 80): ED cannot be followed by A0, so three errors.
  EXPECT_EQ(DecodeUtf8("\xED\xA0\x80"), (std::u32string{R, R, R}));
  // Past U+10FFFF.
  EXPECT_EQ(DecodeUtf8("\xF4\x90\x80\x80"), (std::u32string{R, R, R, R}));
  // Cut short at the end: one error.
  EXPECT_EQ(DecodeUtf8("x\xF0\x9F\x9A"), (std::u32string{'x', R}));
  std::vector<uint32_t> offsets;
  DecodeUtf8(
      "\xE2\x82"
      "A",
      &offsets);
  EXPECT_EQ(offsets, (std::vector<uint32_t>{0, 2, 3}));
}

TEST(UnicodeTest, SanitizeHoldsAnIncompleteTail) {
  std::string out;
  EXPECT_EQ(AppendSanitizedUtf8("ab\xE2\x82", /*at_end=*/false, &out), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(AppendSanitizedUtf8("ab\xE2\x82", /*at_end=*/true, &out), 4u);
  EXPECT_EQ(out, "ab\xEF\xBF\xBD");
}

}  // namespace
}  // namespace sluice
