// EngineOptions: how to run a model (memory, threads, context, I/O, numerics). Plain data with
// the default of every field in its comment; cli/engine_flags.h fills it from the flags.
// Thread-safety: a plain value.
#pragma once

#include <cstdint>

#include "core/ops/attention.h"
#include "io/io_backend.h"
#include "llm/weights.h"
#include "moe/expert_cache.h"
#include "moe/expert_source.h"
#include "moe/routing_hook.h"

namespace sluice {

// Context used when neither the options nor the flags set one: a KV cache for the model's full
// training context is often larger than the whole RAM budget (Qwen3-235B at 40960 positions in
// f16: 7.9 GB), so start at the size llama.cpp users know and let --ctx raise it.
inline constexpr int64_t kDefaultContextLength = 4096;

// Limits of the options below; each is checked when the engine is created.
inline constexpr int kMaxBatchSize = 1 << 16;
inline constexpr int kMaxSequences = 1024;

struct EngineOptions {
  // Bytes the whole engine may use: dense weights + KV cache + scratch + a fixed overhead, and
  // the rest goes to the expert cache. 0: no limit (the expert cache can hold every expert).
  uint64_t ram_budget_bytes = 0;
  int threads = 0;             // compute threads including the caller; 0: one per core
  int64_t context_length = 0;  // positions of the KV cache; 0: min(model's, 4096)
  int experts_per_token = 0;   // 0: the model's expert_used_count; lower is faster, and changes
                               // the output (a warning is logged)
  int batch_size = 64;         // prompt tokens per forward batch (scratch scales with it)
  int max_sequences = 1;       // sequences (each a KV cache) live at once: the engine's own one
                               // plus NewSequence()'s; the memory plan reserves this many
  KvType kv_type = KvType::kF16;
  DenseResidency dense = DenseResidency::kCopy;  // see llm/weights.h for why copy is the default
  ExpertSourceKind expert_source = ExpertSourceKind::kCache;
  bool lock_memory = false;         // mlock the dense copy, the KV cache and the cache slots
  bool dequantize_weights = false;  // compute everything on f32 copies of the weights (checks
                                    // against references computed that way; slow, big)
  IoBackendKind io = IoBackendKind::kAuto;
  int queue_depth = 16;  // reads in flight at most
  EvictionPolicyKind cache_policy = EvictionPolicyKind::kLru;
  bool verify_checksums = true;  // archives: xxh3 of every dense tensor at load and of every
                                 // expert after its read (and under --expert-source mmap)
  int prefetch_next = 2;  // decoding: predicted experts of the next layer read ahead, at most
                          // this many missing ones per layer (0: off)
  RoutingHook* routing_hook = nullptr;   // not owned; must outlive the engine
  IoFaultInjector* io_faults = nullptr;  // tests only: faults under every expert read
};

}  // namespace sluice
