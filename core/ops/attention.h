// Causal grouped-query attention of one query position over a KV cache.
//
// KV cache layout (per layer), stored as f16 (default: half the bytes, the error is far below the
// quantization noise of the weights) or f32 (bit-faithful, used to compare with references):
//   k: (n_ctx, n_head_kv, head_dim_k)    v: (n_ctx, n_head_kv, head_dim_v)
// Query head h reads kv head h / (n_head / n_head_kv).
//
// Attention sinks (gpt-oss): a learned per-head logit that joins every softmax's denominator with
// no value vector: p_u = exp(s_u - M) / (sum_u' exp(s_u' - M) + exp(sink - M)), M the largest of
// the scores and the sink. Sliding windows are the caller's: a view starting at the window's first
// position, with n_kv the window's length.
// Non-goals: flash-style tiling, ALiBi.
// The query heads that share a kv head run together (up to 8 at a time: each k and v row is
// loaded once for all of them), each with the operations it gets alone.
// Thread-safety: pure functions on caller-owned buffers; Attention() splits those head groups
// over the pool (each head is computed by exactly one thread, so results never depend on the
// thread count).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/threads/thread_pool.h"

namespace sluice {

enum class KvType { kF16, kF32 };
size_t KvTypeBytes(KvType type);  // bytes per element: 2 or 4
const char* KvTypeName(KvType type);

// dst[0..n) <- src converted to `type` (f16: round to nearest even).
void StoreKv(const float* src, KvType type, void* dst, int64_t n);
// dst[0..n) <- the stored values as f32.
void LoadKv(const void* src, KvType type, float* dst, int64_t n);

struct AttentionShape {
  int n_head = 0;
  int n_head_kv = 0;   // divides n_head
  int head_dim_k = 0;  // q and k elements per head
  int head_dim_v = 0;  // v and output elements per head
};

// One layer's cache as the op sees it (read-only).
struct KvView {
  const void* k = nullptr;  // (n_ctx, n_head_kv, head_dim_k)
  const void* v = nullptr;  // (n_ctx, n_head_kv, head_dim_v)
  KvType type = KvType::kF16;
};

// out[h] = sum_p softmax_p(scale * q[h] . k[p][g(h)]) * v[p][g(h)], p in [0, n_kv): the query
// attends to the first n_kv cached positions (causality is the caller choosing n_kv = pos + 1).
//   q: (n_head, head_dim_k)   scores: scratch (n_head, n_kv)   out: (n_head, head_dim_v)
// sinks: (n_head) logits, or null.
void Attention(const AttentionShape& shape, const float* q, const KvView& kv, int64_t n_kv,
               float scale, float* scores, float* out, ThreadPool* pool,
               const float* sinks = nullptr);

}  // namespace sluice
