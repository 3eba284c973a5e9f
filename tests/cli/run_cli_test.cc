// `sluice run` as users run it: in pipes, against reference outputs, and with bad input. Each
// test runs the built binary (tests/cli/subprocess.h) on a model written by the test
// (tests/support/test_model.h) or on ../shared/refdata.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/model_open.h"
#include "tests/cli/subprocess.h"
#include "tests/support/test_model.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace sluice::testing {
namespace {

class RunCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.File("test.gguf");
    Status written = WriteTestModel(model_);
    ASSERT_TRUE(written.ok()) << written.ToString();
  }

  // The run flags every test shares: one thread, greedy, the test model.
  std::vector<std::string> Run(std::vector<std::string> extra) {
    std::vector<std::string> args = {"run", "-m", model_, "--threads", "1", "--temp", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  TempDir dir_;
  std::string model_;
};

TEST_F(RunCliTest, PromptFromStdinInAPipe) {
  ProcessResult r = RunSluice(Run({"-p", "-", "-n", "8"}), "hello there\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_NE(r.err.find("[8 tokens, "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("stopped: token limit"), std::string::npos) << r.err;
  // stdin and -p TEXT are the same prompt (the trailing newline of echo is dropped): greedy
  // decoding must then give the same bytes.
  ProcessResult same = RunSluice(Run({"-p", "hello there", "-n", "8"}));
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_EQ(same.out, r.out);
  // Greedy with fewer tokens is a prefix of greedy with more.
  ProcessResult shorter = RunSluice(Run({"-p", "hello there", "-n", "3"}));
  ASSERT_EQ(shorter.exit_code, 0) << shorter.err;
  std::string prefix = shorter.out.substr(0, shorter.out.size() - 1);
  EXPECT_EQ(r.out.compare(0, prefix.size(), prefix), 0) << shorter.out << " vs " << r.out;
  EXPECT_LT(prefix.size(), r.out.size() - 1);
}

// End to end against the outside implementation: the refdata tiny model, prompt ids 1..32, greedy.
TEST(RunReference, RawGreedyMatchesTheReferenceTokens) {
  std::string dir = SLUICE_REFDATA_DIR;
  std::string model = dir + "/tiny-qwen3moe-f32.gguf";
  std::ifstream greedy(dir + "/logits/tiny-qwen3moe-f32.greedy.txt");
  if (!std::ifstream(model).good() || !greedy.good()) {
    GTEST_SKIP() << "refdata absent: " << model;
  }
  std::vector<int32_t> generated;
  for (std::string line; std::getline(greedy, line);) {
    if (line.rfind("generated:", 0) != 0) continue;
    std::istringstream ids(line.substr(10));
    for (int32_t id; ids >> id;) generated.push_back(id);
  }
  ASSERT_EQ(generated.size(), 16u);
  Result<std::unique_ptr<ModelFile>> file = OpenModelFile(model);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromMetadata((*file)->metadata());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status().ToString();
  std::vector<int32_t> prompt_ids;
  for (int32_t id = 1; id <= 32; ++id) prompt_ids.push_back(id);
  std::string prompt = (*tokenizer)->Decode(prompt_ids);
  ASSERT_EQ((*tokenizer)->Encode(prompt), prompt_ids) << "the prompt must tokenize back to 1..32";
  // The reference does not stop at end of text; sluice does, so compare up to the first one.
  size_t stop = 0;
  while (stop < generated.size() && !(*tokenizer)->IsEndOfGeneration(generated[stop])) ++stop;
  generated.resize(stop);
  ProcessResult r = RunSluice({"run", "-m", model, "--raw", "-p", prompt, "-n", "16", "--temp", "0",
                               "--threads", "1", "--kv-type", "f32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The ids are compared through the text: a stream decoder (as the CLI uses) turns them into
  // the bytes expected on stdout, with U+FFFD where a byte token cannot form a character.
  StreamDecoder decoder(**tokenizer);
  std::string expected;
  for (int32_t id : generated) expected += decoder.Push(id);
  expected += decoder.Flush();
  EXPECT_EQ(r.out, expected + "\n") << r.err;
}

TEST_F(RunCliTest, FewerExpertsPerTokenWarns) {
  ProcessResult r = RunSluice(Run({"-p", "hi", "-n", "4", "--experts", "1"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("1 experts per token instead of the model's 2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("faster, and the output changes"), std::string::npos) << r.err;
  // More than the model's: slower, not "faster" (issue 16).
  ProcessResult more = RunSluice(Run({"-p", "hi", "-n", "4", "--experts", "4"}));
  ASSERT_EQ(more.exit_code, 0) << more.err;
  EXPECT_NE(more.err.find("slower (more reads), and the output changes"), std::string::npos)
      << more.err;
  ProcessResult two = RunSluice(Run({"-p", "hi", "-n", "4", "--experts", "2"}));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(two.err.find("experts per token instead"), std::string::npos) << two.err;
}

// No -m: the demo model at $SLUICE_DEMO_DIR/demo.sluice, announced on stderr. The test puts its
// own small model there (opened by magic, whatever the name), so no synth run is needed.
TEST_F(RunCliTest, NoModelUsesTheDemoModelAndSaysSo) {
  std::filesystem::copy_file(model_, dir_.File("demo.sluice"));
  setenv("SLUICE_DEMO_DIR", dir_.path().c_str(), 1);
  ProcessResult r = RunSluice({"run", "-p", "hi", "-n", "3", "--threads", "1"});
  unsetenv("SLUICE_DEMO_DIR");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("synthetic demo model " + dir_.File("demo.sluice")), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("[3 tokens, "), std::string::npos) << r.err;
}

TEST_F(RunCliTest, MissingModel) {
  ProcessResult r = RunSluice({"run", "-m", dir_.File("nope.gguf"), "-p", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("sluice: error: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(dir_.File("nope.gguf")), std::string::npos) << r.err;
}

TEST_F(RunCliTest, NotAModel) {
  std::string path = dir_.File("notes.txt");
  std::ofstream(path) << "these are not weights\n";
  ProcessResult r = RunSluice({"run", "-m", path, "-p", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(path), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(RunCliTest, UnknownFlag) {
  ProcessResult r = RunSluice(Run({"-p", "hi", "--no-such-flag", "3"}));
  EXPECT_NE(r.exit_code, 0);
  // Named as the user wrote it, with the command and where to look.
  EXPECT_NE(r.err.find("unknown flag '--no-such-flag' for `sluice run` (see `sluice run --help`)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.out, "");
  // A flag's value that looks like a flag is a value, and --noBOOL negates a boolean.
  ProcessResult value = RunSluice(Run({"-p", "--not-a-flag", "-n", "2", "--noraw"}));
  EXPECT_EQ(value.exit_code, 0) << value.err;
  // ... and is kept as typed (not normalised like a flag name): the same reply as with = .
  // ("--prompt=V" never touches V).
  ProcessResult same = RunSluice(Run({"--prompt=--not-a-flag", "-n", "2", "--noraw"}));
  EXPECT_EQ(value.out, same.out);
}

TEST_F(RunCliTest, RamBudgetBelowTheDenseWeights) {
  ProcessResult r = RunSluice(Run({"-p", "hi", "--ram", "64K"}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--ram"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("needs"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(RunCliTest, PromptLongerThanTheContext) {
  std::string small = dir_.File("ctx64.gguf");
  ASSERT_TRUE(WriteTestModel(small, {.context_length = 64}).ok());
  std::string prompt;
  for (int i = 0; i < 100; ++i) prompt += "word ";
  ProcessResult r = RunSluice({"run", "-m", small, "-p", "-", "--threads", "1"}, prompt);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("the context holds 64"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(RunCliTest, NoPrompt) {
  ProcessResult none = RunSluice(Run({}));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_NE(none.err.find("no prompt"), std::string::npos) << none.err;
  ProcessResult empty_stdin = RunSluice(Run({"-p", "-"}), "");
  EXPECT_EQ(empty_stdin.exit_code, 1);
  EXPECT_NE(empty_stdin.err.find("empty"), std::string::npos) << empty_stdin.err;
}

}  // namespace
}  // namespace sluice::testing

namespace sluice::testing {
namespace {

// Status lines say what the run does (issue 16): the context in use, nothing on --quiet.
class RunStatusLines : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(WriteTestModel(model_).ok()); }
  TempDir dir_;
  std::string model_ = dir_.File("m.gguf");
};

TEST_F(RunStatusLines, TheBannerShowsTheContextInUse) {
  ProcessResult r = RunSluice({"run", "-m", model_, "--threads", "1", "--temp", "0", "-p", "hi",
                               "-n", "2", "--ctx", "128"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("running with a context of 128"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("trained ctx 4096"), std::string::npos) << r.err;
}

TEST_F(RunStatusLines, QuietPrintsOnlyTheReply) {
  ProcessResult r = RunSluice(
      {"run", "-m", model_, "--threads", "1", "--temp", "0", "-p", "hi", "-n", "2", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_FALSE(r.out.empty());
}

}  // namespace
}  // namespace sluice::testing

namespace sluice::testing {
namespace {

// A replayed trace that runs out stops the run with an error naming the trace and the token, as
// docs/routing-trace.md says (issue 16: it went on with the model's router).
TEST(RunTraceReplay, ATraceThatRunsOutStopsTheRun) {
  TempDir dir;
  const std::string model = dir.File("m.gguf"), trace = dir.File("t.trace");
  ASSERT_TRUE(WriteTestModel(model).ok());
  const std::vector<std::string> base = {"run",    "-m", model, "--threads", "1",
                                         "--temp", "0",  "-p",  "hello"};
  std::vector<std::string> record = base;
  record.insert(record.end(), {"-n", "6", "--record-trace", trace});
  ProcessResult r = RunSluice(record);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> replay = base;
  replay.insert(replay.end(), {"-n", "40", "--routing", "trace:" + trace});
  ProcessResult p = RunSluice(replay);
  EXPECT_EQ(p.exit_code, 1) << p.err;
  EXPECT_NE(p.err.find(trace + ": routing trace ended"), std::string::npos) << p.err;
  EXPECT_NE(p.err.find("the run stops here"), std::string::npos) << p.err;
  // The cycling replay runs the whole length.
  replay.back() += ",cycle";
  ProcessResult c = RunSluice(replay);
  EXPECT_EQ(c.exit_code, 0) << c.err;
}

}  // namespace
}  // namespace sluice::testing
