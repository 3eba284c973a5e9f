#include "cli/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sluice::cli {
namespace {

// std::atomic of a pointer and of uint64_t are lock-free on every target we build for, which is
// what makes them safe to touch from a signal handler.
std::atomic<std::atomic<bool>*> g_cancel_target{nullptr};
std::atomic<uint64_t> g_interrupt_count{0};
int g_wake_pipe[2] = {-1, -1};  // [0] read end, [1] write end; both non-blocking
static_assert(std::atomic<std::atomic<bool>*>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

void OnSigint(int) {
  g_interrupt_count.fetch_add(1, std::memory_order_relaxed);
  std::atomic<bool>* target = g_cancel_target.load(std::memory_order_acquire);
  if (target != nullptr) target->store(true, std::memory_order_relaxed);
  if (g_wake_pipe[1] >= 0) {
    int saved_errno = errno;
    char byte = 1;
    ssize_t ignored = write(g_wake_pipe[1], &byte, 1);  // a full pipe is already readable
    (void)ignored;
    errno = saved_errno;
  }
}

}  // namespace

void InstallInterruptHandler(bool also_terminate) {
  if (g_wake_pipe[0] < 0 && pipe2(g_wake_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
    g_wake_pipe[0] = g_wake_pipe[1] = -1;  // readers then rely on EINTR alone
  }
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnSigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocked read() must return EINTR
  sigaction(SIGINT, &action, nullptr);
  if (also_terminate) {
    sigaction(SIGTERM, &action, nullptr);
    sigaction(SIGHUP, &action, nullptr);
  }
}

void SetCancelTarget(std::atomic<bool>* flag) {
  g_cancel_target.store(flag, std::memory_order_release);
}

uint64_t InterruptCount() { return g_interrupt_count.load(std::memory_order_relaxed); }

int InterruptWakeFd() { return g_wake_pipe[0]; }

void DrainInterruptWakeFd() {
  if (g_wake_pipe[0] < 0) return;
  char buf[64];
  while (read(g_wake_pipe[0], buf, sizeof(buf)) > 0) {
  }
}

}  // namespace sluice::cli
