// Conformance: the vocabulary files of ../shared/refdata/vocab with their test strings (.inp) and
// the ids an outside implementation produced for them (.out), in llama.cpp's test format (see
// refdata/README.md). Every case must encode to exactly those ids (no BOS, no special-token
// parsing) and decode back to the input text.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/model_open.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Case {
  std::string text;
  std::vector<int32_t> ids;
};

// .inp: strings each followed by "\n__ggml_vocab_test__\n"; .out: one line of ids per string.
std::vector<Case> ReadCases(const std::string& gguf_path) {
  const std::string inp = ReadFile(gguf_path + ".inp");
  const std::string out = ReadFile(gguf_path + ".out");
  static constexpr std::string_view kSeparator = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    const size_t end = inp.find(kSeparator, pos);
    if (end == std::string::npos) break;
    cases.push_back({inp.substr(pos, end - pos), {}});
    pos = end + kSeparator.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  while (std::getline(lines, line)) {
    if (i >= cases.size()) {
      ADD_FAILURE() << gguf_path << ".out has more lines than .inp has strings";
      break;
    }
    std::istringstream ids(line);
    int32_t id;
    while (ids >> id) cases[i].ids.push_back(id);
    ++i;
  }
  EXPECT_EQ(i, cases.size()) << gguf_path << ": .out lines vs .inp strings";
  return cases;
}

std::string IdsToString(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  for (int32_t id : ids) s << ' ' << id;
  return s.str();
}

void RunConformance(const std::string& name, size_t expected_cases) {
  const std::string path = std::string(SLUICE_REFDATA_DIR) + "/vocab/" + name + ".gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "refdata absent: " << path;
  Result<std::unique_ptr<ModelFile>> file = OpenModelFile(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromMetadata((*file)->metadata());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  const std::vector<Case> cases = ReadCases(path);
  ASSERT_EQ(cases.size(), expected_cases);
  size_t encode_ok = 0, decode_ok = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::vector<int32_t> ids = (*tokenizer)->Encode(c.text);
    if (ids == c.ids) {
      ++encode_ok;
    } else {
      ADD_FAILURE() << name << " case " << i << " '" << c.text << "'\n  expected"
                    << IdsToString(c.ids) << "\n  got     " << IdsToString(ids);
    }
    const std::string decoded = (*tokenizer)->Decode(c.ids);
    if (decoded == c.text) {
      ++decode_ok;
    } else {
      ADD_FAILURE() << name << " case " << i << ": decode gives '" << decoded << "', expected '"
                    << c.text << "'";
    }
  }
  std::printf("%s: encode %zu/%zu, decode %zu/%zu\n", name.c_str(), encode_ok, cases.size(),
              decode_ok, cases.size());
}

TEST(TokenizerConformance, LlamaSpm) { RunConformance("ggml-vocab-llama-spm", 46); }
TEST(TokenizerConformance, DeepSeekLlm) { RunConformance("ggml-vocab-deepseek-llm", 46); }
TEST(TokenizerConformance, TinyQwen3Moe) { RunConformance("ggml-vocab-tiny-qwen3moe", 46); }

}  // namespace
}  // namespace sluice
