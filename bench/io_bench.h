// The expert I/O benchmark behind `sluice bench --io-only`: how close does the expert cache come
// to the device's own random-read bandwidth?
//
// It writes a scratch archive of random experts (one expert layer per expert size, sized to
// `archive_bytes` and checked against free space; deleted afterwards), then for each expert size
// and queue depth measures, in interleaved rounds (cache, pread, uring, then uring, pread, cache,
// ... so drift of a noisy virtual disk hits all alike):
//   cache: random experts through ExpertCache at a 100% miss rate: a window of queue_depth
//          experts prefetched ahead, each Acquired (waits for its read, checks its xxh3) and
//          Released, the next one prefetched; every expert is one O_DIRECT read of its block.
//   raw:   the same number of reads of the same size at random block offsets of the same file,
//          without the cache, two ways: queue_depth threads doing O_DIRECT pread, and one thread
//          keeping queue_depth O_DIRECT io_uring reads into registered buffers in flight. The
//          faster of the two over the whole run is the device's speed of light here (either
//          alone could flatter the cache: which one wins depends on the machine and its load).
// Read buffers on both sides come from THP-advised 2 MiB-aligned regions (io/read_buffers.h).
// Bandwidth counts the bytes each read transfers (the block aligned to 4 KiB), in GB/s (1e9).
//
// Non-goals: model compute (the full `sluice bench`), page-cache performance. Thread-safety: runs
// on the caller's thread (plus its own worker threads); one run at a time per directory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/io_backend.h"

namespace sluice {

struct IoBenchOptions {
  std::string dir = ".";                // scratch archive goes here (a real disk, not tmpfs)
  uint64_t archive_bytes = 4ull << 30;  // scratch archive size (split evenly between sizes)
  std::vector<uint64_t> expert_bytes = {2'000'000, 7'000'000, 19'000'000};  // approx. per expert
  std::vector<int> queue_depths = {1, 2, 4, 8, 16, 32};
  IoBackendKind io = IoBackendKind::kAuto;  // backend of the cache path
  // Per (size, QD): `rounds` rounds of one run per path, in ABC CBA order. Many short rounds
  // cancel the drift of a noisy shared disk better than a few long ones.
  int rounds = 6;
  uint64_t bytes_per_run = 128ull << 20;  // per run, at least 2 x queue_depth reads
  uint64_t seed = 1;
};

struct IoBenchPoint {
  uint64_t expert_bytes = 0;  // one expert block (gate + up + down)
  uint64_t read_bytes = 0;    // one read: the block aligned up to 4 KiB
  int queue_depth = 0;
  uint64_t reads = 0;  // per path, over all rounds
  double cache_GBps = 0;
  double raw_GBps = 0;        // the device's limit: raw_uring_ or raw_pread_GBps (raw_method)
  double raw_pread_GBps = 0;  // QD threads doing O_DIRECT pread
  double raw_uring_GBps = 0;  // QD O_DIRECT io_uring reads in flight, registered buffers (0: none)
  double ratio = 0;           // cache_GBps / raw_GBps
  double cache_hit_rate = 0;  // should be 0: the bench reads only misses
  uint64_t cache_io_wait_ns = 0;
};

struct IoBenchResult {
  std::string cache_backend;  // IoBackend::Describe() of the cache path (first point)
  bool raw_direct = false;    // the raw reads used O_DIRECT
  std::string raw_method;     // "uring" or "pread": the faster over the whole run (geometric mean)
  uint64_t archive_bytes = 0;
  std::vector<IoBenchPoint> points;
};

// `on_point` (optional) is called after each (size, QD) as progress; raw_GBps and ratio are set
// only in the returned result (the reference method is chosen over the whole run).
Result<IoBenchResult> RunIoBench(const IoBenchOptions& options,
                                 const std::function<void(const IoBenchPoint&)>& on_point = {});

// The raw half of the bench on its own, for `sluice bench` on a model (bench/bench_model.h): the
// device's random-read bandwidth for reads of `read_bytes` at `offsets` (cycled in order, each a
// multiple of 4 KiB) of the file at `path`, by `queue_depth` threads doing plain O_DIRECT pread
// (buffered when the filesystem refuses O_DIRECT; `direct` says which), `total_bytes` in all
// (at least 3 x queue_depth reads).
struct RawReadOptions {
  std::string path;
  std::vector<uint64_t> offsets;
  uint64_t read_bytes = 0;
  int queue_depth = 16;
  uint64_t total_bytes = 1ull << 30;
};

struct RawReadResult {
  double GBps = 0;  // bytes / seconds / 1e9
  uint64_t bytes = 0;
  uint64_t reads = 0;
  double seconds = 0;
  bool direct = false;
};

Result<RawReadResult> MeasureRawReads(const RawReadOptions& options);

}  // namespace sluice
