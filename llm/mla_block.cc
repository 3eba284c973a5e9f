#include "llm/mla_block.h"

#include <cstring>

#include "core/base/byte_size.h"
#include "core/ops/attention.h"
#include "core/ops/norm.h"
#include "core/ops/rope.h"

namespace sluice {
namespace {

int64_t ScratchFloats(const ModelConfig& c, int max_tokens, int64_t n_ctx) {
  const MlaShape& m = c.mla;
  const int64_t head_q = m.nope + m.rope, cached = m.kv_lora + m.rope;
  return int64_t{max_tokens} * (m.q_lora + c.n_head * head_q + cached + c.n_head * m.v_head) +
         c.n_head * cached + cached + int64_t{c.n_head} * m.kv_lora + c.n_head * n_ctx + m.rope;
}

// Head j's block of a per-head matrix stored as n_head consecutive (rows, cols) matrices.
Matrix HeadBlock(const Matrix& m, int j, int64_t rows) {
  return Matrix{m.type, m.data + static_cast<uint64_t>(j) * rows * RowBytes(m.type, m.cols), rows,
                m.cols};
}

}  // namespace

uint64_t MlaBlock::ScratchBytes(const ModelConfig& config, int max_tokens, int64_t n_ctx) {
  return static_cast<uint64_t>(ScratchFloats(config, max_tokens, n_ctx)) * sizeof(float);
}

Result<std::unique_ptr<MlaBlock>> MlaBlock::Create(const ModelConfig& c, int max_tokens,
                                                   int64_t n_ctx) {
  std::unique_ptr<MlaBlock> b(new MlaBlock(c, max_tokens, n_ctx));
  const uint64_t bytes = ScratchBytes(c, max_tokens, n_ctx);
  b->buffer_ = AlignedBuffer(bytes);
  if (b->buffer_.data() == nullptr) {
    return ResourceExhausted("cannot allocate ", FormatBytes(bytes), " of MLA scratch");
  }
  const MlaShape& m = c.mla;
  const int64_t head_q = m.nope + m.rope, cached = m.kv_lora + m.rope;
  float* p = reinterpret_cast<float*>(b->buffer_.data());
  b->cq_ = p;
  b->q_ = b->cq_ + int64_t{max_tokens} * m.q_lora;
  b->kv_ = b->q_ + int64_t{max_tokens} * c.n_head * head_q;
  b->o_ = b->kv_ + int64_t{max_tokens} * cached;
  b->q_abs_ = b->o_ + int64_t{max_tokens} * c.n_head * m.v_head;
  b->k_ = b->q_abs_ + int64_t{c.n_head} * cached;
  b->heads_ = b->k_ + cached;
  b->scores_ = b->heads_ + int64_t{c.n_head} * m.kv_lora;
  b->cos_sin_ = b->scores_ + int64_t{c.n_head} * n_ctx;
  return b;
}

void MlaBlock::Forward(int layer, const MlaWeights& w, std::span<const AttentionBlock::Span> spans,
                       const float* xb, float* out, ThreadPool* pool) {
  const ModelConfig& c = config_;
  const MlaShape& m = c.mla;
  const int64_t head_q = m.nope + m.rope, cached = m.kv_lora + m.rope;
  int64_t n = 0;
  for (const AttentionBlock::Span& s : spans) {
    CHECK(s.kv != nullptr && s.n >= 1 && s.pos0 + s.n <= n_ctx_) << s.n << " tokens at " << s.pos0;
    n += s.n;
  }
  CHECK(n >= 1 && n <= max_tokens_) << n << " tokens";
  if (m.q_lora > 0) {
    Linear(w.q_a, xb, n, cq_, pool);
    RmsNormRows(cq_, w.q_a_norm, n, m.q_lora, c.rms_eps, cq_);
    Linear(w.q_b, cq_, n, q_, pool);
  } else {
    Linear(w.q, xb, n, q_, pool);
  }
  Linear(w.kv_a, xb, n, kv_, pool);

  // The rotary dims first in the cached key and the absorbed queries: [pe | latent].
  RopeParams rope = c.rope();
  rope.head_dim = static_cast<int>(cached);
  const AttentionShape shape{c.n_head, 1, static_cast<int>(cached), m.kv_lora};
  int64_t row = 0;
  for (const AttentionBlock::Span& s : spans) {
    KvCache& kv = *s.kv;
    const KvType kv_type = kv.shape().type;
    for (int64_t i = 0; i < s.n; ++i) {
      const int64_t t = row + i;
      const float* kv_t = kv_ + t * cached;
      std::memcpy(k_, kv_t + m.kv_lora, sizeof(float) * m.rope);      // k_pe
      RmsNorm(kv_t, w.kv_a_norm, m.kv_lora, c.rms_eps, k_ + m.rope);  // c
      for (int j = 0; j < c.n_head; ++j) {
        const float* qj = q_ + t * c.n_head * head_q + j * head_q;  // [nope | pe]
        float* dst = q_abs_ + j * cached;
        std::memcpy(dst, qj + m.nope, sizeof(float) * m.rope);
        Linear(HeadBlock(w.k_b, j, m.kv_lora), qj, 1, dst + m.rope, nullptr);
      }
      RopeAngles(rope, s.pos0 + i, cos_sin_);
      RopeApply(rope, cos_sin_, c.n_head, q_abs_);
      RopeApply(rope, cos_sin_, 1, k_);
      StoreKv(k_, kv_type, kv.k_at(layer, s.pos0 + i), cached);
      StoreKv(k_ + m.rope, kv_type, kv.v_at(layer, s.pos0 + i), m.kv_lora);
      Attention(shape, q_abs_, kv.view(layer), s.pos0 + i + 1, c.attn_scale, scores_, heads_, pool);
      for (int j = 0; j < c.n_head; ++j) {
        Linear(HeadBlock(w.v_b, j, m.v_head), heads_ + j * m.kv_lora, 1,
               o_ + t * c.n_head * m.v_head + j * m.v_head, nullptr);
      }
    }
    row += s.n;
  }
  Linear(w.out, o_, n, out, pool);
}

}  // namespace sluice
