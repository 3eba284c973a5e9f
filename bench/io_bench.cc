#include "bench/io_bench.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>
#include <thread>

#include "bench/io_bench_raw.h"
#include "core/base/aligned_buffer.h"
#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/base/log.h"
#include "core/base/progress.h"
#include "io/archive_reader.h"
#include "io/archive_writer.h"
#include "moe/expert_cache.h"

namespace sluice {
namespace {

constexpr int64_t kRowBytes = 4096;  // i8 rows of 4096: matrices of (4096, rows)
const char* const kArch = "sluice-io-bench";

// Removes the scratch archive however the bench ends.
struct ScratchFile {
  std::string path;
  ~ScratchFile() {
    if (!path.empty()) unlink(path.c_str());
  }
};

int64_t RowsFor(uint64_t expert_bytes) {
  return std::max<int64_t>(1, std::llround(static_cast<double>(expert_bytes) / 3.0 / kRowBytes));
}

ArchivePlan BenchPlan(const IoBenchOptions& o, int* n_expert_out) {
  ArchivePlan plan;
  plan.metadata.SetString("general.architecture", kArch);
  plan.metadata.SetU32(std::string(kArch) + ".block_count",
                       static_cast<uint32_t>(o.expert_bytes.size()));
  for (size_t i = 0; i < o.expert_bytes.size(); ++i) {
    const int64_t rows = RowsFor(o.expert_bytes[i]);
    const uint64_t stride = AlignUp(3 * static_cast<uint64_t>(rows * kRowBytes), kIoAlignment);
    const uint64_t per_layer = o.archive_bytes / o.expert_bytes.size();
    const int64_t n = static_cast<int64_t>(per_layer / stride);
    n_expert_out[i] = static_cast<int>(n);
    ArchiveExpertLayerPlan lp;
    lp.layer = static_cast<int>(i);
    TensorInfo* m[3] = {&lp.tensors.gate, &lp.tensors.up, &lp.tensors.down};
    const char* names[3] = {"gate", "up", "down"};
    for (int k = 0; k < 3; ++k) {
      m[k]->name = StrCat("blk.", i, ".ffn_", names[k], "_exps.weight");
      m[k]->type = GgmlType::kI8;
      m[k]->n_dims = 3;
      m[k]->ne = {kRowBytes, rows, std::max<int64_t>(n, 1), 1};
    }
    plan.expert_layers.push_back(lp);
  }
  return plan;
}

Status WriteScratchArchive(const IoBenchOptions& o, const std::string& path,
                           std::vector<int>* n_expert) {
  n_expert->assign(o.expert_bytes.size(), 0);
  ArchivePlan plan = BenchPlan(o, n_expert->data());
  const int max_qd = *std::max_element(o.queue_depths.begin(), o.queue_depths.end());
  for (size_t i = 0; i < o.expert_bytes.size(); ++i) {
    // 100% misses need more experts than cache slots (queue depth + 3), cycled in a fixed order.
    const int min_experts = max_qd + 4;
    if ((*n_expert)[i] < min_experts) {
      const uint64_t stride = AlignUp(3 * RowsFor(o.expert_bytes[i]) * kRowBytes, kIoAlignment);
      return InvalidArgument("--size ", FormatBytes(o.archive_bytes),
                             " is too small: ", FormatBytes(o.expert_bytes[i]),
                             " experts at queue depth ", max_qd, " need at least ", min_experts,
                             " of them, i.e. --size of at least ",
                             FormatBytes(min_experts * stride * o.expert_bytes.size()));
    }
  }
  ASSIGN_OR_RETURN(auto writer, ArchiveWriter::Create(path, std::move(plan)));
  Progress progress("writing scratch archive", writer->payload_bytes());
  const uint64_t max_matrix =
      RowsFor(*std::max_element(o.expert_bytes.begin(), o.expert_bytes.end())) * kRowBytes;
  std::vector<uint64_t> buffer(3 * max_matrix / 8 + 1);
  uint64_t state = o.seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t layer = 0; layer < o.expert_bytes.size(); ++layer) {
    const uint64_t matrix = RowsFor(o.expert_bytes[layer]) * kRowBytes;
    for (int e = 0; e < (*n_expert)[layer]; ++e) {
      // Random bytes, nothing for a disk to compress or deduplicate; xorshift64* costs ~1 ns
      // per 8 bytes, so generating 4 GB is not what limits the write.
      for (uint64_t& w : buffer) {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        w = state * 0x2545f4914f6cdd1dull;
      }
      const uint8_t* b = reinterpret_cast<const uint8_t*>(buffer.data());
      RETURN_IF_ERROR(writer->AddExpert(static_cast<int>(layer), e, {b, matrix},
                                        {b + matrix, matrix}, {b + 2 * matrix, matrix}));
      progress.Update(writer->bytes_written());
    }
  }
  RETURN_IF_ERROR(writer->Finish());
  progress.Finish();
  return Status::Ok();
}

using RunResult = RawRunResult;

// Cache path: `qd` reads at the device (the backend's queue depth) and one more expert announced
// (it waits in the backend's queue, so the reaper starts it the moment a read finishes, instead of
// after that read's user has verified and released it: at QD 1 that is the difference between
// hashing in series with the reads and hashing while the next one runs). Whichever expert arrives
// first is acquired (AcquireAny), released, and replaced by the next of `order`. Consuming in
// arrival order keeps the queue full: waiting for the oldest read instead (Acquire in order) let
// one slow read of a noisy virtual disk idle the other slots (half the bandwidth at QD 16, 2 MB).
Result<RunResult> CacheRun(ExpertCache* cache, int layer, const std::vector<int>& order,
                           uint64_t n_reads, int qd, uint64_t read_bytes) {
  cache->Clear();
  const Clock::time_point start = Clock::now();
  std::vector<int> window;
  uint64_t next = 0;
  while (window.size() < static_cast<size_t>(qd) + 1 && next < n_reads) {
    window.push_back(order[next++ % order.size()]);
  }
  cache->Prefetch(layer, window);
  while (!window.empty()) {
    int index = 0;
    ASSIGN_OR_RETURN(ExpertRef ref, cache->AcquireAny(layer, window, &index));
    cache->Release(ref);
    if (next < n_reads) {
      window[index] = order[next++ % order.size()];
      cache->Prefetch(layer, {&window[index], 1});
    } else {
      window[index] = window.back();
      window.pop_back();
    }
  }
  return RunResult{n_reads * read_bytes, Seconds(Clock::now() - start)};
}

}  // namespace

Result<IoBenchResult> RunIoBench(const IoBenchOptions& o,
                                 const std::function<void(const IoBenchPoint&)>& on_point) {
  if (o.expert_bytes.empty() || o.queue_depths.empty() || o.rounds < 1) {
    return InvalidArgument("io bench: need expert sizes, queue depths and >= 1 round");
  }
  for (int qd : o.queue_depths) {
    // AcquireAny takes at most 64 candidates (the window is qd + 1).
    if (qd < 1 || qd > 63) return InvalidArgument("io bench: queue depth ", qd, " not in 1..63");
  }
  ScratchFile scratch{o.dir + "/sluice-io-bench.sluice"};
  std::vector<int> n_expert;
  RETURN_IF_ERROR(WriteScratchArchive(o, scratch.path, &n_expert));
  ASSIGN_OR_RETURN(std::unique_ptr<ArchiveReader> model, ArchiveReader::Open(scratch.path));
  IoBenchResult result;
  result.archive_bytes = model->header().file_bytes;

  int raw_fd = open(scratch.path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  result.raw_direct = raw_fd >= 0;
  if (raw_fd < 0) {
    LOG(WARNING) << "io bench: O_DIRECT refused on " << o.dir << " (" << ErrnoString(errno)
                 << "); raw reads are buffered, so both paths measure the page cache";
    raw_fd = open(scratch.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw_fd < 0) return IoError(scratch.path, ": open failed: ", ErrnoString(errno));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{raw_fd};

  // The cache sizes every slot for the largest expert of the archive (the 19 MB layer).
  uint64_t slot_bytes = 0;
  for (const ExpertLayerEntry& e : model->expert_layer_entries()) {
    slot_bytes = std::max(slot_bytes, AlignUp(e.block_bytes, kIoAlignment));
  }
  std::mt19937_64 rng(o.seed + 1);
  for (size_t layer = 0; layer < o.expert_bytes.size(); ++layer) {
    const ExpertLayerEntry& entry = model->expert_layer_entries()[layer];
    const uint64_t read_bytes = AlignUp(entry.block_bytes, kIoAlignment);
    // Fixed random orders cycled: each expert comes back only after all others, so with fewer
    // slots than experts every cache access misses.
    std::vector<int> order(n_expert[layer]);
    std::iota(order.begin(), order.end(), 0);
    std::shuffle(order.begin(), order.end(), rng);
    std::vector<uint64_t> raw_offsets;
    std::vector<int> raw_order = order;
    std::shuffle(raw_order.begin(), raw_order.end(), rng);
    for (int e : raw_order) raw_offsets.push_back(model->expert_block_offset(layer, e));

    for (int qd : o.queue_depths) {
      ASSIGN_OR_RETURN(std::unique_ptr<IoBackend> io,
                       CreateIoBackend({.kind = o.io, .queue_depth = qd}, model->file_paths()));
      ASSIGN_OR_RETURN(std::unique_ptr<ExpertCache> cache,
                       ExpertCache::Create(*model, static_cast<int>(o.expert_bytes.size()),
                                           io.get(), {.budget_bytes = (qd + 3) * slot_bytes}));
      // After the cache registered its slots, so the description says whether that worked.
      if (result.cache_backend.empty()) {
        const std::string d = io->Describe();  // "io_uring (..., QD 1)": the QD is per point
        const size_t qd_at = d.rfind(", QD ");
        result.cache_backend = qd_at == std::string::npos ? d : d.substr(0, qd_at) + ")";
      }
      RawBuffers buffers(qd, read_bytes);
      if (!buffers.ok()) return ResourceExhausted("io bench: cannot allocate raw read buffers");
      const uint64_t n_reads =
          std::max<uint64_t>((o.bytes_per_run + read_bytes - 1) / read_bytes, 2ull * qd);
      // One ring for the raw io_uring path per point, like the cache's backend.
      std::unique_ptr<RawUring> raw_uring = RawUring::Create(raw_fd, qd, read_bytes, &buffers);
      // Each path walks on through its own order from run to run, so every run reads blocks
      // spread over the whole layer rather than the same few (a host-side cache of the virtual
      // disk would otherwise serve repeats).
      uint64_t cursor[3] = {0, 0, 0};
      auto run_path = [&](int path, RunResult* total) -> Status {
        RunResult r;
        const uint64_t first = cursor[path];
        cursor[path] = (first + n_reads) % order.size();
        if (path == 0) {
          std::vector<int> ids(order.size());
          for (size_t i = 0; i < ids.size(); ++i) ids[i] = order[(first + i) % order.size()];
          ASSIGN_OR_RETURN(
              r, CacheRun(cache.get(), static_cast<int>(layer), ids, n_reads, qd, read_bytes));
        } else {
          std::vector<uint64_t> offsets(raw_offsets.size());
          for (size_t i = 0; i < offsets.size(); ++i) {
            offsets[i] = raw_offsets[(first + i) % raw_offsets.size()];
          }
          if (path == 1) {
            ASSIGN_OR_RETURN(r, RawPreadRun(raw_fd, offsets, n_reads, qd, read_bytes, buffers));
          } else if (raw_uring != nullptr) {
            ASSIGN_OR_RETURN(r, raw_uring->Run(offsets, n_reads));
          }
        }
        if (total != nullptr) {
          total->bytes += r.bytes;
          total->seconds += r.seconds;
        }
        return Status::Ok();
      };
      // Untimed warm-up of each path: first-touch page faults, io-wq workers, slot registration.
      for (int path = 0; path < 3; ++path) RETURN_IF_ERROR(run_path(path, nullptr));
      RunResult totals[3];
      cache->ResetCounters();
      for (int round = 0; round < o.rounds; ++round) {
        // Three paths per round, the order reversed every other round (ABC CBA) so that drift
        // of a noisy shared disk hits each alike.
        for (int step = 0; step < 3; ++step) {
          const int path = round % 2 == 0 ? step : 2 - step;
          RETURN_IF_ERROR(run_path(path, &totals[path]));
        }
      }
      const RunResult& cache_total = totals[0];
      const RunResult& pread_total = totals[1];
      const RunResult& uring_total = totals[2];
      const bool uring_ok = raw_uring != nullptr;
      const ExpertCacheCounters c = cache->counters();
      IoBenchPoint p;
      p.expert_bytes = entry.block_bytes;
      p.read_bytes = read_bytes;
      p.queue_depth = qd;
      p.reads = n_reads * o.rounds;
      p.cache_GBps = cache_total.bytes / cache_total.seconds / 1e9;
      p.raw_pread_GBps = pread_total.bytes / pread_total.seconds / 1e9;
      p.raw_uring_GBps = uring_ok ? uring_total.bytes / uring_total.seconds / 1e9 : 0;
      p.cache_hit_rate = c.hits + c.misses > 0 ? double(c.hits) / double(c.hits + c.misses) : 0;
      p.cache_io_wait_ns = c.io_wait_ns;
      if (c.checksum_failures != 0 || c.read_errors != 0) {
        return Corrupt(scratch.path, ": ", c.checksum_failures, " checksum failures and ",
                       c.read_errors, " read errors during the bench");
      }
      result.points.push_back(p);
      if (on_point) on_point(p);
    }
  }
  // The device's limit is the better of the two plain ways of reading it, chosen once for the
  // whole run (higher geometric mean over all points): taking the better of two noisy figures
  // point by point would bias the reference up by about half their noise.
  double log_pread = 0, log_uring = 0;
  for (const IoBenchPoint& p : result.points) {
    log_pread += std::log(p.raw_pread_GBps);
    log_uring += p.raw_uring_GBps > 0 ? std::log(p.raw_uring_GBps) : -1e9;
  }
  result.raw_method = log_uring > log_pread ? "uring" : "pread";
  for (IoBenchPoint& p : result.points) {
    p.raw_GBps = log_uring > log_pread ? p.raw_uring_GBps : p.raw_pread_GBps;
    p.ratio = p.cache_GBps / p.raw_GBps;
  }
  return result;
}

Result<RawReadResult> MeasureRawReads(const RawReadOptions& o) {
  if (o.offsets.empty() || o.read_bytes == 0 || o.read_bytes % kIoAlignment != 0 ||
      o.queue_depth < 1 || o.queue_depth > 1024) {
    return InvalidArgument("raw reads of ", o.path, ": need offsets, a read size that is a ",
                           "multiple of ", kIoAlignment, " and a queue depth in 1..1024");
  }
  RawReadResult result;
  int fd = open(o.path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  result.direct = fd >= 0;
  if (fd < 0) {
    LOG(WARNING) << o.path << ": O_DIRECT refused (" << ErrnoString(errno)
                 << "); raw reads are buffered and measure the page cache";
    fd = open(o.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return IoError(o.path, ": open failed: ", ErrnoString(errno));
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { close(fd); }
  } closer{fd};
  RawBuffers buffers(o.queue_depth, o.read_bytes);
  if (!buffers.ok()) return ResourceExhausted("raw reads: cannot allocate the read buffers");
  const uint64_t n_reads =
      std::max<uint64_t>((o.total_bytes + o.read_bytes - 1) / o.read_bytes, 3ull * o.queue_depth);
  ASSIGN_OR_RETURN(RunResult r,
                   RawPreadRun(fd, o.offsets, n_reads, o.queue_depth, o.read_bytes, buffers));
  result.bytes = r.bytes;
  result.reads = n_reads;
  result.seconds = r.seconds;
  result.GBps = r.bytes / r.seconds / 1e9;
  return result;
}

}  // namespace sluice
