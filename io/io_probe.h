// Start-up probe for the expert read path: can this process use io_uring, and does the model's
// filesystem accept O_DIRECT? CreateIoBackend (io/io_backend.h) uses it for --io=auto: io_uring
// with O_DIRECT when both work, otherwise the pread pool, with one log line saying why.
//
// Non-goals: measuring speed (that is `sluice bench --io-only`). Thread-safety: pure functions.
#pragma once

#include <string>

namespace sluice {

struct IoProbeResult {
  bool uring_ok = false;
  std::string uring_reason;  // when !uring_ok: "io_uring_queue_init: Operation not permitted
                             // (errno 1); kernel.io_uring_disabled = 2"
  bool direct_ok = false;
  std::string direct_reason;  // when !direct_ok: "O_DIRECT refused by the filesystem of PATH ..."
};

// Sets up a tiny ring and round-trips one NOP; opens `sample_path` with O_DIRECT and reads its
// first 4 KiB into an aligned buffer.
IoProbeResult ProbeIo(const std::string& sample_path);

// The value of /proc/sys/kernel/io_uring_disabled (0 allowed, 1 only for its group, 2 never), or
// -1 when the kernel has no such sysctl.
int IoUringDisabledSysctl();

}  // namespace sluice
