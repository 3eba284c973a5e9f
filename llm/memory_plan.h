// MemoryPlan: how the RAM budget is split, decided before anything large is allocated.
//   fixed = dense weights + KV cache + scratch + overhead      must fit in the budget
//   expert cache = budget - fixed, at least k slots (one token's experts of one layer), at most
//                  every expert of the model (more would never be used)
// A budget below fixed + k slots is refused with ResourceExhausted saying what each part needs.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "core/base/saturating.h"
#include "core/base/status.h"
#include "io/model_file.h"
#include "llm/engine_options.h"
#include "llm/model_config.h"

namespace sluice {

// Code, thread stacks, I/O rings and request queues, the tokenizer, allocator slack: measured
// RSS of an engine on a tiny model is ~20 MiB; the margin keeps the budget honest on real ones.
inline constexpr uint64_t kFixedOverheadBytes = 64ull << 20;

struct MemoryPlan {
  uint64_t budget_bytes = 0;          // 0: unlimited
  uint64_t dense_bytes = 0;           // resident dense weights
  uint64_t kv_bytes = 0;              // KV cache
  uint64_t scratch_bytes = 0;         // activations and per-batch buffers
  uint64_t overhead_bytes = 0;        // kFixedOverheadBytes
  uint64_t slot_bytes = 0;            // one expert as the cache stores it (reads 4 KiB aligned)
  int min_slots = 0;                  // experts per token
  uint64_t all_experts_bytes = 0;     // slots for every expert of the model
  uint64_t expert_cache_bytes = 0;    // given to the expert cache (0 for the mmap source)
  uint64_t minimum_budget_bytes = 0;  // fixed + min_slots slots

  uint64_t fixed_bytes() const {
    return SatAdd(SatAdd(dense_bytes, kv_bytes), SatAdd(scratch_bytes, overhead_bytes));
  }
};

// Bytes one expert occupies in a cache slot, exactly as io/expert_cache sizes it (its reads
// aligned outward to 4 KiB, io/block_read_plan.h), maximised over the model.
Result<uint64_t> ExpertSlotBytes(const ModelFile& model, const ModelConfig& config);

// `experts_per_token` and `context_length` already resolved.
Result<MemoryPlan> PlanMemory(const ModelFile& model, const ModelConfig& config,
                              const EngineOptions& options, int experts_per_token,
                              int64_t context_length);

// "dense 1.2 GiB + KV 96 MiB + scratch 8 MiB + overhead 64 MiB + expert cache 10.6 GiB (712 slots
// of 15.3 MiB)"
std::string DescribeMemoryPlan(const MemoryPlan& plan);

}  // namespace sluice
