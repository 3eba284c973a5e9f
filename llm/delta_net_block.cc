#include "llm/delta_net_block.h"

#include <cmath>
#include <cstring>

#include "core/base/byte_size.h"
#include "core/ops/activation.h"

namespace sluice {
namespace {

// log(1 + e^x), exact to float for large x (where e^x overflows).
float Softplus(float x) { return x > 20.0f ? x : std::log1p(std::exp(x)); }

// x / max(|x|, eps) over n values.
void L2Normalize(float* x, int64_t n, float eps) {
  float ss = 0.0f;
  for (int64_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float scale = 1.0f / std::fmax(std::sqrt(ss), eps);
  for (int64_t i = 0; i < n; ++i) x[i] *= scale;
}

int64_t ScratchFloats(const ModelConfig& c, int max_tokens) {
  const DeltaNetShape& s = c.delta_net;
  return int64_t{max_tokens} * (s.conv_dim() + 2 * s.v_dim() + 4 * int64_t{s.n_v_heads}) +
         s.conv_dim();
}

}  // namespace

uint64_t RecurrentState::BytesFor(const ModelConfig& c) {
  return static_cast<uint64_t>(c.n_delta_net_layers()) *
         static_cast<uint64_t>(c.delta_net.state_floats()) * sizeof(float);
}

Result<RecurrentState> RecurrentState::Create(const ModelConfig& c, bool lock_memory) {
  RecurrentState s;
  const uint64_t bytes = BytesFor(c);
  if (bytes == 0) return s;
  s.buffer_ = AlignedBuffer(bytes, AllocOptions{.lock = lock_memory});
  if (s.buffer_.data() == nullptr) {
    return ResourceExhausted("cannot allocate ", FormatBytes(bytes), " of recurrent state");
  }
  s.conv_floats_ = int64_t{c.delta_net.conv_kernel - 1} * c.delta_net.conv_dim();
  s.layer_floats_ = c.delta_net.state_floats();
  return s;
}

void RecurrentState::Reset() {
  if (buffer_.size() > 0) std::memset(buffer_.data(), 0, buffer_.size());
}

float* RecurrentState::conv(int state_layer) {
  return reinterpret_cast<float*>(buffer_.data()) + state_layer * layer_floats_;
}

float* RecurrentState::matrix(int state_layer) { return conv(state_layer) + conv_floats_; }

uint64_t DeltaNetBlock::ScratchBytes(const ModelConfig& c, int max_tokens) {
  return static_cast<uint64_t>(ScratchFloats(c, max_tokens)) * sizeof(float);
}

Result<std::unique_ptr<DeltaNetBlock>> DeltaNetBlock::Create(const ModelConfig& c, int max_tokens) {
  std::unique_ptr<DeltaNetBlock> b(new DeltaNetBlock(c, max_tokens));
  const uint64_t bytes = ScratchBytes(c, max_tokens);
  b->buffer_ = AlignedBuffer(bytes);
  if (b->buffer_.data() == nullptr) {
    return ResourceExhausted("cannot allocate ", FormatBytes(bytes), " of delta-net scratch");
  }
  const DeltaNetShape& s = c.delta_net;
  float* p = reinterpret_cast<float*>(b->buffer_.data());
  b->qkv_ = p;
  b->z_ = b->qkv_ + max_tokens * s.conv_dim();
  b->o_ = b->z_ + max_tokens * s.v_dim();
  b->ba_ = b->o_ + max_tokens * s.v_dim();
  b->beta_ = b->ba_ + max_tokens * 2 * s.n_v_heads;
  b->alpha_ = b->beta_ + max_tokens * s.n_v_heads;
  b->conv_out_ = b->alpha_ + max_tokens * s.n_v_heads;
  return b;
}

void DeltaNetBlock::Forward(int layer, const DeltaNetWeights& w, std::span<const Span> spans,
                            const float* xb, float* out, ThreadPool* pool) {
  const DeltaNetShape& s = config_.delta_net;
  const int nv = s.n_v_heads;
  int64_t n = 0;
  for (const Span& span : spans) {
    CHECK(span.state != nullptr && !span.state->empty() && span.n >= 1);
    n += span.n;
  }
  CHECK(n >= 1 && n <= max_tokens_) << n << " tokens";
  Linear(w.qkv, xb, n, qkv_, pool);
  Linear(w.gate, xb, n, z_, pool);
  if (w.ba.data != nullptr) {
    // Qwen3-Next packs, per k head i, [beta of v heads i r .. i r + r - 1, then their alpha].
    Linear(w.ba, xb, n, ba_, pool);
    const int r = nv / s.n_k_heads;
    for (int64_t t = 0; t < n; ++t) {
      const float* row = ba_ + t * 2 * nv;
      for (int h = 0; h < nv; ++h) {
        beta_[t * nv + h] = row[(h / r) * 2 * r + h % r];
        alpha_[t * nv + h] = row[(h / r) * 2 * r + r + h % r];
      }
    }
  } else {
    Linear(w.beta, xb, n, beta_, pool);
    Linear(w.alpha, xb, n, alpha_, pool);
  }
  const int state_layer = config_.state_layer(layer);
  int64_t row = 0;
  for (const Span& span : spans) {
    for (int64_t i = 0; i < span.n; ++i) Token(w, *span.state, state_layer, row + i);
    row += span.n;
  }
  Linear(w.out, o_, n, out, pool);
}

void DeltaNetBlock::Token(const DeltaNetWeights& w, RecurrentState& state, int state_layer,
                          int64_t t) {
  const DeltaNetShape& s = config_.delta_net;
  const int64_t conv_dim = s.conv_dim();
  const int K = s.conv_kernel;
  const int ds = s.state_size;
  const int nk = s.n_k_heads, nv = s.n_v_heads;
  const float eps = config_.rms_eps;

  // Causal depthwise convolution over the last K inputs (K-1 kept in the state), then silu;
  // the state then drops its oldest input and keeps this one.
  float* window = state.conv(state_layer);  // (K-1, conv_dim)
  const float* x = qkv_ + t * conv_dim;
  for (int64_t c = 0; c < conv_dim; ++c) {
    const float* taps = w.conv + c * K;
    float acc = 0.0f;
    for (int j = 0; j < K - 1; ++j) acc += window[j * conv_dim + c] * taps[j];
    acc += x[c] * taps[K - 1];
    conv_out_[c] = Silu(acc);
  }
  if (K > 1) {
    std::memmove(window, window + conv_dim, sizeof(float) * (K - 2) * conv_dim);
    std::memcpy(window + (K - 2) * conv_dim, x, sizeof(float) * conv_dim);
  }

  float* q = conv_out_;
  float* k = q + int64_t{nk} * ds;
  const float* v = k + int64_t{nk} * ds;
  for (int i = 0; i < nk; ++i) {
    L2Normalize(q + int64_t{i} * ds, ds, eps);
    L2Normalize(k + int64_t{i} * ds, ds, eps);
  }
  const float q_scale = 1.0f / std::sqrt(static_cast<float>(ds));
  const int r = nv / nk;
  float* o = o_ + t * s.v_dim();
  const float* z = z_ + t * s.v_dim();
  float sk[1024], d[1024];  // ds <= 1024 (model_config.cc)
  for (int h = 0; h < nv; ++h) {
    const int i = config_.spec->delta_net == DeltaNetKind::kGrouped ? h / r : h % nk;
    const float* qi = q + int64_t{i} * ds;
    const float* ki = k + int64_t{i} * ds;
    const float* vh = v + int64_t{h} * ds;
    const float beta = Sigmoid(beta_[t * nv + h]);
    const float decay = std::exp(Softplus(alpha_[t * nv + h] + w.dt_bias[h]) * w.ssm_a[h]);
    float* S = state.matrix(state_layer) + int64_t{h} * ds * ds;  // [key][value]
    // S = decay S;  sk = S^T k
    for (int vd = 0; vd < ds; ++vd) sk[vd] = 0.0f;
    for (int kd = 0; kd < ds; ++kd) {
      float* row = S + int64_t{kd} * ds;
      for (int vd = 0; vd < ds; ++vd) {
        row[vd] *= decay;
        sk[vd] += row[vd] * ki[kd];
      }
    }
    for (int vd = 0; vd < ds; ++vd) d[vd] = beta * (vh[vd] - sk[vd]);
    // S += k d^T;  o = S^T q / sqrt(ds)
    float* oh = o + int64_t{h} * ds;
    for (int vd = 0; vd < ds; ++vd) oh[vd] = 0.0f;
    for (int kd = 0; kd < ds; ++kd) {
      float* row = S + int64_t{kd} * ds;
      const float qk = qi[kd] * q_scale;
      for (int vd = 0; vd < ds; ++vd) {
        row[vd] += ki[kd] * d[vd];
        oh[vd] += row[vd] * qk;
      }
    }
    // Gated RMSNorm over the head.
    float ss = 0.0f;
    for (int vd = 0; vd < ds; ++vd) ss += oh[vd] * oh[vd];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(ds) + eps);
    const float* zh = z + int64_t{h} * ds;
    for (int vd = 0; vd < ds; ++vd) oh[vd] = oh[vd] * inv * w.norm[vd] * Silu(zh[vd]);
  }
}

}  // namespace sluice
