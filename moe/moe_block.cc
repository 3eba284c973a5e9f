#include "moe/moe_block.h"

#include <algorithm>
#include <cstring>

#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/kernels/matmul.h"
#include "core/ops/activation.h"

namespace sluice {
namespace {

// Float counts of each scratch buffer, in allocation order.
struct ScratchLayout {
  int64_t router, xe, gate, up, ye, expert_out, deq, shared_out;
  int64_t total() const { return router + xe + gate + up + ye + expert_out + deq + shared_out; }
};

ScratchLayout Layout(const MoeShape& c, const MoeBlockOptions& o) {
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
      .shared_out = c.has_shared_expert() ? t * c.n_embd : 0,
  };
}

// Experts whose reads may be started ahead of their use: as many as the cache holds, at most what
// one AcquireAny can wait on.
size_t ReadWindow(const ExpertSource& source) {
  return static_cast<size_t>(std::clamp(source.max_ahead(), 1, kMaxAcquireAnyExperts));
}

}  // namespace

uint64_t MoeBlock::ScratchBytes(const MoeShape& config, const MoeBlockOptions& options) {
  return Layout(config, options).total() * sizeof(float) +
         options.max_tokens *
             (sizeof(Route) + sizeof(float) + options.experts_per_token * sizeof(int)) +
         (4 * config.n_expert + 1) * sizeof(int);
}

MoeBlock::MoeBlock(const MoeShape& config, const MoeBlockOptions& options, ExpertSource* source,
                   ThreadPool* pool)
    : config_(config),
      options_(options),
      router_{.gating = config.gating,
              .norm_topk = config.norm_topk,
              .scale = config.expert_weights_scale,
              .k = options.experts_per_token,
              .n_groups = config.n_groups,
              .n_groups_used = config.n_groups_used},
      source_(source),
      pool_(pool),
      read_ahead_(router_, options.prefetch_next, source, options.hook, &counters_) {}

Result<std::unique_ptr<MoeBlock>> MoeBlock::Create(const MoeShape& config,
                                                   const MoeBlockOptions& options,
                                                   ExpertSource* source, ThreadPool* pool) {
  CHECK(source != nullptr && pool != nullptr);
  CHECK(options.max_tokens >= 1);
  CHECK(options.experts_per_token >= 1 && options.experts_per_token <= config.n_expert &&
        options.experts_per_token <= kMaxExpertsPerToken);
  std::unique_ptr<MoeBlock> b(new MoeBlock(config, options, source, pool));
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
  b->shared_out_ = take(s.shared_out);
  b->shared_scale_.resize(options.max_tokens);
  b->routes_.resize(options.max_tokens);
  b->expert_count_.resize(config.n_expert);
  b->expert_start_.resize(config.n_expert + 1);
  b->assignments_.resize(static_cast<size_t>(options.max_tokens) * options.experts_per_token);
  b->used_experts_.reserve(config.n_expert);
  b->pending_.reserve(config.n_expert);
  b->held_.reserve(config.n_expert);
  return b;
}

Status MoeBlock::RouteTokens(Layer layer, const float* xb, int64_t n, int64_t token_index0) {
  const int n_expert = config_.n_expert;
  Linear(layer.weights->router, xb, n, router_logits_, pool_);
  for (int64_t t = 0; t < n; ++t) {
    std::span<float> probs(router_logits_ + t * n_expert, n_expert);
    if (layer.weights->router_bias != nullptr) {
      for (int e = 0; e < n_expert; ++e) probs[e] += layer.weights->router_bias[e];
    }
    Route& route = routes_[t];
    ComputeRoute(router_, probs, &route, layer.weights->selection_bias);
    if (options_.hook != nullptr) {
      if (!row_streams_.empty()) options_.hook->SetStream(row_streams_[t]);
      options_.hook->OnRoute(layer.index, token_index0 + t, probs, &route);
      RETURN_IF_ERROR(options_.hook->status());
      RETURN_IF_ERROR(ValidateRoute(route, router_.k, n_expert, layer.index, token_index0 + t));
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

void MoeBlock::IssueReads(int layer, size_t done, size_t window, size_t* issued) {
  const size_t want = std::min(used_experts_.size(), done + window);
  if (want <= *issued) return;
  std::span<const int> ids(used_experts_.data() + *issued, want - *issued);
  source_->Prefetch(layer, ids);
  pending_.insert(pending_.end(), ids.begin(), ids.end());
  *issued = want;
}

void MoeBlock::SetRowStreams(std::span<const int32_t> streams) {
  CHECK(static_cast<int64_t>(streams.size()) <= options_.max_tokens) << streams.size();
  row_streams_.assign(streams.begin(), streams.end());
}

void MoeBlock::ReadAheadFirst(Layer layer, const float* xb, int64_t token_index) {
  if (!read_ahead_.enabled()) return;
  if (options_.hook != nullptr)
    options_.hook->SetStream(row_streams_.empty() ? 0 : row_streams_[0]);
  read_ahead_.Guess(layer.index, *layer.weights, xb, token_index, router_logits_, config_.n_expert,
                    pool_);
}

Status MoeBlock::RunExperts(int layer, const float* xb, size_t issued, Layer next, int64_t token) {
  ExpertSource& source = *source_;
  MoeCounters* counters = &counters_;
  const int64_t n_embd = config_.n_embd;
  const int k = router_.k;
  const size_t n_used = used_experts_.size();
  const size_t window = ReadWindow(source);
  // When the whole layer's reads were started at once (decoding, small batches), keep every
  // expert pinned until the layer is done and release them in expert order: the cache's
  // recency order (and so every later hit and eviction) then does not depend on which read
  // happened to complete first. A larger batch streams through a window and must release as it
  // goes; its recency order follows completion.
  const bool hold = issued == n_used;
  held_.clear();
  struct ReleaseHeld {
    MoeBlock* block;
    ExpertSource& source;
    ~ReleaseHeld() {
      std::sort(block->held_.begin(), block->held_.end(),
                [](const HeldExpert& a, const HeldExpert& b) { return a.expert < b.expert; });
      for (HeldExpert& h : block->held_) source.Release(h);
      block->held_.clear();
    }
  } release_held{this, source};
  for (size_t done = 0; done < n_used; ++done) {
    IssueReads(layer, done, window, &issued);
    int index = 0;
    const uint64_t wait_start = NowNs();
    ASSIGN_OR_RETURN(HeldExpert held, source.AcquireAny(layer, pending_, &index));
    counters->expert_wait_ns += NowNs() - wait_start;
    const int e = pending_[index];
    // Keep issue order among the rest: when several are ready, the oldest read goes first.
    pending_.erase(pending_.begin() + index);
    if (next.weights != nullptr && issued == n_used &&
        (pending_.empty() || source.reads_in_flight() == 0)) {
      // This layer's last read is in (checked on the device, not by our acquiring it: the
      // experts still to compute would delay it by their compute time): from here until the
      // next layer routes (the remaining experts, the next attention) the device would idle.
      // Reading ahead only now never takes bandwidth from reads this layer waits for.
      // router_logits_ is free: this layer's route is already computed.
      read_ahead_.Guess(next.index, *next.weights, xb, token, router_logits_, config_.n_expert,
                        pool_);
      next.weights = nullptr;
    }
    counters->expert_loads += 1;
    counters->expert_bytes_used +=
        held.weights.gate.bytes() + held.weights.up.bytes() + held.weights.down.bytes();
    held.expert = e;
    ExpertWeights w = held.weights;
    if (options_.dequantize_experts) w = Dequantize(held.weights);  // the f32 copy is ours
    if (current_->expert_gate_bias != nullptr) {
      w.gate_bias = current_->expert_gate_bias + static_cast<int64_t>(e) * config_.n_ff_exp;
      w.up_bias = current_->expert_up_bias + static_cast<int64_t>(e) * config_.n_ff_exp;
      w.down_bias = current_->expert_down_bias + static_cast<int64_t>(e) * n_embd;
    }
    if (config_.oai_swiglu) w.activation = FfnActivation::kSwiGluOai;
    const int count = expert_start_[e + 1] - expert_start_[e];
    const int* assigned = assignments_.data() + expert_start_[e];
    for (int r = 0; r < count; ++r) {
      std::memcpy(xe_ + r * n_embd, xb + (assigned[r] / k) * n_embd, sizeof(float) * n_embd);
    }
    const uint64_t compute_start = NowNs();
    ExpertFfn(w, xe_, count, gate_, up_, ye_, pool_);
    counters->expert_compute_ns += NowNs() - compute_start;
    for (int r = 0; r < count; ++r) {
      std::memcpy(expert_out_ + static_cast<int64_t>(assigned[r]) * n_embd, ye_ + r * n_embd,
                  sizeof(float) * n_embd);
    }
    counters->expert_tokens += count;
    if (hold) {
      held_.push_back(held);
    } else {
      source.Release(held);
    }
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

void MoeBlock::RunSharedExpert(const MoeLayerWeights& weights, const float* xb, int64_t n) {
  const int64_t n_embd = config_.n_embd;
  const ExpertWeights shared{weights.shexp_gate, weights.shexp_up, weights.shexp_down};
  ExpertFfn(shared, xb, n, gate_, up_, shared_out_, pool_);
  for (int64_t t = 0; t < n; ++t) {
    float scale = 1.0f;
    if (weights.shexp_gate_inp != nullptr) {
      float dot = 0.0f;
      for (int64_t d = 0; d < n_embd; ++d) dot += weights.shexp_gate_inp[d] * xb[t * n_embd + d];
      scale = Sigmoid(dot);
    }
    shared_scale_[t] = scale;
  }
}

void MoeBlock::AddShared(int64_t n, float* out) const {
  const int64_t n_embd = config_.n_embd;
  for (int64_t t = 0; t < n; ++t) {
    const float scale = shared_scale_[t];
    for (int64_t d = 0; d < n_embd; ++d) out[t * n_embd + d] += scale * shared_out_[t * n_embd + d];
  }
}

Status MoeBlock::Forward(Layer layer, Layer next, const float* xb, int64_t n, int64_t token_index0,
                         float* out) {
  CHECK(n >= 1 && n <= options_.max_tokens) << n;
  CHECK(layer.weights != nullptr);
  RETURN_IF_ERROR(RouteTokens(layer, xb, n, token_index0));
  if (n == 1) read_ahead_.Settle(layer.index, token_index0, routes_[0]);
  // Reads first, so the device works while everything below computes.
  pending_.clear();
  size_t issued = 0;
  IssueReads(layer.index, 0, ReadWindow(*source_), &issued);
  // Guess the next layer's experts once this one's reads are all in (RunExperts): decoding only.
  if (n != 1 || !read_ahead_.enabled()) next = Layer{};
  if (config_.has_shared_expert()) {
    const uint64_t compute_start = NowNs();
    RunSharedExpert(*layer.weights, xb, n);
    counters_.expert_compute_ns += NowNs() - compute_start;
  }
  current_ = layer.weights;
  RETURN_IF_ERROR(RunExperts(layer.index, xb, issued, next, token_index0));
  Combine(n, out);
  if (config_.has_shared_expert()) AddShared(n, out);
  return Status::Ok();
}

}  // namespace sluice
