#include "moe/moe_block.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/base/byte_size.h"
#include "core/kernels/matmul.h"
#include "core/ops/activation.h"

namespace sluice {
namespace {

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Float counts of each scratch buffer, in allocation order.
struct ScratchLayout {
  int64_t router, xe, gate, up, ye, expert_out, deq;
  int64_t total() const { return router + xe + gate + up + ye + expert_out + deq; }
};

ScratchLayout Layout(const ModelConfig& c, const MoeBlockOptions& o) {
  const int64_t t = o.max_tokens;
  const int64_t n_ff = std::max(c.n_ff_exp, c.n_ff_shexp);
  return ScratchLayout{
      .router = t * c.n_expert,
      .xe = t * c.n_embd,
      .gate = t * n_ff,
      .up = t * n_ff,
      .ye = t * c.n_embd,
      .expert_out = t * o.experts_per_token * c.n_embd,
      .deq = o.dequantize_experts ? 3 * c.n_ff_exp * c.n_embd : 0,
  };
}

}  // namespace

uint64_t MoeBlock::ScratchBytes(const ModelConfig& config, const MoeBlockOptions& options) {
  return Layout(config, options).total() * sizeof(float) +
         options.max_tokens * (sizeof(Route) + options.experts_per_token * sizeof(int)) +
         (3 * config.n_expert + 1) * sizeof(int);
}

MoeBlock::MoeBlock(const ModelConfig& config, const MoeBlockOptions& options)
    : config_(config), options_(options) {}

Result<std::unique_ptr<MoeBlock>> MoeBlock::Create(const ModelConfig& config,
                                                   const MoeBlockOptions& options) {
  CHECK(options.max_tokens >= 1);
  CHECK(options.experts_per_token >= 1 && options.experts_per_token <= config.n_expert &&
        options.experts_per_token <= kMaxExpertsPerToken);
  std::unique_ptr<MoeBlock> b(new MoeBlock(config, options));
  b->router_ = RouterParams{.gating = config.gating,
                            .norm_topk = config.norm_topk,
                            .scale = config.expert_weights_scale,
                            .k = options.experts_per_token};
  b->n_ff_max_ = std::max(config.n_ff_exp, config.n_ff_shexp);
  const ScratchLayout s = Layout(config, options);
  b->buffer_ = AlignedBuffer(s.total() * sizeof(float));
  if (b->buffer_.data() == nullptr) {
    return ResourceExhausted("cannot allocate ", FormatBytes(s.total() * sizeof(float)),
                             " of MoE scratch");
  }
  float* p = reinterpret_cast<float*>(b->buffer_.data());
  auto take = [&p](int64_t n) {
    float* r = n > 0 ? p : nullptr;
    p += n;
    return r;
  };
  b->router_logits_ = take(s.router);
  b->xe_ = take(s.xe);
  b->gate_ = take(s.gate);
  b->up_ = take(s.up);
  b->ye_ = take(s.ye);
  b->expert_out_ = take(s.expert_out);
  b->deq_ = take(s.deq);
  b->routes_.resize(options.max_tokens);
  b->expert_count_.resize(config.n_expert);
  b->expert_start_.resize(config.n_expert + 1);
  b->assignments_.resize(static_cast<size_t>(options.max_tokens) * options.experts_per_token);
  b->used_experts_.reserve(config.n_expert);
  return b;
}

Status MoeBlock::RouteTokens(int layer, const LayerWeights& weights, const float* xb, int64_t n,
                             int64_t token_index0, ThreadPool* pool) {
  const int n_expert = config_.n_expert;
  Linear(weights.router, xb, n, router_logits_, pool);
  for (int64_t t = 0; t < n; ++t) {
    std::span<float> probs(router_logits_ + t * n_expert, n_expert);
    Route& route = routes_[t];
    ComputeRoute(router_, probs, &route);
    if (options_.hook != nullptr) {
      options_.hook->OnRoute(layer, token_index0 + t, probs, &route);
      RETURN_IF_ERROR(ValidateRoute(route, router_.k, n_expert, layer, token_index0 + t));
    }
  }
  // Group (token, slot) pairs by expert with a counting sort: ascending expert id, and within an
  // expert ascending token, so the order never depends on the cache.
  std::fill(expert_count_.begin(), expert_count_.end(), 0);
  for (int64_t t = 0; t < n; ++t) {
    for (int j = 0; j < routes_[t].k; ++j) ++expert_count_[routes_[t].ids[j]];
  }
  expert_start_[0] = 0;
  used_experts_.clear();
  for (int e = 0; e < n_expert; ++e) {
    expert_start_[e + 1] = expert_start_[e] + expert_count_[e];
    if (expert_count_[e] > 0) used_experts_.push_back(e);
  }
  std::fill(expert_count_.begin(), expert_count_.end(), 0);
  const int k = router_.k;
  for (int64_t t = 0; t < n; ++t) {
    for (int j = 0; j < routes_[t].k; ++j) {
      const int e = routes_[t].ids[j];
      assignments_[expert_start_[e] + expert_count_[e]++] = static_cast<int>(t * k + j);
    }
  }
  return Status::Ok();
}

ExpertWeights MoeBlock::Dequantize(const ExpertWeights& w) {
  const int64_t size = config_.n_ff_exp * config_.n_embd;
  ExpertWeights out = w;
  Matrix* matrices[3] = {&out.gate, &out.up, &out.down};
  for (int i = 0; i < 3; ++i) {
    Matrix& m = *matrices[i];
    float* dst = deq_ + i * size;
    for (int64_t r = 0; r < m.rows; ++r) DequantizeRow(m.type, m.row(r), dst + r * m.cols, m.cols);
    m.type = GgmlType::kF32;
    m.data = reinterpret_cast<const uint8_t*>(dst);
  }
  return out;
}

Status MoeBlock::RunExperts(int layer, ExpertSource& source, const float* xb, ThreadPool* pool,
                            MoeCounters* counters) {
  const int64_t n_embd = config_.n_embd;
  const int k = router_.k;
  const size_t n_used = used_experts_.size();
  const size_t ahead = static_cast<size_t>(std::max(1, source.max_ahead()));
  size_t prefetched = 0;
  for (size_t i = 0; i < n_used; ++i) {
    // Keep up to `ahead` experts (this one included) requested: all of a decode step's k at
    // once; a prompt batch's union in windows the cache can hold without evicting its own reads.
    const size_t want = std::min(n_used, i + ahead);
    if (want > prefetched) {
      source.Prefetch(layer,
                      std::span<const int>(used_experts_.data() + prefetched, want - prefetched));
      prefetched = want;
    }
    const int e = used_experts_[i];
    const uint64_t wait_start = NowNs();
    ASSIGN_OR_RETURN(HeldExpert held, source.Acquire(layer, e));
    counters->expert_wait_ns += NowNs() - wait_start;
    counters->expert_loads += 1;
    counters->expert_bytes_used +=
        held.weights.gate.bytes() + held.weights.up.bytes() + held.weights.down.bytes();
    ExpertWeights w = held.weights;
    if (options_.dequantize_experts) {
      w = Dequantize(held.weights);
      source.Release(held);  // the f32 copy is ours: free the slot right away
    }
    const int count = expert_start_[e + 1] - expert_start_[e];
    const int* assigned = assignments_.data() + expert_start_[e];
    for (int r = 0; r < count; ++r) {
      std::memcpy(xe_ + r * n_embd, xb + (assigned[r] / k) * n_embd, sizeof(float) * n_embd);
    }
    ExpertFfn(w, xe_, count, gate_, up_, ye_, pool);
    for (int r = 0; r < count; ++r) {
      std::memcpy(expert_out_ + static_cast<int64_t>(assigned[r]) * n_embd, ye_ + r * n_embd,
                  sizeof(float) * n_embd);
    }
    counters->expert_tokens += count;
    if (!options_.dequantize_experts) source.Release(held);
  }
  return Status::Ok();
}

void MoeBlock::Combine(int64_t n, float* out) const {
  const int64_t n_embd = config_.n_embd;
  const int k = router_.k;
  for (int64_t t = 0; t < n; ++t) {
    const Route& route = routes_[t];
    float* o = out + t * n_embd;
    const float* y0 = expert_out_ + (t * k) * n_embd;
    for (int64_t d = 0; d < n_embd; ++d) o[d] = route.weights[0] * y0[d];
    for (int j = 1; j < route.k; ++j) {
      const float* y = expert_out_ + (t * k + j) * n_embd;
      const float w = route.weights[j];
      for (int64_t d = 0; d < n_embd; ++d) o[d] += w * y[d];
    }
  }
}

void MoeBlock::AddSharedExpert(const LayerWeights& weights, const float* xb, int64_t n, float* out,
                               ThreadPool* pool) {
  const int64_t n_embd = config_.n_embd;
  const ExpertWeights shared{weights.shexp_gate, weights.shexp_up, weights.shexp_down};
  ExpertFfn(shared, xb, n, gate_, up_, ye_, pool);
  for (int64_t t = 0; t < n; ++t) {
    float scale = 1.0f;
    if (weights.shexp_gate_inp != nullptr) {
      float dot = 0.0f;
      for (int64_t d = 0; d < n_embd; ++d) dot += weights.shexp_gate_inp[d] * xb[t * n_embd + d];
      scale = Sigmoid(dot);
    }
    for (int64_t d = 0; d < n_embd; ++d) out[t * n_embd + d] += scale * ye_[t * n_embd + d];
  }
}

Status MoeBlock::Forward(int layer, const LayerWeights& weights, ExpertSource& source,
                         const float* xb, int64_t n, int64_t token_index0, float* out,
                         ThreadPool* pool, MoeCounters* counters) {
  CHECK(n >= 1 && n <= options_.max_tokens) << n;
  RETURN_IF_ERROR(RouteTokens(layer, weights, xb, n, token_index0, pool));
  RETURN_IF_ERROR(RunExperts(layer, source, xb, pool, counters));
  Combine(n, out);
  if (config_.has_shared_expert()) AddSharedExpert(weights, xb, n, out, pool);
  return Status::Ok();
}

}  // namespace sluice
