// Pieces shared by the IoBackend implementations: opening files (O_DIRECT with a buffered
// fallback), validating requests, the per-request retry / short-read state machine, and counters.
// Internal to io/; callers use io/io_backend.h.
//
// Thread-safety: OpenIoFiles/ValidateRequests are pure; AtomicIoCounters is thread-safe;
// ReadProgress belongs to whichever thread is driving that request.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/io_backend.h"

namespace sluice {

struct IoFile {
  std::string path;
  int fd = -1;
  bool direct = false;  // opened with O_DIRECT
  uint64_t size = 0;    // at open; reads stop here (files are immutable while open)
};

// Opens every path read-only, with O_DIRECT when `want_direct`; where the filesystem refuses it
// (EINVAL: tmpfs before Linux 6.6, some FUSE/overlay mounts) opens buffered and logs one line per
// file saying so.
Result<std::vector<IoFile>> OpenIoFiles(const std::vector<std::string>& paths, bool want_direct);
void CloseIoFiles(std::vector<IoFile>* files);

// Bounds and alignment of each request against `files` (alignment only for O_DIRECT files).
Status ValidateRequests(std::span<const IoRequest> requests, const std::vector<IoFile>& files);

// ResourceExhausted when `more` requests on top of `outstanding` would pass `max_queued`.
Status CheckQueueRoom(size_t outstanding, size_t more, size_t max_queued);

struct AtomicIoCounters {
  std::atomic<uint64_t> requests_submitted{0}, requests_completed{0}, bytes_read{0}, short_reads{0},
      retries{0}, errors{0}, in_flight{0}, queued{0};
  IoCounters Snapshot() const;
};

// One request on its way through retries and short reads.
struct ReadProgress {
  IoRequest request;
  uint64_t done = 0;  // bytes already in dest
  int retries = 0;

  uint64_t next_offset() const { return request.offset + done; }
  uint64_t next_length() const { return request.length - done; }
  uint8_t* next_dest() const { return request.dest + done; }
};

enum class ReadStep { kResubmit, kComplete };
// Applies one read result (bytes or -errno) to `p`: kResubmit for -EAGAIN/-EINTR (up to
// max_retries) and for a short read that stopped before the end of the file; otherwise
// kComplete with *out filled. Updates the counters' short_reads/retries/errors/bytes_read.
ReadStep AdvanceRead(ReadProgress* p, int64_t result, uint64_t file_size, int max_retries,
                     AtomicIoCounters* counters, IoCompletion* out);

}  // namespace sluice
