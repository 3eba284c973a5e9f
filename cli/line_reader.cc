#include "cli/line_reader.h"

#include <errno.h>
#include <histedit.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "cli/interrupt.h"

namespace sluice::cli {
namespace {

// Reads lines from a descriptor with read(2) into its own buffer. stdio is avoided because a
// FILE that saw EINTR keeps its error flag and its buffer in states that differ between libcs.
class PlainLineReader : public LineReader {
 public:
  explicit PlainLineReader(int fd) : fd_(fd) {}

  LineInput Read(const std::string& prompt) override {
    (void)prompt;  // no prompt in pipes: the output stays exactly the replies
    LineInput input;
    for (;;) {
      size_t newline = buffer_.find('\n');
      if (newline != std::string::npos) {
        input.status = LineStatus::kLine;
        input.text = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        if (!input.text.empty() && input.text.back() == '\r') input.text.pop_back();
        return input;
      }
      if (eof_) {
        if (buffer_.empty()) return input;  // kEof
        input.status = LineStatus::kLine;   // a last line without its newline
        input.text.swap(buffer_);
        return input;
      }
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
      } else if (errno == EINTR) {
        input.status = LineStatus::kInterrupted;
        input.text.swap(buffer_);
        return input;
      } else {
        eof_ = true;  // an unreadable stdin ends the conversation like EOF does
      }
    }
  }

  bool interactive() const override { return false; }

 private:
  int fd_;
  std::string buffer_;
  bool eof_ = false;
};

// libedit with in-memory history. libedit's own signal handling (EL_SIGNAL) restores the terminal
// mode before our SIGINT handler runs and re-arms afterwards; with EL_SAFEREAD off, the interrupted
// read makes el_gets return NULL with count -1, which Read() tells apart from Ctrl-D (count 0) and
// confirms with the interrupt counter.
class EditLineReader : public LineReader {
 public:
  EditLineReader() {
    editline_ = el_init("sluice", stdin, stdout, stderr);
    history_ = history_init();
    HistEvent event;
    history(history_, &event, H_SETSIZE, 1000);
    history(history_, &event, H_SETUNIQUE, 1);
    el_set(editline_, EL_EDITOR, "emacs");
    el_set(editline_, EL_SIGNAL, 1);
    el_set(editline_, EL_SAFEREAD, 0);
    el_set(editline_, EL_HIST, history, history_);
    el_set(editline_, EL_CLIENTDATA, this);
    el_set(editline_, EL_PROMPT, &EditLineReader::PromptOf);
    el_source(editline_, nullptr);  // the user's ~/.editrc, if any
  }

  ~EditLineReader() override {
    el_end(editline_);
    history_end(history_);
  }

  LineInput Read(const std::string& prompt) override {
    prompt_ = prompt;
    uint64_t interrupts_before = InterruptCount();
    int count = 0;
    const char* line = el_gets(editline_, &count);
    LineInput input;
    if (line == nullptr || count <= 0) {
      bool interrupted = InterruptCount() != interrupts_before || (count < 0 && errno == EINTR);
      if (interrupted) {
        input.status = LineStatus::kInterrupted;
        // el_gets leaves the edit buffer as it was until the next call resets it.
        const LineInfo* info = el_line(editline_);
        if (info != nullptr && info->lastchar > info->buffer) {
          input.text.assign(info->buffer, static_cast<size_t>(info->lastchar - info->buffer));
        }
        std::fputs("\n", stdout);  // leave the ^C the terminal echoed on its own line
        std::fflush(stdout);
        return input;
      }
      std::fputs("\n", stdout);
      std::fflush(stdout);
      return input;  // kEof
    }
    input.status = LineStatus::kLine;
    input.text.assign(line, static_cast<size_t>(count));
    while (!input.text.empty() && (input.text.back() == '\n' || input.text.back() == '\r')) {
      input.text.pop_back();
    }
    if (!input.text.empty()) {
      HistEvent event;
      history(history_, &event, H_ENTER, input.text.c_str());
    }
    return input;
  }

  bool interactive() const override { return true; }

 private:
  static char* PromptOf(EditLine* editline) {
    void* self = nullptr;
    el_get(editline, EL_CLIENTDATA, &self);
    return const_cast<char*>(static_cast<EditLineReader*>(self)->prompt_.c_str());
  }

  EditLine* editline_ = nullptr;
  History* history_ = nullptr;
  std::string prompt_;
};

}  // namespace

std::unique_ptr<LineReader> CreateStdinLineReader() {
  if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) return std::make_unique<EditLineReader>();
  return CreatePlainLineReader(STDIN_FILENO);
}

std::unique_ptr<LineReader> CreatePlainLineReader(int fd) {
  return std::make_unique<PlainLineReader>(fd);
}

}  // namespace sluice::cli
