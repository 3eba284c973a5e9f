#include "llm/attention_block.h"

#include <cmath>
#include <cstring>

#include "core/base/byte_size.h"
#include "core/ops/activation.h"
#include "core/ops/attention.h"
#include "core/ops/norm.h"
#include "core/ops/rope.h"
#include "moe/expert_ffn.h"

namespace sluice {
namespace {

int64_t ScratchFloats(const ModelConfig& c, int max_tokens, int64_t n_ctx) {
  const int64_t gated = c.spec->attn_output_gate ? c.q_rows() + c.q_dim() : 0;  // qg_, gate_
  return max_tokens * (c.q_dim() + c.k_dim() + c.v_dim() + c.attn_out_dim() + gated) +
         c.n_head * n_ctx + c.n_rot;
}

void AddBias(const float* bias, int64_t n_tokens, int64_t dim, float* x) {
  if (bias == nullptr) return;
  for (int64_t t = 0; t < n_tokens; ++t) {
    for (int64_t i = 0; i < dim; ++i) x[t * dim + i] += bias[i];
  }
}

}  // namespace

uint64_t AttentionBlock::ScratchBytes(const ModelConfig& config, int max_tokens, int64_t n_ctx) {
  return ScratchFloats(config, max_tokens, n_ctx) * sizeof(float);
}

AttentionBlock::AttentionBlock(const ModelConfig& config, int max_tokens, int64_t n_ctx)
    : config_(config), max_tokens_(max_tokens), n_ctx_(n_ctx) {}

Result<std::unique_ptr<AttentionBlock>> AttentionBlock::Create(const ModelConfig& c, int max_tokens,
                                                               int64_t n_ctx) {
  std::unique_ptr<AttentionBlock> b(new AttentionBlock(c, max_tokens, n_ctx));
  const uint64_t bytes = ScratchBytes(c, max_tokens, n_ctx);
  b->buffer_ = AlignedBuffer(bytes);
  if (b->buffer_.data() == nullptr) {
    return ResourceExhausted("cannot allocate ", FormatBytes(bytes), " of attention scratch");
  }
  float* p = reinterpret_cast<float*>(b->buffer_.data());
  b->q_ = p;
  b->k_ = b->q_ + max_tokens * c.q_dim();
  b->v_ = b->k_ + max_tokens * c.k_dim();
  b->attn_ = b->v_ + max_tokens * c.v_dim();
  b->scores_ = b->attn_ + max_tokens * c.attn_out_dim();
  b->cos_sin_ = b->scores_ + c.n_head * n_ctx;
  if (c.spec->attn_output_gate) {
    b->qg_ = b->cos_sin_ + c.n_rot;
    b->gate_ = b->qg_ + max_tokens * c.q_rows();
  }
  return b;
}

void AttentionBlock::Forward(int model_layer, const LayerWeights& w, std::span<const Span> spans,
                             const float* xb, float* out, ThreadPool* pool) {
  const ModelConfig& c = config_;
  const int layer = c.kv_layer(model_layer);  // its index in the KV cache
  int64_t n = 0;
  for (const Span& s : spans) {
    CHECK(s.kv != nullptr && s.n >= 1 && s.pos0 + s.n <= n_ctx_) << s.n << " tokens at " << s.pos0;
    n += s.n;
  }
  CHECK(n >= 1 && n <= max_tokens_) << n << " tokens";
  if (gate_ != nullptr) {
    // Wq gives per head [query | gate]: split them.
    Linear(w.wq, xb, n, qg_, pool);
    const int64_t hd = c.head_dim_k;
    for (int64_t t = 0; t < n; ++t) {
      for (int j = 0; j < c.n_head; ++j) {
        const float* src = qg_ + t * c.q_rows() + 2 * j * hd;
        std::memcpy(q_ + t * c.q_dim() + j * hd, src, sizeof(float) * hd);
        std::memcpy(gate_ + t * c.q_dim() + j * hd, src + hd, sizeof(float) * hd);
      }
    }
  } else {
    Linear(w.wq, xb, n, q_, pool);
  }
  Linear(w.wk, xb, n, k_, pool);
  Linear(w.wv, xb, n, v_, pool);
  AddBias(w.bq, n, c.q_dim(), q_);
  AddBias(w.bk, n, c.k_dim(), k_);
  AddBias(w.bv, n, c.v_dim(), v_);

  const RopeParams rope = c.rope();
  const AttentionShape shape{c.n_head, c.n_head_kv, c.head_dim_k, c.head_dim_v};
  const float scale = c.attn_scale;
  int64_t row = 0;  // the first row of the span
  for (const Span& s : spans) {
    KvCache& kv = *s.kv;
    const KvType kv_type = kv.shape().type;
    for (int64_t i = 0; i < s.n; ++i) {
      const int64_t t = row + i;
      float* q = q_ + t * c.q_dim();
      float* k = k_ + t * c.k_dim();
      if (w.q_norm != nullptr) RmsNormRows(q, w.q_norm, c.n_head, c.head_dim_k, c.rms_eps, q);
      if (w.k_norm != nullptr) RmsNormRows(k, w.k_norm, c.n_head_kv, c.head_dim_k, c.rms_eps, k);
      RopeAngles(rope, s.pos0 + i, cos_sin_);
      RopeApply(rope, cos_sin_, c.n_head, q);
      RopeApply(rope, cos_sin_, c.n_head_kv, k);
      StoreKv(k, kv_type, kv.k_at(layer, s.pos0 + i), c.k_dim());
      StoreKv(v_ + t * c.v_dim(), kv_type, kv.v_at(layer, s.pos0 + i), c.v_dim());
    }
    const bool windowed = c.is_windowed_layer(model_layer);
    for (int64_t i = 0; i < s.n; ++i) {
      const int64_t t = row + i;
      const int64_t end = s.pos0 + i + 1;  // causal: positions [first, end)
      const int64_t first = windowed ? std::max<int64_t>(0, end - c.sliding_window) : 0;
      const KvView view{kv.k_at(layer, first), kv.v_at(layer, first), kv_type};
      Attention(shape, q_ + t * c.q_dim(), view, end - first, scale, scores_,
                attn_ + t * c.attn_out_dim(), pool, w.sinks);
    }
    row += s.n;
  }
  if (gate_ != nullptr) {  // attn *= sigmoid(gate), head by head (head_dim_v == head_dim_k)
    for (int64_t i = 0; i < n * c.attn_out_dim(); ++i) attn_[i] *= Sigmoid(gate_[i]);
  }
  Linear(w.wo, attn_, n, out, pool);
  AddBias(w.bo, n, c.n_embd, out);
}

}  // namespace sluice
