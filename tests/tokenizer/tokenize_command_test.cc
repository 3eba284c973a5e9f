// `sluice tokenize` end to end: runs the built binary on a refdata vocabulary and compares with
// the library. Skips when the binary has not been built or the refdata is absent.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "io/model_open.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

struct CommandResult {
  int exit_code;
  std::string out;  // stdout and stderr
};

CommandResult Sluice(const std::string& args) {
  const std::string cmd = std::string(SLUICE_BINARY_DIR) + "/cli/sluice " + args + " 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  CommandResult run{-1, ""};
  if (pipe == nullptr) return run;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) run.out.append(buf, n);
  const int status = pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

class TokenizeCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(SLUICE_BINARY_DIR) + "/cli/sluice")) {
      GTEST_SKIP() << "sluice binary not built in " << SLUICE_BINARY_DIR;
    }
    model_ = std::string(SLUICE_REFDATA_DIR) + "/vocab/ggml-vocab-tiny-qwen3moe.gguf";
    if (!std::filesystem::exists(model_)) GTEST_SKIP() << "refdata absent: " << model_;
    Result<std::unique_ptr<ModelFile>> file = OpenModelFile(model_);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    Result<std::unique_ptr<Tokenizer>> t = Tokenizer::FromMetadata((*file)->metadata());
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tokenizer_ = std::move(t).value();
  }

  std::string Line(const std::vector<int32_t>& ids) const {
    std::ostringstream s;
    for (size_t i = 0; i < ids.size(); ++i) s << (i ? " " : "") << ids[i];
    s << '\n';
    return s.str();
  }

  std::string model_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(TokenizeCommandTest, EncodesLikeTheLibrary) {
  const CommandResult run = Sluice("tokenize -m " + model_ + " -p 'Hello world, <|im_start|>!'");
  ASSERT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.out, Line(tokenizer_->Encode("Hello world, <|im_start|>!")));
  const CommandResult special = Sluice("tokenize -m " + model_ + " --special -p '<|im_start|>hi'");
  ASSERT_EQ(special.exit_code, 0) << special.out;
  EXPECT_EQ(special.out, Line(tokenizer_->Encode("<|im_start|>hi", {.parse_special = true})));
  EXPECT_EQ(special.out.substr(0, 4), "297 ") << "<|im_start|> is id 297";
}

TEST_F(TokenizeCommandTest, DecodeRoundTripsThroughAFile) {
  const std::string text = "two\nlines ünïcode 🚀";
  const auto dir =
      std::filesystem::temp_directory_path() / ("sluice_tokenize_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  { std::ofstream(dir / "in.txt", std::ios::binary) << text; }
  const CommandResult enc = Sluice("tokenize -m " + model_ + " -f " + (dir / "in.txt").string());
  ASSERT_EQ(enc.exit_code, 0) << enc.out;
  { std::ofstream(dir / "ids.txt", std::ios::binary) << enc.out; }
  const CommandResult dec =
      Sluice("tokenize -m " + model_ + " --decode -f " + (dir / "ids.txt").string());
  std::filesystem::remove_all(dir);
  ASSERT_EQ(dec.exit_code, 0) << dec.out;
  EXPECT_EQ(dec.out, text);  // byte for byte: no newline added in a pipe
}

TEST_F(TokenizeCommandTest, BadInputFailsWithOneClearError) {
  const CommandResult bad_id = Sluice("tokenize -m " + model_ + " --decode -p '1 2 99999'");
  EXPECT_NE(bad_id.exit_code, 0);
  EXPECT_NE(bad_id.out.find("token id 99999 is outside the vocabulary (299 tokens"),
            std::string::npos)
      << bad_id.out;
  const CommandResult not_id = Sluice("tokenize -m " + model_ + " --decode -p '1 x2'");
  EXPECT_NE(not_id.exit_code, 0);
  EXPECT_NE(not_id.out.find("'x2' is not a token id"), std::string::npos) << not_id.out;
  const CommandResult no_text = Sluice("tokenize -m " + model_);
  EXPECT_NE(no_text.exit_code, 0);
  EXPECT_NE(no_text.out.find("exactly one of -p TEXT and -f FILE"), std::string::npos)
      << no_text.out;
  const CommandResult no_model = Sluice("tokenize -m /nonexistent/model.gguf -p hi");
  EXPECT_NE(no_model.exit_code, 0);
  EXPECT_NE(no_model.out.find("/nonexistent/model.gguf"), std::string::npos) << no_model.out;
}

}  // namespace
}  // namespace sluice
