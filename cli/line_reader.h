// LineReader: the input side of `sluice chat`. On a terminal it edits lines with libedit (emacs
// keys, arrow-key history of this session's lines); when stdin is a pipe or a file it reads plain
// lines with read(2), with no prompt and no terminal control, so
// `printf 'hello\n/quit\n' | sluice chat` and the tests work.
//
// Ctrl-C at the prompt: the process's SIGINT handler (cli/interrupt.h, installed by the caller)
// interrupts the blocked read; Read() then returns kInterrupted with the partly typed line,
// which is discarded.
// Whether that exits (a second Ctrl-C on an empty prompt) is the caller's policy.
//
// Non-goals: completion, multi-line editing, history saved across runs.
// Thread-safety: one thread.
#pragma once

#include <memory>
#include <string>

namespace sluice::cli {

enum class LineStatus {
  kLine,         // `text` holds one line without its newline
  kEof,          // Ctrl-D on an empty line, or end of the piped input
  kInterrupted,  // Ctrl-C while reading; `text` holds what was typed so far (now discarded)
};

struct LineInput {
  LineStatus status = LineStatus::kEof;
  std::string text;
};

class LineReader {
 public:
  virtual ~LineReader() = default;
  // `prompt` is shown only on a terminal.
  virtual LineInput Read(const std::string& prompt) = 0;
  virtual bool interactive() const = 0;
};

// A libedit reader when stdin and stdout are terminals, the plain reader otherwise.
std::unique_ptr<LineReader> CreateStdinLineReader();

// The plain reader over any file descriptor (not owned). Used for pipes and by tests.
std::unique_ptr<LineReader> CreatePlainLineReader(int fd);

}  // namespace sluice::cli
