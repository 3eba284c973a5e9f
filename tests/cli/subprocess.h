// Test helpers that run the built `sluice` binary as a user would: in pipes (RunSluice) or on a
// pseudo-terminal (PtyProcess), with deadlines so a hung child fails the test instead of hanging.
//
// Non-goals: a general process library; only what the CLI tests need.
// Thread-safety: none; one test thread per object.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace sluice::testing {

// Path of the built binary (SLUICE_BINARY_DIR "/cli/sluice").
std::string SluiceBinary();

struct ProcessResult {
  int exit_code = -1;  // exit status, or 128 + signal when killed
  bool timed_out = false;
  std::string out;  // everything written to stdout
  std::string err;  // everything written to stderr
};

// Runs `sluice args...` with `stdin_text` on its stdin (then closed), collecting stdout and
// stderr. Kills the child after `timeout`.
ProcessResult RunSluice(const std::vector<std::string>& args, const std::string& stdin_text = "",
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

// `sluice args...` on a pseudo-terminal: stdin, stdout and stderr are all the pty, as in a
// terminal emulator. Everything read is accumulated in output().
class PtyProcess {
 public:
  explicit PtyProcess(const std::vector<std::string>& args);
  ~PtyProcess();  // kills the child if still running
  PtyProcess(const PtyProcess&) = delete;
  PtyProcess& operator=(const PtyProcess&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  void Write(const std::string& bytes);
  // Reads until output() contains `needle` at or after byte `from`, or the deadline passes.
  // Returns the position just after the match, or std::string::npos on timeout or EOF.
  size_t WaitFor(const std::string& needle, size_t from, std::chrono::milliseconds timeout);
  // Reads until at least `bytes` more bytes than `from` are in output(); false on timeout/EOF.
  bool WaitForBytes(size_t from, size_t bytes, std::chrono::milliseconds timeout);
  // Waits until the terminal is in non-canonical mode (a line editor is reading keys). libedit
  // prints its prompt before it switches the terminal over, so keys sent right after the prompt
  // appears could still be handled by the terminal's own line discipline.
  bool WaitForLineEditor(std::chrono::milliseconds timeout);
  // Waits for exit (reading output meanwhile); the exit code or -1 on timeout (child killed).
  int WaitExit(std::chrono::milliseconds timeout);
  const std::string& output() const { return output_; }

 private:
  // Reads what is available within `budget`; false at EOF.
  bool Pump(std::chrono::milliseconds budget);

  pid_t pid_ = -1;
  int master_fd_ = -1;
  bool eof_ = false;
  int exit_code_ = -1;
  std::string output_;
};

}  // namespace sluice::testing
