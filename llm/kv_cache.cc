#include "llm/kv_cache.h"

#include "core/base/byte_size.h"
#include "core/base/saturating.h"

namespace sluice {

uint64_t KvCache::BytesFor(const KvCacheShape& s) {
  return SatMul(SatMul(static_cast<uint64_t>(s.n_layer), static_cast<uint64_t>(s.n_ctx)),
                SatMul(static_cast<uint64_t>(s.k_dim + s.v_dim), KvTypeBytes(s.type)));
}

Result<KvCache> KvCache::Create(const KvCacheShape& shape, bool lock_memory) {
  KvCache cache;
  cache.shape_ = shape;
  const uint64_t bytes = BytesFor(shape);
  cache.buffer_ = AlignedBuffer(bytes, AllocOptions{.lock = lock_memory});
  if (bytes > 0 && cache.buffer_.data() == nullptr) {
    return ResourceExhausted("cannot allocate the KV cache: ", FormatBytes(bytes), " for ",
                             shape.n_ctx, " positions (lower --ctx)");
  }
  return cache;
}

uint64_t KvCache::layer_bytes() const {
  return static_cast<uint64_t>(shape_.n_ctx) * (shape_.k_dim + shape_.v_dim) *
         KvTypeBytes(shape_.type);
}

void* KvCache::k_at(int layer, int64_t pos) {
  DCHECK(layer >= 0 && layer < shape_.n_layer && pos >= 0 && pos < shape_.n_ctx);
  return buffer_.data() + layer * layer_bytes() + pos * shape_.k_dim * KvTypeBytes(shape_.type);
}

void* KvCache::v_at(int layer, int64_t pos) {
  DCHECK(layer >= 0 && layer < shape_.n_layer && pos >= 0 && pos < shape_.n_ctx);
  const uint64_t v_start = shape_.n_ctx * shape_.k_dim * KvTypeBytes(shape_.type);
  return buffer_.data() + layer * layer_bytes() + v_start +
         pos * shape_.v_dim * KvTypeBytes(shape_.type);
}

KvView KvCache::view(int layer) const {
  KvCache* self = const_cast<KvCache*>(this);
  return KvView{self->k_at(layer, 0), self->v_at(layer, 0), shape_.type};
}

}  // namespace sluice
