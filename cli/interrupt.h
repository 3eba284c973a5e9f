// Ctrl-C for the interactive commands (chat, run): one SIGINT handler for the process that never
// kills it. While a reply is being generated, Ctrl-C sets that reply's cancel flag (the session
// checks it between tokens, so the reply stops within one token); at the chat prompt it interrupts
// the blocked read so the line reader can clear the line.
//
// Non-goals: other signals (SIGTERM keeps its default: exit now), nested cancel targets.
// Thread-safety: the handler only touches lock-free atomics and write(2) (async-signal-safe).
// SetCancelTarget and the counters may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace sluice::cli {

// Installs the handler without SA_RESTART, so a read() blocked at the prompt returns EINTR.
// also_terminate: SIGTERM and SIGHUP cancel the same way (commands that write files: a killed
// convert or synth must not leave a full-size temporary file behind; SIGKILL cannot be caught,
// and the next run removes what it left, io/output_file.h).
void InstallInterruptHandler(bool also_terminate = false);

// While non-null, SIGINT stores true into *flag. Pass nullptr when the reply ends.
void SetCancelTarget(std::atomic<bool>* flag);

// SIGINTs received since the process started; readers compare it before and after a read.
uint64_t InterruptCount();

// A descriptor that becomes readable on every SIGINT (the handler writes a byte to a pipe), or
// -1 before InstallInterruptHandler. Readers poll it with their input: the signal may be
// delivered to any thread (the engine's workers, the I/O pool), so waiting for EINTR in the
// reading thread could miss it, and a signal that lands between two reads is never lost.
int InterruptWakeFd();
// Empties the wake-up pipe (call before waiting, then compare InterruptCount()).
void DrainInterruptWakeFd();

// RAII: the cancel target for the duration of one reply.
class ScopedCancelTarget {
 public:
  explicit ScopedCancelTarget(std::atomic<bool>* flag) { SetCancelTarget(flag); }
  ~ScopedCancelTarget() { SetCancelTarget(nullptr); }
  ScopedCancelTarget(const ScopedCancelTarget&) = delete;
  ScopedCancelTarget& operator=(const ScopedCancelTarget&) = delete;
};

}  // namespace sluice::cli
