// KvCache: keys and values of every layer for up to n_ctx positions, allocated once.
//   k[layer]: (n_ctx, n_head_kv * head_dim_k)    v[layer]: (n_ctx, n_head_kv * head_dim_v)
// stored as f16 (default) or f32 (core/ops/attention.h). Positions are filled in order; the
// engine tracks how many are valid.
//
// Non-goals: paging, sequence ids, shifting the context window.
// Thread-safety: none; owned by one engine.
#pragma once

#include <cstdint>

#include "core/base/aligned_buffer.h"
#include "core/base/status.h"
#include "core/ops/attention.h"

namespace sluice {

struct KvCacheShape {
  int n_layer = 0;
  int64_t n_ctx = 0;
  int64_t k_dim = 0;  // n_head_kv * head_dim_k
  int64_t v_dim = 0;  // n_head_kv * head_dim_v
  KvType type = KvType::kF16;
};

class KvCache {
 public:
  static uint64_t BytesFor(const KvCacheShape& shape);
  // ResourceExhausted when the allocation fails.
  static Result<KvCache> Create(const KvCacheShape& shape, bool lock_memory);

  KvCache() = default;
  KvCache(KvCache&&) = default;
  KvCache& operator=(KvCache&&) = default;

  // Where position `pos` of a layer's keys / values lives.
  void* k_at(int layer, int64_t pos);
  void* v_at(int layer, int64_t pos);
  KvView view(int layer) const;

  const KvCacheShape& shape() const { return shape_; }
  uint64_t bytes() const { return buffer_.size(); }

 private:
  uint64_t layer_bytes() const;
  KvCacheShape shape_;
  AlignedBuffer buffer_;  // per layer: all k rows, then all v rows
};

}  // namespace sluice
