// The "raw" halves of the I/O bench (bench/io_bench.h): reads of fixed-size blocks at given offsets
// without the expert cache, the reference the cache path is compared with. Two ways, because
// which one a machine serves faster varies:
//   RawPreadRun: queue_depth threads each doing blocking O_DIRECT pread.
//   RawUring:    one thread keeping queue_depth O_DIRECT io_uring reads in flight, into buffers
//                registered once, each completion replaced at once. One ring per measurement
//                point, reused across rounds: a fresh ring per run made its first reads wait for
//                the kernel to start io-wq workers, which read as a ~2x slower "device".
//
// Non-goals: checksums, the cache. Thread-safety: one run at a time per object.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "core/base/status.h"
#include "io/read_buffers.h"

namespace sluice {

struct RawRunResult {
  uint64_t bytes = 0;
  double seconds = 0;
};

// queue_depth buffers of read_bytes each, back to back in one THP-advised region (the expert
// cache's slots are allocated the same way, so neither side gets an advantage from its pages).
class RawBuffers {
 public:
  RawBuffers(int queue_depth, uint64_t read_bytes)
      : region_(static_cast<uint64_t>(queue_depth) * read_bytes, /*numa_local=*/true,
                /*lock=*/false),
        read_bytes_(read_bytes) {}
  bool ok() const { return region_.data() != nullptr; }
  uint8_t* buffer(int i) const { return region_.data() + static_cast<uint64_t>(i) * read_bytes_; }

 private:
  ReadBuffers region_;
  uint64_t read_bytes_;
};

// Reads n_reads blocks of read_bytes at offsets[i % offsets.size()] with queue_depth threads, each
// into its own buffer.
Result<RawRunResult> RawPreadRun(int fd, const std::vector<uint64_t>& offsets, uint64_t n_reads,
                                 int queue_depth, uint64_t read_bytes, const RawBuffers& buffers);

class RawUring {
 public:
  // nullptr (not an error) when io_uring is unavailable. `buffers` must outlive the object.
  static std::unique_ptr<RawUring> Create(int fd, int queue_depth, uint64_t read_bytes,
                                          const RawBuffers* buffers);
  ~RawUring();
  Result<RawRunResult> Run(const std::vector<uint64_t>& offsets, uint64_t n_reads);

 private:
  RawUring() = default;
  void Queue(int b);

  io_uring ring_{};
  int fd_ = -1;
  int queue_depth_ = 0;
  uint64_t read_bytes_ = 0;
  bool registered_ = false;
  const RawBuffers* buffers_ = nullptr;
  std::vector<uint64_t> offset_of_, done_of_;  // per buffer: its read and how far it got
};

}  // namespace sluice
