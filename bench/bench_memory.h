// Memory tools of `sluice bench`: the process's peak RSS, dropping a file from the page cache, and
// the mlocked balloon that makes the naive mmap baseline face the same memory as the engine.
//
// Why a balloon: the mmap baseline lets the page cache hold whatever it wants, and on a machine
// with far more free RAM than the budget it would cache the whole model and look fast for the
// wrong reason. Locking away MemAvailable - limit bytes (anonymous, mlocked, touched, so the
// kernel cannot reclaim them) leaves the baseline `limit` bytes for its heap and page cache, the
// same memory the streaming engine gets as its --ram budget.
//
// Non-goals: cgroups (not available to an ordinary user everywhere). Thread-safety: functions are
// reentrant; a balloon is owned by one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/base/status.h"

namespace sluice {

// VmHWM of this process (peak resident set), bytes; 0 when /proc is unavailable.
uint64_t PeakRssBytes();
// VmRSS now, bytes.
uint64_t CurrentRssBytes();
// Bytes this process caused to be read from storage (/proc/self/io read_bytes): page faults on
// mapped files and buffered reads; 0 when unavailable.
uint64_t ProcessReadBytes();
// Resets VmHWM to the current RSS (writes "5" to /proc/self/clear_refs), so a phase's peak can be
// measured on its own. Returns false (and peak measurements span the whole run) when refused.
bool ResetPeakRss();
// MemAvailable from /proc/meminfo, bytes.
Result<uint64_t> MemAvailableBytes();
// Asks the kernel to drop `path`'s pages from the page cache (fdatasync + POSIX_FADV_DONTNEED),
// so a run starts cold. Pages mapped by a live process stay.
Status DropFromPageCache(const std::string& path);

class MemoryBalloon {
 public:
  // Maps, touches and mlocks `bytes` of anonymous memory. Errors: ResourceExhausted when the
  // memory cannot be mapped or locked (the message names RLIMIT_MEMLOCK when that is why).
  static Result<std::unique_ptr<MemoryBalloon>> Inflate(uint64_t bytes);
  ~MemoryBalloon();  // munlock + munmap: released
  MemoryBalloon(const MemoryBalloon&) = delete;
  MemoryBalloon& operator=(const MemoryBalloon&) = delete;
  uint64_t bytes() const { return bytes_; }

 private:
  MemoryBalloon() = default;
  void* data_ = nullptr;
  uint64_t bytes_ = 0;
};

}  // namespace sluice
