// The model benchmark behind `sluice bench`: prompt processing and N decoded tokens at a RAM
// budget, measured against the storage device's own random-read bandwidth in the same run.
//
//   device: the expert reads the cache would issue (io/block_read_plan.h), at random experts of
//           the model file itself, as plain O_DIRECT preads by queue_depth threads
//           (bench/io_bench.h MeasureRawReads): before and after the engine runs, averaged.
//   engine: Prefill(prompt_tokens random ids), then decode_tokens tokens (sampled, seeded); the
//           decode phase's counters give tok/s, bytes read per token, hit rate, I/O wait.
//   bound:  device GB/s / bytes read per token = the tokens/s the disk allows if compute and
//           every other cost were hidden behind the reads. decode tok/s / bound = read GB/s /
//           device GB/s (the same number; the two goals apply different thresholds).
// Each run's peak RSS (VmHWM, reset before the run; the device probes' buffers between rounds
// excluded) is reported beside its budget.
//
// Non-goals: printing (bench/bench_report.h), flags (cli/cmd_bench.cc).
// Thread-safety: one run at a time per process (peak RSS is process-wide).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/model_file.h"
#include "llm/engine_options.h"
#include "moe/routing_spec.h"

namespace sluice {

struct DeviceProbe {
  double GBps = 0;          // bytes / second / 1e9 over all reads
  uint64_t read_bytes = 0;  // bytes of one read (an archive expert block, 4 KiB aligned)
  int queue_depth = 0;
  uint64_t reads = 0;
  bool direct = false;  // O_DIRECT (false: the filesystem refused it; page cache measured)
};

// Random expert reads of `model` (its first file), `total_bytes` in all.
Result<DeviceProbe> ProbeDevice(const ModelFile& model, int queue_depth, uint64_t total_bytes,
                                uint64_t seed);

struct BenchRunOptions {
  EngineOptions engine;      // budget, source, I/O, threads; routing_hook is set by RunEngineBench
  RoutingSpec routing;       // resolved (ResolveRoutingSpec)
  std::string record_trace;  // "": no recording
  int prompt_tokens = 64;
  int decode_tokens = 32;
  uint64_t seed = 1;
  // The decode is split into `rounds` equal runs of tokens; `between_rounds` (optional) is
  // called before the first and after every round, outside the timed decode, with the engine's
  // model file: the CLI measures the device there, so each round's reads are bracketed by device
  // measurements taken minutes apart at most (a shared virtual disk drifts by 2x within minutes).
  int rounds = 1;
  std::function<Status(const ModelFile&)> between_rounds;
  // Read every routed expert into the cache before the timed prompt (Engine::PreloadExperts).
  bool warm = false;
};

// One round of the decode.
struct BenchRound {
  int tokens = 0;
  double seconds = 0;
  uint64_t bytes_read = 0;
};

struct BenchRun {
  std::string expert_source;  // "cache" or "mmap"
  std::string routing;        // description of the routing used
  uint64_t ram_budget_bytes = 0;
  std::string memory_plan;  // DescribeMemoryPlan
  int prompt_tokens = 0, decode_tokens = 0;
  double prefill_tok_s = 0, decode_tok_s = 0;
  double ttft_s = 0;                // Prefill + sampling the first token
  double warm_s = -1;               // --warm: seconds reading every expert first (-1: not warm)
  uint64_t prefill_bytes_read = 0;  // expert bytes read from storage during the prompt
  uint64_t decode_bytes_read = 0;   // from storage while decoding (cache counter, or the
                                    // process's read_bytes for the mmap source)
  double bytes_read_per_token = 0;
  double hit_rate = -1;                // expert cache hits / lookups while decoding; -1 for mmap
  double read_GBps = 0;                // decode_bytes_read / decode seconds / 1e9
  double attention_fraction = 0;       // attention blocks / decode time
  double dense_ffn_fraction = 0;       // the leading dense layers' FFNs / decode time
  double expert_compute_fraction = 0;  // expert FFNs (routed + shared) / decode time
  double verify_fraction = 0;          // hashing experts after their reads / decode time
  double io_wait_fraction = 0;         // expert wait / decode time (mmap: page faults are hidden
                                       // in compute; reported as -1)
  double device_busy_fraction = -1;    // time with >= 1 expert read in flight / decode time
                                       // (-1 for mmap); 1 - this is when the device idled
  double decode_seconds = 0;
  int prefetch_next = 0;              // EngineOptions::prefetch_next of the run
  double prediction_accuracy = -1;    // predicted next-layer experts then used; -1: none made
  double speculative_per_token = 0;   // experts read ahead on a prediction, per decoded token
  double speculative_used = -1;       // of those, the share the next layer used; -1: none
  double wasted_bytes_per_token = 0;  // read ahead on a wrong guess and never used
  uint64_t peak_rss_bytes = 0;        // VmHWM during the run
  uint64_t expert_cache_bytes = 0;
  uint64_t dense_bytes = 0;
  std::vector<BenchRound> rounds;  // (options.rounds)
};

// Opens the engine on `model_path` and runs the benchmark. Errors: the engine's (budget too
// small...), a routing trace shorter than prompt + decode tokens without ,cycle.
Result<BenchRun> RunEngineBench(const std::string& model_path, const BenchRunOptions& options);

}  // namespace sluice
