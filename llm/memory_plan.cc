#include "llm/memory_plan.h"

#include <algorithm>

#include "core/base/byte_size.h"
#include "core/base/saturating.h"
#include "io/block_read_plan.h"
#include "llm/attention_block.h"
#include "llm/kv_cache.h"
#include "llm/mla_block.h"
#include "llm/run_state.h"
#include "moe/expert_cache.h"
#include "moe/moe_block.h"

namespace sluice {
namespace {

uint64_t ScratchBytes(const ModelConfig& c, const EngineOptions& o, int k, int64_t n_ctx) {
  const int batch = std::max(1, o.batch_size);
  const uint64_t residual = RunState::Bytes(c.n_embd, batch, c.n_ff);  // x, xb, block output, FFN
  // Each sequence's logits and token history; a step of several sequences gathers their logits.
  const uint64_t sequences = static_cast<uint64_t>(std::max(1, o.max_sequences));
  const uint64_t per_sequence = static_cast<uint64_t>(c.n_vocab) * sizeof(float) +
                                static_cast<uint64_t>(n_ctx) * sizeof(int32_t);
  const uint64_t step_logits =
      sequences > 1 ? SatMul(sequences, static_cast<uint64_t>(c.n_vocab) * sizeof(float)) : 0;
  const MoeBlockOptions moe{
      .max_tokens = batch, .experts_per_token = k, .dequantize_experts = o.dequantize_weights};
  return SatAdd(SatAdd(residual, SatMul(sequences, per_sequence)),
                SatAdd(step_logits, SatAdd(c.spec->attention == AttentionKind::kMla
                                               ? MlaBlock::ScratchBytes(c, batch, n_ctx)
                                               : AttentionBlock::ScratchBytes(c, batch, n_ctx),
                                           MoeBlock::ScratchBytes(c.moe(), moe))) +
                    (c.n_delta_net_layers() > 0 ? DeltaNetBlock::ScratchBytes(c, batch) : 0));
}

}  // namespace

Result<uint64_t> ExpertSlotBytes(const ModelFile& model, const ModelConfig& config) {
  uint64_t slot = 0;
  for (int l = 0; l < config.n_layer; ++l) {
    if (!config.is_moe_layer(l)) continue;
    for (int e = 0; e < config.n_expert; ++e) {
      ASSIGN_OR_RETURN(BlockReadPlan plan, PlanBlockRead(ExpertBlock(model.LocateExpert(l, e))));
      slot = std::max(slot, plan.slot_bytes);
    }
  }
  return slot;
}

Result<MemoryPlan> PlanMemory(const ModelFile& model, const ModelConfig& c, const EngineOptions& o,
                              int k, int64_t n_ctx) {
  MemoryPlan p;
  p.budget_bytes = o.ram_budget_bytes;
  p.dense_bytes = ModelWeights::ResidentBytes(
      model, c, WeightOptions{.residency = o.dense, .dequantize_to_f32 = o.dequantize_weights});
  // Per sequence: the attention layers' KV cache and the delta-net layers' recurrent state.
  p.kv_bytes = SatMul(SatAdd(KvCache::BytesFor(KvCacheShape{.n_layer = c.n_attention_layers(),
                                                            .n_ctx = n_ctx,
                                                            .k_dim = c.k_dim(),
                                                            .v_dim = c.v_dim(),
                                                            .type = o.kv_type}),
                             RecurrentState::BytesFor(c)),
                      static_cast<uint64_t>(std::max(1, o.max_sequences)));
  p.scratch_bytes = ScratchBytes(c, o, k, n_ctx);
  p.overhead_bytes = kFixedOverheadBytes;
  const bool cached = o.expert_source == ExpertSourceKind::kCache;
  if (cached) {
    ASSIGN_OR_RETURN(p.slot_bytes, ExpertSlotBytes(model, c));
    p.min_slots = k;
    p.all_experts_bytes = p.slot_bytes * (c.n_layer - c.n_dense_layers) * c.n_expert;
  }
  p.minimum_budget_bytes = p.fixed_bytes() + p.slot_bytes * p.min_slots;
  if (p.budget_bytes == 0) {
    p.expert_cache_bytes = p.all_experts_bytes;
    return p;
  }
  if (p.budget_bytes < p.minimum_budget_bytes) {
    std::string experts = cached
                              ? StrCat(" + expert cache ", FormatBytes(p.slot_bytes * p.min_slots),
                                       " (", k, " experts of ", FormatBytes(p.slot_bytes), ")")
                              : std::string();
    return ResourceExhausted(
        "RAM budget ", FormatBytes(p.budget_bytes), " is too small for ", model.path(),
        ": it needs at least ", FormatBytes(p.minimum_budget_bytes), " = dense weights ",
        FormatBytes(p.dense_bytes), " + KV cache ", FormatBytes(p.kv_bytes), " (", n_ctx,
        " positions) + scratch ", FormatBytes(p.scratch_bytes), " + overhead ",
        FormatBytes(p.overhead_bytes), experts, "; raise --ram, or lower --ctx or --batch",
        p.dense_bytes > p.budget_bytes / 2
            ? StrCat(", or use a file whose dense (non-expert) tensors take fewer bits: here "
                     "they alone are ",
                     FormatBytes(p.dense_bytes))
            : "");
  }
  if (cached) {
    p.expert_cache_bytes = std::min(p.budget_bytes - p.fixed_bytes(), p.all_experts_bytes);
  }
  return p;
}

std::string DescribeMemoryPlan(const MemoryPlan& p) {
  std::string s =
      StrCat("dense ", FormatBytes(p.dense_bytes), " + KV ", FormatBytes(p.kv_bytes), " + scratch ",
             FormatBytes(p.scratch_bytes), " + overhead ", FormatBytes(p.overhead_bytes));
  if (p.slot_bytes > 0) {
    s += StrCat(" + expert cache ", FormatBytes(p.expert_cache_bytes), " (",
                p.expert_cache_bytes / p.slot_bytes, " slots of ", FormatBytes(p.slot_bytes), ")");
  }
  if (p.budget_bytes > 0) s += StrCat(", budget ", FormatBytes(p.budget_bytes));
  return s;
}

}  // namespace sluice
