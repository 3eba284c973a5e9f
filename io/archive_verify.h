// VerifyArchive: every checksum of a streaming archive (each dense tensor, each expert block)
// checked by reading the file the way the engine does: O_DIRECT reads through the I/O backend,
// several in flight, hashed as they arrive. `sluice verify` used to hash through a page-faulting
// mapping at ~42 MB/s (50 minutes for a 130 GB model on a disk that reads 1.4 GB/s); this reads
// at the device's speed and leaves nothing in the page cache.
//
// Non-goals: repairing. Thread-safety: one call at a time per archive.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/archive_reader.h"
#include "io/io_backend.h"

namespace sluice {

struct VerifyOptions {
  IoBackendKind io = IoBackendKind::kAuto;
  int queue_depth = 8;               // reads in flight
  uint64_t read_bytes = 8ull << 20;  // one read (a large tensor is hashed in such pieces)
  size_t max_listed = 20;            // failures kept with their message
  // Called as bytes are verified (done, total).
  std::function<void(uint64_t done, uint64_t total)> on_progress = nullptr;
};

struct VerifyReport {
  uint64_t checks = 0;  // dense tensors + expert blocks
  uint64_t dense_checks = 0;
  uint64_t failed = 0;
  uint64_t bytes = 0;       // checksummed bytes
  uint64_t bytes_read = 0;  // read from the device (alignment included)
  double seconds = 0;
  std::string backend;                // IoBackend::Describe()
  std::vector<std::string> failures;  // the first max_listed, each naming what, where, values
};

// Errors: the backend cannot be created, a read fails (EIO, the file ended): these stop the
// check. A checksum mismatch does not: it is counted in the report and the check goes on.
Result<VerifyReport> VerifyArchive(const ArchiveReader& archive, const VerifyOptions& options);

}  // namespace sluice
