#include "cli/interrupt.h"

#include <signal.h>

#include <cstring>

namespace sluice::cli {
namespace {

// std::atomic of a pointer and of uint64_t are lock-free on every target we build for, which is
// what makes them safe to touch from a signal handler.
std::atomic<std::atomic<bool>*> g_cancel_target{nullptr};
std::atomic<uint64_t> g_interrupt_count{0};
static_assert(std::atomic<std::atomic<bool>*>::is_always_lock_free);
static_assert(std::atomic<uint64_t>::is_always_lock_free);

void OnSigint(int) {
  g_interrupt_count.fetch_add(1, std::memory_order_relaxed);
  std::atomic<bool>* target = g_cancel_target.load(std::memory_order_acquire);
  if (target != nullptr) target->store(true, std::memory_order_relaxed);
}

}  // namespace

void InstallInterruptHandler() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = OnSigint;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocked read() must return EINTR
  sigaction(SIGINT, &action, nullptr);
}

void SetCancelTarget(std::atomic<bool>* flag) {
  g_cancel_target.store(flag, std::memory_order_release);
}

uint64_t InterruptCount() { return g_interrupt_count.load(std::memory_order_relaxed); }

}  // namespace sluice::cli
