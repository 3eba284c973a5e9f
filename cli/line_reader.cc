#include "cli/line_reader.h"

#include <errno.h>
#include <histedit.h>
#include <langinfo.h>
#include <poll.h>
#include <unistd.h>

#include <clocale>
#include <cstdio>
#include <cstring>

#include "cli/interrupt.h"

namespace sluice::cli {
namespace {

enum class WaitResult { kReadable, kInterrupted };

// Waits until `fd` has input or a SIGINT newer than `interrupts_before` arrived, whichever thread
// the signal was delivered to (cli/interrupt.h's wake-up pipe). Read errors are left to read().
WaitResult WaitForInput(int fd, uint64_t interrupts_before) {
  for (;;) {
    if (InterruptCount() != interrupts_before) return WaitResult::kInterrupted;
    pollfd fds[2] = {{fd, POLLIN, 0}, {InterruptWakeFd(), POLLIN, 0}};
    int ready = poll(fds, InterruptWakeFd() >= 0 ? 2 : 1, -1);
    if (ready < 0 && errno != EINTR) return WaitResult::kReadable;
    if (ready > 0 && fds[1].revents != 0) DrainInterruptWakeFd();
    if (InterruptCount() != interrupts_before) return WaitResult::kInterrupted;
    if (ready > 0 && fds[0].revents != 0) return WaitResult::kReadable;
  }
}

// Reads lines from a descriptor with read(2) into its own buffer. stdio is avoided because a
// FILE that saw EINTR keeps its error flag and its buffer in states that differ between libcs.
class PlainLineReader : public LineReader {
 public:
  explicit PlainLineReader(int fd) : fd_(fd) {}

  LineInput Read(const std::string& prompt) override {
    (void)prompt;  // no prompt in pipes: the output stays exactly the replies
    uint64_t interrupts_before = InterruptCount();
    DrainInterruptWakeFd();
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
      if (WaitForInput(fd_, interrupts_before) == WaitResult::kInterrupted) {
        input.status = LineStatus::kInterrupted;
        input.text.swap(buffer_);
        return input;
      }
      char chunk[4096];
      ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n > 0) {
        buffer_.append(chunk, static_cast<size_t>(n));
      } else if (n == 0) {
        eof_ = true;
      } else if (errno == EINTR || errno == EAGAIN) {
        continue;  // WaitForInput decides whether it was a Ctrl-C
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

// libedit with in-memory history. Characters come through our own read function (EL_GETCFN), which
// waits with WaitForInput, so a Ctrl-C makes el_gets return NULL (count -1) no matter which
// thread took the signal or whether libedit was between two reads at the time. libedit's own
// signal handling stays off: it re-sends SIGINT to the whole process group.
class EditLineReader : public LineReader {
 public:
  EditLineReader() {
    // libedit converts between the terminal's bytes and wide characters with the C library's
    // locale functions: without a UTF-8 LC_CTYPE, typed non-ASCII text would come back mangled.
    std::setlocale(LC_CTYPE, "");
    if (std::strcmp(nl_langinfo(CODESET), "UTF-8") != 0) std::setlocale(LC_CTYPE, "C.UTF-8");
    editline_ = el_init("sluice", stdin, stdout, stderr);
    history_ = history_init();
    HistEvent event;
    history(history_, &event, H_SETSIZE, 1000);
    history(history_, &event, H_SETUNIQUE, 1);
    el_set(editline_, EL_EDITOR, "emacs");
    el_set(editline_, EL_SIGNAL, 0);
    el_set(editline_, EL_GETCFN, &EditLineReader::GetChar);
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
    interrupts_before_ = InterruptCount();
    DrainInterruptWakeFd();
    int count = 0;
    const char* line = el_gets(editline_, &count);
    LineInput input;
    if (line == nullptr || count <= 0) {
      if (InterruptCount() != interrupts_before_) {
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
  // One character from stdin as a wide character: 1, or 0 at end of input, or -1 with errno
  // EINTR on Ctrl-C. Bytes that are not UTF-8 come through as U+FFFD.
  static int GetChar(EditLine* editline, wchar_t* out) {
    void* data = nullptr;
    el_get(editline, EL_CLIENTDATA, &data);
    auto* self = static_cast<EditLineReader*>(data);
    unsigned char bytes[4];
    size_t have = 0, need = 1;
    while (have < need) {
      if (WaitForInput(STDIN_FILENO, self->interrupts_before_) == WaitResult::kInterrupted) {
        errno = EINTR;
        return -1;
      }
      ssize_t n = ::read(STDIN_FILENO, bytes + have, 1);
      if (n == 0) return 0;
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return -1;
      }
      if (have == 0) {
        unsigned char lead = bytes[0];
        need = lead < 0x80           ? 1
               : (lead >> 5) == 0x6  ? 2
               : (lead >> 4) == 0xE  ? 3
               : (lead >> 3) == 0x1E ? 4
                                     : 1;
      } else if ((bytes[have] & 0xC0) != 0x80) {
        *out = 0xFFFD;  // a broken sequence; the byte that broke it is dropped too
        return 1;
      }
      ++have;
    }
    if (need == 1) {
      *out = bytes[0] < 0x80 ? static_cast<wchar_t>(bytes[0]) : 0xFFFD;
      return 1;
    }
    uint32_t cp = bytes[0] & (0x7F >> need);
    for (size_t i = 1; i < need; ++i) cp = (cp << 6) | (bytes[i] & 0x3F);
    *out = static_cast<wchar_t>(cp);
    return 1;
  }

  static char* PromptOf(EditLine* editline) {
    void* self = nullptr;
    el_get(editline, EL_CLIENTDATA, &self);
    return const_cast<char*>(static_cast<EditLineReader*>(self)->prompt_.c_str());
  }

  EditLine* editline_ = nullptr;
  History* history_ = nullptr;
  std::string prompt_;
  uint64_t interrupts_before_ = 0;  // InterruptCount() when the current Read() began
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
