// IoBackend: batched asynchronous reads from a fixed set of files into caller-owned buffers. Two
// implementations: io_uring with O_DIRECT, registered buffers and registered files
// (io/uring_backend.h), and a pool of pread worker threads (io/pread_backend.h). CreateIoBackend
// picks one (io/io_probe.h probes io_uring and O_DIRECT, and falls back with one log line).
//
//   IoRequest reqs[2] = {{.file_index = 0, .offset = off, .length = n, .dest = buf, .tag = 7},
//   ...}; RETURN_IF_ERROR(io->Submit(reqs));            // queues; never waits for the device
//   IoCompletion done[8];
//   size_t n = io->Reap(done, /*min_completions=*/1);   // blocks until >= 1 is done
//
// Semantics shared by both backends: each request carries its own result; a short read is
// resubmitted from where it stopped until the request is complete or the file ends (reads stop at
// end of file without error: `bytes` says how many arrived); -EAGAIN and -EINTR are retried up to
// IoOptions::max_retries; any other error completes the request with `error` = errno. At most
// queue_depth reads are at the device at once; the rest wait in a fixed queue of
// IoOptions::max_queued requests allocated at creation (Submit beyond it is ResourceExhausted).
// With direct_io(), offset, length and dest must be multiples of kIoAlignment.
// Progress needs a reaper: the pread pool reads as soon as Submit queues, but the io_uring backend
// moves queued requests to the device only inside Reap (the reaping thread owns the ring), so a
// caller that submits must also keep a thread in Reap (the weight cache's completion thread does).
//
// Non-goals: writes, files opened after creation, cancellation (requests always complete).
// Thread-safety: Submit, Interrupt and counters from any thread; Reap from one thread at a time.
// Buffers must stay valid until their request is reaped; destroy the backend only after every
// submitted request has been reaped.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace sluice {

inline constexpr uint64_t kIoAlignment = 4096;
// One request reads at most this much (io_uring lengths are 32-bit; Linux caps one read at
// 0x7ffff000 bytes). The largest weight block we know (one routed FFN of Mixtral 8x22B, ~170 MB)
// is far below.
inline constexpr uint64_t kMaxIoRequestBytes = 1ull << 30;

enum class IoBackendKind { kAuto, kUring, kPread };
Result<IoBackendKind> ParseIoBackendKind(std::string_view name);  // "auto" | "uring" | "pread"
const char* IoBackendKindName(IoBackendKind kind);

struct IoRequest {
  int file_index = 0;       // index into the paths the backend was created with
  uint64_t offset = 0;      // bytes from the start of the file
  uint64_t length = 0;      // bytes, 1..kMaxIoRequestBytes
  uint8_t* dest = nullptr;  // length bytes, owned by the caller until reaped
  int buffer_index = -1;    // registered buffer containing [dest, dest + length), or -1
  uint64_t tag = 0;         // returned unchanged in the completion
};

struct IoCompletion {
  uint64_t tag = 0;
  uint64_t bytes = 0;  // bytes read: == length unless the file ended or the request failed
  int error = 0;       // 0 or the errno that failed the request (after retries)
};

// Cumulative since creation (in_flight and queued are current values).
struct IoCounters {
  uint64_t requests_submitted = 0;
  uint64_t requests_completed = 0;  // handed to Reap (including failed ones)
  uint64_t bytes_read = 0;
  uint64_t short_reads = 0;  // partial reads resubmitted for the rest
  uint64_t retries = 0;      // -EAGAIN / -EINTR resubmissions
  uint64_t errors = 0;       // requests completed with error != 0
  uint64_t in_flight = 0;    // at the device now
  uint64_t queued = 0;       // accepted, waiting for a free queue slot
};

// Test hook: sees every read's raw result before the backend acts on it, and returns the result
// the backend should act on. It may sleep (latency), shorten a read (and scribble over the bytes
// past the new count), or turn it into -EINTR, -EAGAIN or -EIO. Called from backend threads.
class IoFaultInjector {
 public:
  virtual ~IoFaultInjector() = default;
  virtual int64_t OnRead(int file_index, uint64_t offset, uint64_t length, uint8_t* dest,
                         int64_t result) = 0;
};

struct IoOptions {
  IoBackendKind kind = IoBackendKind::kAuto;
  int queue_depth = 16;       // reads at the device at once: SQ entries / worker threads, 1..1024
  bool direct = true;         // O_DIRECT; buffered (one log line) where the filesystem refuses it
  size_t max_queued = 16384;  // requests accepted and not yet reaped, at most
  int max_retries = 1000;     // -EAGAIN/-EINTR retries of one request before it fails
  IoFaultInjector* faults = nullptr;  // tests only
};

class IoBackend {
 public:
  virtual ~IoBackend() = default;

  virtual IoBackendKind kind() const = 0;
  // "io_uring (O_DIRECT, registered buffers, QD 16)": for logs and bench output.
  virtual std::string Describe() const = 0;
  // True when every file is open with O_DIRECT (alignment rules apply).
  virtual bool direct_io() const = 0;
  virtual int queue_depth() const = 0;
  virtual size_t max_queued() const = 0;

  // Registers buffers (e.g. the cache slots) once, so reads skip the per-read page pinning.
  // IoRequest::buffer_index refers to the position in `buffers`. Must be called with nothing in
  // flight. Failure (e.g. RLIMIT_MEMLOCK) is not an error: the backend logs it once and reads
  // without registration. The pread backend ignores it.
  virtual void RegisterBuffers(std::span<const iovec> buffers) = 0;
  virtual void UnregisterBuffers() = 0;

  // Queues all of `requests` or none (ResourceExhausted when max_queued would be exceeded;
  // InvalidArgument for a bad file index, length or alignment). Never waits for I/O.
  virtual Status Submit(std::span<const IoRequest> requests) = 0;
  // Waits until at least min(min_completions, out.size()) requests are complete or Interrupt()
  // is called, then returns how many completions it wrote to `out` (possibly 0 after Interrupt).
  virtual size_t Reap(std::span<IoCompletion> out, size_t min_completions) = 0;
  // Wakes a blocked Reap (once per call).
  virtual void Interrupt() = 0;

  virtual IoCounters counters() const = 0;
};

// Opens `file_paths` with the backend chosen by options.kind (kAuto: io/io_probe.h). Errors: a
// file that cannot be opened; --io=uring where io_uring is unavailable (the message says why).
Result<std::unique_ptr<IoBackend>> CreateIoBackend(const IoOptions& options,
                                                   const std::vector<std::string>& file_paths);

// "Input/output error (errno 5)" plus what was being read, for completion errors.
std::string IoErrorText(int error);

}  // namespace sluice
