// `sluice chat`: a REPL over one ChatSession. Replies stream to stdout as tokens are made; after
// each reply one line of stats goes to stderr (dimmed on a terminal), so stdout carries only the
// conversation and `sluice chat < questions.txt > answers.txt` keeps the two apart.
//
// Keys: Ctrl-C stops the current reply (not the program); at the prompt it clears the line, and a
// second Ctrl-C on an empty prompt exits, as does Ctrl-D or /quit.
#include <gflags/gflags.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "chat/chat_session.h"
#include "cli/chat_setup.h"
#include "cli/command.h"
#include "cli/interrupt.h"
#include "cli/line_reader.h"
#include "core/base/str_cat.h"

DECLARE_bool(quiet);

namespace sluice::cli {
namespace {

constexpr const char* kHelpText =
    "/stats   totals of this session: tokens, tok/s, expert hit rate, bytes read\n"
    "/reset   forget the conversation and empty the KV cache\n"
    "/quit    exit (also /exit, Ctrl-D, or Ctrl-C twice on an empty prompt)\n"
    "/help    this list\n"
    "Ctrl-C during a reply stops it; the part already written stays in the conversation.\n";

void WriteOut(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

// One line on stderr, dimmed (SGR 2) when stderr is a terminal.
void WriteStatsLine(const std::string& line) {
  if (FLAGS_quiet) return;  // --quiet: the reply only (/stats still answers when asked)
  bool tty = isatty(STDERR_FILENO);
  std::fprintf(stderr, "%s[%s]%s\n", tty ? "\x1b[2m" : "", line.c_str(), tty ? "\x1b[0m" : "");
  std::fflush(stderr);
}

std::string StatsCommandText(const ChatSession& session, const GenerationSetup& setup) {
  return FormatSessionTotals(session.totals()) +
         StrCat("context: ", session.kv_length(), " of ", session.context_length(),
                " tokens in the KV cache\n", setup.DescribeMemory(), "\n");
}

// Returns false when the REPL should exit with an error (an engine failure, not bad input).
bool RunTurn(ChatSession& session, const std::string& line) {
  std::atomic<bool> cancel{false};
  Result<ReplyStats> stats = [&] {
    ScopedCancelTarget target(&cancel);
    return session.Reply(line, WriteOut, &cancel);
  }();
  if (!stats.ok()) {
    std::fprintf(stderr, "sluice: error: %s\n", stats.status().message().c_str());
    // A conversation that outgrew the context is the user's to fix (/reset); anything else
    // (a failed read, a corrupt expert) would repeat on every turn.
    return stats.status().code() == StatusCode::kInvalidArgument;
  }
  WriteOut("\n");
  WriteStatsLine(FormatReplyStats(*stats));
  if (stats->stop == StopReason::kContextFull) {
    std::fprintf(stderr, "(the context is full: /reset starts a new conversation)\n");
  }
  return true;
}

// The REPL; returns the exit code.
int Converse(ChatSession& session, const GenerationSetup& setup) {
  std::unique_ptr<LineReader> reader = CreateStdinLineReader();
  if (reader->interactive()) {
    std::fprintf(stderr,
                 "Chatting with %s. /help lists commands; Ctrl-C stops a reply, Ctrl-D exits.\n",
                 setup.model_name.c_str());
  }
  bool last_was_interrupt = false;
  for (;;) {
    LineInput input = reader->Read("> ");
    if (input.status == LineStatus::kEof) return 0;
    if (input.status == LineStatus::kInterrupted) {
      // Ctrl-C on a typed line just clears it; on an empty prompt it asks once, then exits.
      if (!input.text.empty()) {
        last_was_interrupt = false;
        continue;
      }
      if (last_was_interrupt || !reader->interactive()) return 0;
      std::fprintf(stderr, "(Ctrl-C again or Ctrl-D to exit)\n");
      last_was_interrupt = true;
      continue;
    }
    last_was_interrupt = false;
    const std::string& line = input.text;
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    if (line == "/quit" || line == "/exit") return 0;
    if (line == "/help") {
      WriteOut(kHelpText);
    } else if (line == "/stats") {
      WriteOut(StatsCommandText(session, setup));
    } else if (line == "/reset") {
      if (Status s = session.Reset(); !s.ok()) return Fail(s.message());
      WriteOut("(conversation cleared)\n");
    } else if (line[0] == '/' && line.find(' ') == std::string::npos) {
      std::fprintf(stderr, "unknown command %s (/help lists them)\n", line.c_str());
    } else if (!RunTurn(session, line)) {
      return 1;
    }
  }
}

int RunChat(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("chat takes no arguments (got '" + args[0] + "')");
  InstallInterruptHandler();
  Result<GenerationSetup> setup = SetUpGeneration({.need_chat_template = true});
  if (!setup.ok()) return Fail(setup.status().message());
  ChatSession session(setup->token_engine.get(), setup->tokenizer.get(), setup->chat_template.get(),
                      setup->session_options);
  int code = Converse(session, *setup);
  if (Status s = setup->Finish(); !s.ok()) return Fail(s.message());
  return code;
}

const CommandRegistration kChat({
    .name = "chat",
    .summary = "chat with a model in the terminal (streams tokens; /stats /reset /quit)",
    .usage = "sluice chat [-m MODEL] [--ram 12G] [--threads N] [--experts K] [--temp T]\n"
             "            [--system TEXT] [--chat-template NAME | --chat-template-file FILE] "
             "[--no-think]",
    .description =
        "A multi-turn chat: the KV cache is kept between turns, so each turn prefills only its\n"
        "own tokens. Replies stream to stdout; one line of stats per reply goes to stderr\n"
        "(tokens, tok/s, time to first token, expert hit rate, GB read, MB/s). Ctrl-C stops a\n"
        "reply; Ctrl-D, /quit or Ctrl-C twice on an empty prompt exits. With stdin not a\n"
        "terminal, lines are read plainly (one turn per line), without a prompt.\n"
        "--experts K routes K experts per token instead of the model's default: fewer bytes\n"
        "read per token, and a warning that the output quality changes.\n"
        "With no -m the synthetic demo model is used (random weights: gibberish by design).",
    .flags = GenerationFlags({"system", "chat_template", "chat_template_file", "no_think",
                              "show_reasoning"}),
    .run = RunChat,
});

}  // namespace
}  // namespace sluice::cli
