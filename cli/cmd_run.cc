// `sluice run`: one prompt, one streamed reply on stdout, then the stats on stderr. The prompt
// goes through the chat template unless --raw; `-p -` reads it from stdin so the command works in
// pipes. Ctrl-C stops the reply; the stats still print and the exit code is 130.
#include <gflags/gflags.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "chat/chat_session.h"
#include "cli/chat_setup.h"
#include "cli/command.h"
#include "cli/interrupt.h"

DECLARE_string(prompt);
DECLARE_string(file);
DECLARE_bool(raw);

DECLARE_bool(quiet);

namespace sluice::cli {
namespace {

void WriteOut(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// The prompt from -p TEXT, -p - (all of stdin) or -f FILE. One trailing newline is dropped, so
// `echo hello | sluice run -p -` asks "hello", not "hello\n".
Result<std::string> ReadPrompt() {
  if (!FLAGS_prompt.empty() && !FLAGS_file.empty()) {
    return InvalidArgument("give the prompt with -p or -f, not both");
  }
  std::string prompt;
  if (FLAGS_prompt == "-" || FLAGS_file == "-") {
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (std::cin.bad()) return IoError("reading the prompt from stdin failed");
  } else if (!FLAGS_file.empty()) {
    std::ifstream in(FLAGS_file, std::ios::binary);
    if (!in) return NotFound("cannot open the prompt file ", FLAGS_file);
    std::ostringstream text;
    text << in.rdbuf();
    prompt = text.str();
  } else {
    prompt = FLAGS_prompt;
  }
  if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
  if (!prompt.empty() && prompt.back() == '\r') prompt.pop_back();
  if (prompt.empty()) {
    bool from_stdin = FLAGS_prompt == "-" || FLAGS_file == "-";
    return InvalidArgument(from_stdin ? "the prompt read from stdin is empty"
                                      : "no prompt: give -p TEXT, -p - (stdin) or -f FILE");
  }
  return prompt;
}

int RunRun(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("run takes no arguments (got '" + args[0] + "'); use -p");
  Result<std::string> prompt = ReadPrompt();
  if (!prompt.ok()) return Fail(prompt.status().message());
  InstallInterruptHandler();
  Result<GenerationSetup> setup = SetUpGeneration({.need_chat_template = !FLAGS_raw});
  if (!setup.ok()) return Fail(setup.status().message());
  ChatSession session(setup->token_engine.get(), setup->tokenizer.get(), setup->chat_template.get(),
                      setup->session_options);
  std::atomic<bool> cancel{false};
  Result<ReplyStats> stats = [&] {
    ScopedCancelTarget target(&cancel);
    return FLAGS_raw ? session.Complete(*prompt, WriteOut, &cancel)
                     : session.Reply(*prompt, WriteOut, &cancel);
  }();
  if (!stats.ok()) return Fail(stats.status().message());
  WriteOut("\n");
  if (!FLAGS_quiet) std::fprintf(stderr, "[%s]\n", FormatReplyStats(*stats).c_str());
  if (Status s = setup->Finish(); !s.ok()) return Fail(s.message());
  return stats->stop == StopReason::kCancelled ? 130 : 0;
}

const CommandRegistration kRun({
    .name = "run",
    .summary = "generate a reply to one prompt, streamed to stdout (stats on stderr)",
    .usage = "sluice run [-m MODEL] (-p PROMPT | -p - | -f FILE) [-n N] [--raw] [--ram 12G]",
    .description =
        "One-shot generation. The prompt is rendered with the model's chat template (one user\n"
        "turn) unless --raw; `-p -` reads it from stdin. The reply streams to stdout, then one\n"
        "line of stats goes to stderr. --experts K routes K experts per token instead of the\n"
        "model's default (faster; the output quality changes). With no -m the synthetic demo\n"
        "model is used (random weights: gibberish by design).",
    .flags = GenerationFlags({"prompt", "file", "raw", "system", "chat_template",
                              "chat_template_file", "no_think"}),
    .run = RunRun,
});

}  // namespace
}  // namespace sluice::cli
