// The resident decode benchmark (issue 4): decode tokens/s against the bytes of weights each
// token touches, as a fraction of the DRAM read bandwidth measured in the same run. Decoding one
// token reads every dense weight once and the k routed experts of every layer once, so
//   bound tok/s = DRAM GB/s / bytes per token
// is the speed of light for a memory-bound decoder, and achieved / bound says how close we are.
//
// Non-goals: storage-bound runs (sluice bench, issue 6); prefill speed.
// Thread-safety: run from the engine's thread.
#pragma once

#include <cstdint>
#include <string>

#include "core/base/status.h"
#include "llm/engine.h"

namespace sluice {

struct DecodeBenchReport {
  int threads = 0;
  int64_t decoded_tokens = 0;
  double decode_seconds = 0;
  double tok_per_s = 0;
  uint64_t dense_bytes_per_token = 0;   // every dense matrix and vector, one embedding row
  uint64_t expert_bytes_per_token = 0;  // routed expert bytes computed with, averaged
  uint64_t kv_bytes_per_token = 0;      // KV cache bytes attention read, averaged
  double weight_GBps = 0;               // (dense + expert) bytes per token x tok/s
  double dram_GBps = 0;                 // streaming read of a 1 GiB buffer, same thread count
  double dram_ratio = 0;                // weight_GBps / dram_GBps
  double bound_tok_per_s = 0;           // dram_GBps / (dense + expert + kv bytes per token)
  uint64_t cache_misses = 0;            // expert cache misses while decoding (0 when resident)
  uint64_t io_wait_ns = 0;
};

// Best of several streaming reads of a `bytes` buffer over `threads` threads, in GB/s.
double MeasureDramReadGBps(int threads, uint64_t bytes = 1ull << 30);

// From the engine's counters since its last ResetCounters() (which must cover only decode
// steps), plus a DRAM bandwidth measurement now.
// `dram_buffer_bytes`: size of the bandwidth probe's buffer (16x+ the last-level cache).
Result<DecodeBenchReport> MeasureDecodeBench(const Engine& engine,
                                             uint64_t dram_buffer_bytes = 1ull << 30);

// Human-readable lines, one figure each.
std::string FormatDecodeBench(const DecodeBenchReport& report);

}  // namespace sluice
