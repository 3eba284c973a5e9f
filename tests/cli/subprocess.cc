#include "tests/cli/subprocess.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>

namespace sluice::testing {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<char*> Argv(const std::string& binary, const std::vector<std::string>& args,
                        std::vector<std::string>& storage) {
  storage.clear();
  storage.push_back(binary);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage) argv.push_back(s.data());
  argv.push_back(nullptr);
  return argv;
}

int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::string SluiceBinary() { return std::string(SLUICE_BINARY_DIR) + "/cli/sluice"; }

ProcessResult RunSluice(const std::vector<std::string>& args, const std::string& stdin_text,
                        std::chrono::milliseconds timeout) {
  ProcessResult result;
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe(in_pipe) != 0 || pipe(out_pipe) != 0 || pipe(err_pipe) != 0) return result;
  std::vector<std::string> storage;
  std::vector<char*> argv = Argv(SluiceBinary(), args, storage);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_pipe[0], STDIN_FILENO);
    dup2(out_pipe[1], STDOUT_FILENO);
    dup2(err_pipe[1], STDERR_FILENO);
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], err_pipe[0], err_pipe[1]}) {
      close(fd);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  // The child may exit without reading its stdin (a bad flag); ignore the SIGPIPE that would bring.
  signal(SIGPIPE, SIG_IGN);
  size_t written = 0;
  int in_fd = in_pipe[1];
  if (stdin_text.empty()) {
    close(in_fd);
    in_fd = -1;
  }
  Clock::time_point deadline = Clock::now() + timeout;
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    int ready = poll(fds, n, RemainingMs(deadline));
    if (ready == 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_fd) {
        ssize_t w = write(in_fd, stdin_text.data() + written, stdin_text.size() - written);
        if (w > 0) written += static_cast<size_t>(w);
        if (w < 0 || written == stdin_text.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      char buf[4096];
      ssize_t r = read(fds[i].fd, buf, sizeof(buf));
      std::string& sink = fds[i].fd == out_fd ? result.out : result.err;
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else {
        close(fds[i].fd);
        (fds[i].fd == out_fd ? out_fd : err_fd) = -1;
      }
    }
  }
  for (int fd : {in_fd, out_fd, err_fd}) {
    if (fd >= 0) close(fd);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = DecodeWaitStatus(status);
  return result;
}

PtyProcess::PtyProcess(const std::vector<std::string>& args) {
  std::vector<std::string> storage;
  std::vector<char*> argv = Argv(SluiceBinary(), args, storage);
  winsize size{};
  size.ws_row = 40;
  size.ws_col = 120;
  pid_ = forkpty(&master_fd_, nullptr, nullptr, &size);
  if (pid_ == 0) {
    setenv("TERM", "xterm", 1);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

PtyProcess::~PtyProcess() {
  if (pid_ > 0 && exit_code_ < 0) {
    kill(pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  if (master_fd_ >= 0) close(master_fd_);
}

void PtyProcess::Write(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = write(master_fd_, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    done += static_cast<size_t>(w);
  }
}

bool PtyProcess::Pump(std::chrono::milliseconds budget) {
  if (eof_) return false;
  pollfd fd{master_fd_, POLLIN, 0};
  int ready = poll(&fd, 1, static_cast<int>(budget.count()));
  if (ready <= 0) return true;
  char buf[4096];
  ssize_t r = read(master_fd_, buf, sizeof(buf));
  // Linux returns EIO on the master once the child side has closed.
  if (r <= 0) {
    eof_ = true;
    return false;
  }
  output_.append(buf, static_cast<size_t>(r));
  return true;
}

size_t PtyProcess::WaitFor(const std::string& needle, size_t from,
                           std::chrono::milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    size_t at = from <= output_.size() ? output_.find(needle, from) : std::string::npos;
    if (at != std::string::npos) return at + needle.size();
    int left = RemainingMs(deadline);
    if (left == 0 || !Pump(std::chrono::milliseconds(left))) return std::string::npos;
  }
}

bool PtyProcess::WaitForBytes(size_t from, size_t bytes, std::chrono::milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  while (output_.size() < from + bytes) {
    int left = RemainingMs(deadline);
    if (left == 0 || !Pump(std::chrono::milliseconds(left))) return false;
  }
  return true;
}

bool PtyProcess::WaitForLineEditor(std::chrono::milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    termios mode{};
    // On Linux the master side reports the terminal's (slave side's) settings.
    if (tcgetattr(master_fd_, &mode) == 0 && (mode.c_lflag & ICANON) == 0) return true;
    if (RemainingMs(deadline) == 0) return false;
    Pump(std::chrono::milliseconds(5));
  }
}

int PtyProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (exit_code_ >= 0) return exit_code_;
  Clock::time_point deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      while (Pump(std::chrono::milliseconds(10))) {
      }
      exit_code_ = DecodeWaitStatus(status);
      return exit_code_;
    }
    if (RemainingMs(deadline) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      exit_code_ = 128 + SIGKILL;
      return -1;
    }
    if (!Pump(std::chrono::milliseconds(20))) usleep(20000);  // EOF: the child is exiting
  }
}

}  // namespace sluice::testing
