// `sluice logits` end to end on the reference models: the file it writes and the ids it prints
// match the outside implementation's (../shared/refdata), and bad input fails clearly.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/base/str_cat.h"
#include "tests/cli/subprocess.h"

namespace sluice::testing {
namespace {

const std::string kRef = SLUICE_REFDATA_DIR;

std::vector<float> ReadF32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    m = std::max(m, std::fabs(double(a[i]) - b[i]));
  }
  return m;
}

std::string OutPath(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  return StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/sluice-logits-", getpid(), "-", name);
}

class LogitsCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kRef + "/README.md")) {
      GTEST_SKIP() << "reference data not found at " << kRef;
    }
  }
  void TearDown() override {
    for (const std::string& p : cleanup_) std::filesystem::remove(p);
  }
  std::string Out(const std::string& name) {
    cleanup_.push_back(OutPath(name));
    return cleanup_.back();
  }
  std::vector<std::string> cleanup_;
};

TEST_F(LogitsCli, F32ModelMatchesTheReferenceFilesAndGreedyIds) {
  std::string tokens;
  for (int i = 1; i <= 32; ++i) tokens += StrCat(i > 1 ? "," : "", i);
  const std::string out = Out("f32.logits"), gen = Out("f32.gen");
  ProcessResult r =
      RunSluice({"logits", "-m", kRef + "/tiny-qwen3moe-f32.gguf", "--tokens", tokens, "--greedy",
                 "16", "--out", out, "--gen-out", gen, "--kv-type", "f32", "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "84 216 97 84 216 194 11 84 216 194 11 55 129 216 194 11\n");
  const std::vector<float> logits = ReadF32(out);
  ASSERT_EQ(logits.size(), 32u * 299);
  EXPECT_LT(MaxAbsDiff(logits, ReadF32(kRef + "/logits/tiny-qwen3moe-f32.logits.f32")), 1e-4);
  EXPECT_LT(MaxAbsDiff(ReadF32(gen), ReadF32(kRef + "/logits/tiny-qwen3moe-f32.genlogits.f32")),
            1e-4);
}

TEST_F(LogitsCli, TokensFromAFileAndDequantizedWeights) {
  const std::string out = Out("q4k.logits");
  ProcessResult r = RunSluice({"logits", "-m", kRef + "/tiny-qwen3moe256-q4_k-pure.gguf",
                               "--tokens", StrCat("@", kRef, "/logits/long_prompt_tokens.txt"),
                               "--out", out, "--kv-type", "f32", "--dequantize", "--batch", "50"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // no --greedy: nothing on stdout
  EXPECT_LT(MaxAbsDiff(ReadF32(out),
                       ReadF32(kRef + "/deq/tiny-qwen3moe256-q4_k-pure-deq.long.logits.f32")),
            1e-4);
}

TEST_F(LogitsCli, BadInputFailsWithAClearMessage) {
  const std::string model = kRef + "/tiny-qwen3moe-f32.gguf";
  ProcessResult r = RunSluice({"logits", "-m", model, "--tokens", "1,x,3", "--out", Out("a")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("'x' is not a token id"), std::string::npos) << r.err;
  r = RunSluice({"logits", "-m", model, "--tokens", "1,299", "--out", Out("b")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("outside the vocabulary"), std::string::npos) << r.err;
  r = RunSluice({"logits", "-m", model, "--tokens", "1,2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;
  r = RunSluice({"logits", "-m", model, "--tokens", "1,2", "--greedy", "1", "--ram", "1M"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("needs at least"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sluice::testing
