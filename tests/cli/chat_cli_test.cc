// `sluice chat` on a pseudo-terminal (typing, streamed output, Ctrl-C,
// /commands, exit codes) and in a pipe. The test model's replies never end on
// their own (tests/support/test_model.h), so a reply without -n runs until it is
// cancelled or fills the 4096-token context.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/cli/subprocess.h"
#include "tests/support/test_model.h"

namespace sluice::testing {
namespace {

using std::chrono::seconds;
constexpr size_t npos = std::string::npos;

class ChatCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.File("test.gguf");
    Status written = WriteTestModel(model_);
    ASSERT_TRUE(written.ok()) << written.ToString();
  }

  std::vector<std::string> Chat(std::vector<std::string> extra) {
    std::vector<std::string> args = {"chat", "-m", model_, "--threads", "1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // Waits for the next prompt after output position `from` and for the line
  // editor to take the terminal, then types `keys`. Returns the position after
  // that prompt (npos on timeout).
  static size_t TypeAtPrompt(PtyProcess& chat, size_t from, const std::string& keys) {
    size_t prompt = chat.WaitFor("> ", from, seconds(30));
    if (prompt == npos || !chat.WaitForLineEditor(seconds(10))) return npos;
    chat.Write(keys);
    return prompt;
  }

  TempDir dir_;
  std::string model_;
};

TEST_F(ChatCliTest, CtrlCStopsTheReplyAndThePromptComesBack) {
  PtyProcess chat(Chat({}));
  ASSERT_TRUE(chat.started());
  size_t at = TypeAtPrompt(chat, 0, "hello\r");
  ASSERT_NE(at, npos) << chat.output();
  size_t reply_start = chat.WaitFor("hello\r\n", at, seconds(10));
  ASSERT_NE(reply_start, npos) << chat.output();
  // Streamed: reply text arrives while the reply is still being generated.
  ASSERT_TRUE(chat.WaitForBytes(reply_start, 8, seconds(30))) << chat.output();
  chat.Write("\x03");
  size_t stopped = chat.WaitFor("stopped: cancelled", reply_start, seconds(30));
  ASSERT_NE(stopped, npos) << chat.output();
  size_t prompt_again = chat.WaitFor("> ", stopped, seconds(10));
  ASSERT_NE(prompt_again, npos) << chat.output();
  // The reply stopped long before the 4096-token context would have ended it.
  std::string stats = chat.output().substr(reply_start, stopped - reply_start);
  size_t bracket = stats.rfind('[');
  ASSERT_NE(bracket, npos) << stats;
  int tokens = std::stoi(stats.substr(bracket + 1));
  EXPECT_GE(tokens, 1);
  // Nothing more was generated after the stop: the session's totals hold exactly that reply.
  ASSERT_NE(TypeAtPrompt(chat, stopped, "/stats\r"), npos) << chat.output();
  EXPECT_NE(
      chat.WaitFor("generated: " + std::to_string(tokens) + " tokens", prompt_again, seconds(10)),
      npos)
      << chat.output().substr(prompt_again);
  EXPECT_LT(tokens, 4000);
  ASSERT_TRUE(chat.WaitForLineEditor(seconds(10)));
  chat.Write("/quit\r");
  EXPECT_EQ(chat.WaitExit(seconds(10)), 0) << chat.output();
}

TEST_F(ChatCliTest, TurnsStatsResetAndCtrlD) {
  PtyProcess chat(Chat({"-n", "5"}));
  ASSERT_NE(TypeAtPrompt(chat, 0, "first\r"), npos) << chat.output();
  size_t first = chat.WaitFor("[5 tokens, ", 0, seconds(30));
  ASSERT_NE(first, npos) << chat.output();
  ASSERT_NE(TypeAtPrompt(chat, first, "second\r"), npos) << chat.output();
  size_t second = chat.WaitFor("[5 tokens, ", first, seconds(30));
  ASSERT_NE(second, npos) << chat.output();
  ASSERT_NE(TypeAtPrompt(chat, second, "/stats\r"), npos) << chat.output();
  size_t stats = chat.WaitFor("replies: 2", second, seconds(10));
  ASSERT_NE(stats, npos) << chat.output();
  size_t generated = chat.WaitFor("generated: 10 tokens", second, seconds(10));
  ASSERT_NE(generated, npos) << chat.output();
  ASSERT_NE(TypeAtPrompt(chat, generated, "/reset\r"), npos) << chat.output();
  size_t cleared = chat.WaitFor("(conversation cleared)", generated, seconds(10));
  ASSERT_NE(cleared, npos) << chat.output();
  ASSERT_NE(TypeAtPrompt(chat, cleared, "/stats\r"), npos) << chat.output();
  size_t empty = chat.WaitFor("context: 0 of 4096", cleared, seconds(10));
  ASSERT_NE(empty, npos) << chat.output();
  ASSERT_NE(TypeAtPrompt(chat, empty, "/nonsense\r"), npos) << chat.output();
  size_t unknown = chat.WaitFor("unknown command /nonsense", empty, seconds(10));
  ASSERT_NE(unknown, npos) << chat.output();
  ASSERT_NE(TypeAtPrompt(chat, unknown, "\x04"),
            npos);  // Ctrl-D on an empty line
  EXPECT_EQ(chat.WaitExit(seconds(10)), 0) << chat.output();
}

TEST_F(ChatCliTest, CtrlCAtThePromptClearsTheLineThenExitsOnASecond) {
  PtyProcess chat(Chat({"-n", "2"}));
  size_t at = TypeAtPrompt(chat, 0, "half typed");
  ASSERT_NE(at, npos) << chat.output();
  ASSERT_NE(chat.WaitFor("half typed", at, seconds(10)), npos);
  chat.Write("\x03");                               // clears the line, stays
  size_t cleared = TypeAtPrompt(chat, at, "\x03");  // empty line: asks
  ASSERT_NE(cleared, npos) << chat.output();
  size_t asked = chat.WaitFor("Ctrl-C again", cleared, seconds(10));
  ASSERT_NE(asked, npos) << chat.output();
  // Asked once only: the first Ctrl-C, on a typed line, did not ask.
  EXPECT_EQ(chat.output().find("Ctrl-C again"), asked - std::string("Ctrl-C again").size());
  ASSERT_NE(TypeAtPrompt(chat, asked, "\x03"),
            npos);  // second on an empty line: exits
  EXPECT_EQ(chat.WaitExit(seconds(10)), 0) << chat.output();
  // The half-typed line was never sent as a turn.
  EXPECT_EQ(chat.output().find("[2 tokens"), npos) << chat.output();
}

TEST_F(ChatCliTest, PipedInputOneTurnPerLine) {
  ProcessResult r = RunSluice(Chat({"-n", "4", "--temp", "0"}), "hi\nsecond\n/stats\n/quit\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // No prompt in a pipe; two replies, each followed by a stats line on stderr.
  EXPECT_EQ(r.out.find("> "), npos) << r.out;
  EXPECT_NE(r.out.find("replies: 2"), npos) << r.out;
  size_t first = r.err.find("[4 tokens, ");
  ASSERT_NE(first, npos) << r.err;
  EXPECT_NE(r.err.find("[4 tokens, ", first + 1), npos) << r.err;
  // End of input exits too, with the same replies (greedy).
  ProcessResult eof = RunSluice(Chat({"-n", "4", "--temp", "0"}), "hi\nsecond\n/stats\n");
  ASSERT_EQ(eof.exit_code, 0) << eof.err;
  // Compare the replies, not /stats (its rates are timings).
  EXPECT_EQ(eof.out.substr(0, eof.out.find("replies:")), r.out.substr(0, r.out.find("replies:")));
}

TEST_F(ChatCliTest, ConversationOutgrowingTheContextIsAnErrorNotAnExit) {
  std::string small = dir_.File("ctx64.gguf");
  ASSERT_TRUE(WriteTestModel(small, {.context_length = 64}).ok());
  std::string long_line;
  for (int i = 0; i < 60; ++i) long_line += "word ";
  ProcessResult r =
      RunSluice({"chat", "-m", small, "-n", "3", "--threads", "1"}, long_line + "\nhi\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("the context holds 64"), npos) << r.err;
  EXPECT_NE(r.err.find("[3 tokens, "), npos) << r.err;  // the next, short turn still works
}

}  // namespace
}  // namespace sluice::testing
