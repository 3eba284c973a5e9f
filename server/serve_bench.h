// The serving benchmark behind `sluice bench --serve 1,2,4,8`: N conversations decoding together
// on one engine through the batch scheduler (as `sluice serve` runs them), each with its own
// random prompt and the same number of tokens to generate (no stop token, so every stream does
// the same work). What one level measures, from the scheduler's decode-only steps (prompts are in
// by then):
//   aggregate tok/s  = tokens decoded / time of those steps (step start to end of sampling)
//   bytes per token  = bytes read from storage in those steps / tokens decoded
//   per stream tok/s = each request's own (tokens - 1) / (first token -> last token)
// The bound (device GB/s / bytes per token) needs the device's bandwidth, which the CLI measures
// around each level (bench/bench_model.h ProbeDevice): this file does not touch the device.
//
// Non-goals: HTTP (the server adds parsing and socket writes, not reads or compute per step).
// Thread-safety: one level at a time on an engine.
#pragma once

#include <cstdint>
#include <vector>

#include "core/base/status.h"
#include "llm/engine.h"

namespace sluice::server {

struct ServeLevelOptions {
  int streams = 1;
  int prompt_tokens = 16;
  int decode_tokens = 32;
  uint64_t seed = 1;
};

struct ServeLevel {
  int streams = 0;
  int64_t decoded_tokens = 0;  // in decode-only steps
  int64_t steps = 0;           // decode-only steps
  double seconds = 0;          // of those steps
  double aggregate_tok_s = 0;
  uint64_t bytes_read = 0;  // in those steps
  double bytes_per_token = 0;
  double hit_rate = 0;               // expert cache hits / lookups in those steps
  std::vector<double> stream_tok_s;  // (streams) each request's decode tok/s
  double wall_seconds = 0;           // the whole level, prompts included
  int64_t generated_tokens = 0;      // the whole level
};

// The engine must have room for `streams` sequences (max_sequences >= streams; its own is one)
// and a batch of at least `streams` tokens.
Result<ServeLevel> RunServeLevel(Engine* engine, const ServeLevelOptions& options);

}  // namespace sluice::server
