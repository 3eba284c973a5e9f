// EngineCounters: what an engine has counted since it was created or its counters were reset.
// Each counter has one owner and is nested, not copied: the engine's own figures here, the MoE
// block's in `moe` (moe/moe_block.h), the weight cache's in `cache` (io/weight_cache.h). One
// difference operator gives what happened between two snapshots (a chat turn, a bench round).
//
// Thread-safety: a plain value.
#pragma once

#include <cstdint>

#include "io/weight_cache.h"
#include "moe/moe_block.h"

namespace sluice {

struct EngineCounters {
  int64_t prompt_tokens = 0;   // prompt tokens (Prefill, prompt steps)
  int64_t decoded_tokens = 0;  // decoded tokens (Decode, decode steps)
  uint64_t prefill_ns = 0;     // wall time in Prefill and prompt-only steps
  uint64_t decode_ns = 0;      // wall time in Decode and steps with a decoded token
  uint64_t attention_ns = 0;   // of those, in the attention blocks (norm, QKV, attention, out)
  uint64_t dense_ffn_ns = 0;   // ... in the dense FFNs of the leading dense layers
  MoeCounters moe;             // routing, expert waits and compute, read-ahead guesses
  WeightCacheCounters cache;   // the expert cache's (zero for the mmap source)

  // Wall time not spent waiting for expert reads.
  uint64_t compute_ns() const { return prefill_ns + decode_ns - moe.expert_wait_ns; }
  // Field by field (the cache's reads_in_flight stays "now").
  EngineCounters operator-(const EngineCounters& before) const {
    EngineCounters d = *this;
    d.prompt_tokens -= before.prompt_tokens;
    d.decoded_tokens -= before.decoded_tokens;
    d.prefill_ns -= before.prefill_ns;
    d.decode_ns -= before.decode_ns;
    d.attention_ns -= before.attention_ns;
    d.dense_ffn_ns -= before.dense_ffn_ns;
    d.moe = moe - before.moe;
    d.cache = cache - before.cache;
    return d;
  }
};

}  // namespace sluice
