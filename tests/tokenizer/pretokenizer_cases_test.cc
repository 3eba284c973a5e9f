// The pre-tokenizer scanners against splits produced outside the project: random strings (ASCII,
// Latin, Greek, Cyrillic, CJK, kana, Hangul, combining marks, emoji, Unicode spaces, control
// characters) split by the original regexes with Python's `regex` module
// (data/gen_pretokenizer_cases.py -> data/pretokenizer_cases.txt, 150 cases per preset).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tokenizer/pretokenizer.h"

namespace sluice {
namespace {

std::string FromHex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

TEST(PreTokenizerCasesTest, MatchesTheOriginalRegexes) {
  const std::filesystem::path path =
      std::filesystem::path(__FILE__).parent_path() / "data" / "pretokenizer_cases.txt";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot read " << path;
  std::map<std::string, int> checked;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name, text_hex, pieces_hex;
    std::getline(fields, name, '\t');
    std::getline(fields, text_hex, '\t');
    std::getline(fields, pieces_hex, '\t');
    std::vector<std::string> expected;
    std::istringstream pieces(pieces_hex);
    for (std::string piece; std::getline(pieces, piece, ',');) expected.push_back(FromHex(piece));
    Result<PreTokenizer> pre = PreTokenizer::ForName(name);
    ASSERT_TRUE(pre.ok()) << pre.status().ToString();
    const std::string text = FromHex(text_hex);
    std::vector<std::string> got;
    for (std::string_view p : pre->Split(text)) got.emplace_back(p);
    EXPECT_EQ(got, expected) << name << " on hex " << text_hex;
    ++checked[name];
  }
  EXPECT_EQ(checked.size(), 8u);
  for (const auto& [name, count] : checked) EXPECT_EQ(count, 150) << name;
}

}  // namespace
}  // namespace sluice
