#include "moe/synthetic_routing.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/base/random.h"

namespace sluice {
namespace {

// Walker/Vose alias table: O(1) draws from a fixed discrete distribution.
struct AliasTable {
  std::vector<double> prob;
  std::vector<int> alias;

  void Build(const std::vector<double>& weights) {
    const int n = static_cast<int>(weights.size());
    double total = std::accumulate(weights.begin(), weights.end(), 0.0);
    prob.assign(n, 0);
    alias.assign(n, 0);
    std::vector<double> scaled(n);
    std::vector<int> small, large;
    for (int i = 0; i < n; ++i) {
      scaled[i] = weights[i] * n / total;
      (scaled[i] < 1.0 ? small : large).push_back(i);
    }
    while (!small.empty() && !large.empty()) {
      int s = small.back(), l = large.back();
      small.pop_back();
      prob[s] = scaled[s];
      alias[s] = l;
      scaled[l] = scaled[l] + scaled[s] - 1.0;
      if (scaled[l] < 1.0) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (int i : large) prob[i] = 1.0;
    for (int i : small) prob[i] = 1.0;  // rounding leftovers
  }
  int Draw(SynthRng& rng) const {
    int i = static_cast<int>(rng.Below(static_cast<uint32_t>(prob.size())));
    return rng.Uniform() < prob[i] ? i : alias[i];
  }
};

bool Contains(const int* ids, int n, int id) {
  for (int i = 0; i < n; ++i) {
    if (ids[i] == id) return true;
  }
  return false;
}

Status ParseDouble(std::string_view key, std::string_view value, double lo, double hi,
                   bool hi_inclusive, double* out) {
  std::string text(value);
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < lo ||
      (hi_inclusive ? v > hi : v >= hi)) {
    return InvalidArgument("synthetic routing: ", key, "=", value, ": expected a number in [", lo,
                           ", ", hi, hi_inclusive ? "]" : ")");
  }
  *out = v;
  return Status::Ok();
}

// What one layer remembers between tokens (copied for calibration runs).
struct LayerState {
  int prev[kMaxExpertsPerToken] = {};
  int n_prev = 0;
  std::vector<int> history;  // (recall_window, k) ring of recent routes' ids
  int64_t tokens_seen = 0;
};

// Chooses the k distinct experts of the next token and advances `st`.
void PickExperts(const SyntheticLayerTargets& t, const AliasTable& fresh, int n_expert, int k,
                 int window, SynthRng& rng, LayerState& st, int* chosen) {
  int n_chosen = 0;
  // 1. Temporal reuse, slot by slot.
  for (int j = 0; j < st.n_prev; ++j) {
    if (rng.Uniform() < t.reuse) chosen[n_chosen++] = st.prev[j];
  }
  // 2. Fresh picks: from the recent window (recall) or by popularity, never one of the previous
  // token's experts (unless there are not enough others, e.g. k = n_expert).
  const bool exclude_prev = n_expert - st.n_prev >= k;
  auto allowed = [&](int c) {
    return !Contains(chosen, n_chosen, c) && !(exclude_prev && Contains(st.prev, st.n_prev, c));
  };
  const int64_t history_uses = std::min<int64_t>(st.tokens_seen, window) * k;
  while (n_chosen < k) {
    int id = -1;
    // The window may hold little besides the previous token's experts: a few tries, then fall
    // back to popularity (a small bias below `recall`, only with tiny windows).
    if (st.tokens_seen > 1 && rng.Uniform() < t.recall) {
      for (int attempt = 0; attempt < 16 && id < 0; ++attempt) {
        int c = st.history[rng.Below(static_cast<uint32_t>(history_uses))];
        if (allowed(c)) id = c;
      }
    }
    for (int attempt = 0; attempt < 256 && id < 0; ++attempt) {
      int c = fresh.Draw(rng);
      if (allowed(c)) id = c;
    }
    if (id < 0) {  // pathological weights: the first allowed expert from a random offset
      int start = static_cast<int>(rng.Below(static_cast<uint32_t>(n_expert)));
      for (int i = 0; i < n_expert && id < 0; ++i) {
        if (allowed((start + i) % n_expert)) id = (start + i) % n_expert;
      }
    }
    CHECK_GE(id, 0);
    chosen[n_chosen++] = id;
  }
  std::copy(chosen, chosen + k, st.prev);
  st.n_prev = k;
  std::copy(chosen, chosen + k, &st.history[(st.tokens_seen % window) * k]);
  ++st.tokens_seen;
}

// Target share of each popularity rank: Zipf within the hot set and within the rest, each group
// scaled to its share, then capped so that k * q <= 0.9 (an expert is at most once per token).
std::vector<double> RankShares(const SyntheticLayerTargets& t, int n, int k) {
  const int hot_n = t.hot_experts;
  std::vector<double> q(n);
  double hot_sum = 0, tail_sum = 0;
  for (int r = 0; r < n; ++r) {
    q[r] = r < hot_n ? std::pow(r + 1.0, -t.hot_skew) : std::pow(r - hot_n + 1.0, -t.tail_skew);
    (r < hot_n ? hot_sum : tail_sum) += q[r];
  }
  for (int r = 0; r < n; ++r) {
    q[r] *= r < hot_n ? t.hot_share / hot_sum : (1.0 - t.hot_share) / tail_sum;
  }
  for (int iter = 0; iter < 50; ++iter) {
    double excess = 0, free_mass = 0;
    for (double& v : q) {
      if (k * v > 0.9) {
        excess += v - 0.9 / k;
        v = 0.9 / k;
      } else if (k * v < 0.9) {
        free_mass += v;
      }
    }
    if (excess <= 1e-12 || free_mass <= 0) break;
    for (double& v : q) {
      if (k * v < 0.9) v += excess * v / free_mass;
    }
  }
  return q;
}

// Fresh-pick weights by rank for a hot-set scale `alpha`.
std::vector<double> FreshWeights(const std::vector<double>& q, int hot_n, int k, double alpha) {
  std::vector<double> f(q.size());
  for (size_t r = 0; r < q.size(); ++r) {
    f[r] = q[r] / (1.0 - k * q[r]) * (static_cast<int>(r) < hot_n ? alpha : 1.0);
  }
  return f;
}

// The hot-set scale that makes the simulated share of ranks [0, hot_n) equal t.hot_share.
// Common random numbers across the bisection keep the measured share monotone in alpha.
double CalibrateHotScale(const SyntheticLayerTargets& t, const std::vector<double>& q, int k,
                         int window) {
  const int n = static_cast<int>(q.size()), hot_n = t.hot_experts;
  if (hot_n >= n) return 1.0;
  constexpr int kTokens = 2048, kWarmup = 64;
  auto measure = [&](double alpha) {
    AliasTable table;
    table.Build(FreshWeights(q, hot_n, k, alpha));
    SynthRng rng(0xca11b7a7e);
    LayerState st;
    st.history.assign(static_cast<size_t>(window) * k, -1);
    int chosen[kMaxExpertsPerToken];
    int64_t hot = 0, total = 0;
    for (int token = 0; token < kTokens; ++token) {
      PickExperts(t, table, n, k, window, rng, st, chosen);
      if (token < kWarmup) continue;
      for (int j = 0; j < k; ++j) hot += chosen[j] < hot_n;  // rank == id in the simulation
      total += k;
    }
    return static_cast<double>(hot) / total;
  };
  double lo = -8, hi = 8;  // log2(alpha)
  for (int iter = 0; iter < 16; ++iter) {
    double mid = 0.5 * (lo + hi);
    (measure(std::exp2(mid)) < t.hot_share ? lo : hi) = mid;
  }
  return std::exp2(0.5 * (lo + hi));
}

}  // namespace

struct SyntheticRouting::Layer {
  explicit Layer(uint64_t seed) : rng(seed) {}
  SynthRng rng;
  SyntheticLayerTargets targets;
  std::vector<int> hot;            // hot expert ids, hottest first
  AliasTable fresh;                // fresh-pick distribution over expert ids
  LayerState fresh_state;          // a stream's state before its first token
  std::vector<LayerState> states;  // per stream
};

Result<SyntheticRoutingParams> SyntheticRoutingParams::Parse(std::string_view spec) {
  SyntheticRoutingParams p;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return InvalidArgument("synthetic routing: '", item, "' is not key=value");
    }
    std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
    double v = 0;
    if (key == "seed") {
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), p.seed);
      if (ec != std::errc() || ptr != value.data() + value.size()) {
        return InvalidArgument("synthetic routing: seed=", value, ": expected an integer");
      }
    } else if (key == "reuse") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 1, false, &p.reuse));
    } else if (key == "hot_share") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 1, false, &p.hot_share));
    } else if (key == "hot_fraction") {
      RETURN_IF_ERROR(ParseDouble(key, value, 1e-6, 1, true, &p.hot_fraction));
    } else if (key == "hot_skew") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 4, true, &p.hot_skew));
    } else if (key == "tail_skew") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 4, true, &p.tail_skew));
    } else if (key == "recall") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 1, true, &p.recall));
    } else if (key == "recall_window") {
      RETURN_IF_ERROR(ParseDouble(key, value, 1, 4096, true, &v));
      if (v != std::floor(v)) {
        return InvalidArgument("synthetic routing: recall_window=", value, ": expected an integer");
      }
      p.recall_window = static_cast<int>(v);
    } else if (key == "early_layers") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 10000, true, &v));
      if (v != std::floor(v)) {
        return InvalidArgument("synthetic routing: early_layers=", value, ": expected an integer");
      }
      p.early_layers = static_cast<int>(v);
    } else if (key == "early_start") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 1, true, &p.early_start));
    } else if (key == "weight_spread") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 4, true, &p.weight_spread));
    } else if (key == "predict") {
      RETURN_IF_ERROR(ParseDouble(key, value, 0, 1, true, &p.predict));
    } else {
      return InvalidArgument("synthetic routing: unknown key '", key,
                             "' (known: seed, reuse, hot_share, hot_fraction, hot_skew, tail_skew, "
                             "recall, recall_window, early_layers, early_start, weight_spread, "
                             "predict)");
    }
  }
  return p;
}

std::string SyntheticRoutingParams::ToString() const {
  char buf[256];
  std::snprintf(
      buf, sizeof(buf),
      "seed=%llu,reuse=%g,hot_share=%g,hot_fraction=%g,hot_skew=%g,tail_skew=%g,recall=%g,"
      "recall_window=%d,early_layers=%d,"
      "early_start=%g,weight_spread=%g,predict=%g",
      static_cast<unsigned long long>(seed), reuse, hot_share, hot_fraction, hot_skew, tail_skew,
      recall, recall_window, early_layers, early_start, weight_spread, predict);
  return buf;
}

SyntheticRouting::SyntheticRouting(const SyntheticRoutingParams& params, const RoutingShape& shape)
    : params_(params), shape_(shape) {
  CHECK(shape.Validate().ok()) << shape.Validate().ToString();
  const int n = shape.n_expert, k = shape.k;
  // At least k hot experts: an expert's inclusion is at most 1 / (2 - reuse) (dropped experts
  // are not drawn fresh for one token), so fewer than k of them cannot carry a large share.
  const int hot_n = std::clamp(static_cast<int>(std::lround(params.hot_fraction * n)), k, n);
  std::vector<std::pair<double, double>> scale_by_ramp;  // calibrations done, by ramp value
  for (int m = 0; m < shape.n_moe_layer(); ++m) {
    auto layer = std::make_unique<Layer>(params.seed * 0x100000001b3ull + 0x51ce + m);
    const double ramp = params.early_layers <= 0
                            ? 1.0
                            : std::min(1.0, params.early_start + (1.0 - params.early_start) * m /
                                                                     params.early_layers);
    const double uniform_hot = static_cast<double>(hot_n) / n;
    SyntheticLayerTargets& t = layer->targets;
    t.hot_experts = hot_n;
    t.reuse = params.reuse * ramp;
    t.hot_skew = params.hot_skew * ramp;
    t.tail_skew = params.tail_skew * ramp;
    t.recall = params.recall * ramp;
    t.hot_share = hot_n == n ? 1.0 : uniform_hot + (params.hot_share - uniform_hot) * ramp;

    std::vector<double> q = RankShares(t, n, k);
    double alpha = 0;
    for (const auto& [r, a] : scale_by_ramp) {
      if (r == ramp) alpha = a;
    }
    if (alpha == 0) {
      alpha = CalibrateHotScale(t, q, k, params.recall_window);
      scale_by_ramp.emplace_back(ramp, alpha);
    }
    std::vector<double> by_rank = FreshWeights(q, hot_n, k, alpha);
    // A random identity for each rank, different per layer.
    std::vector<int> perm(n);
    std::iota(perm.begin(), perm.end(), 0);
    for (int i = n - 1; i > 0; --i) {
      std::swap(perm[i], perm[layer->rng.Below(static_cast<uint32_t>(i + 1))]);
    }
    layer->hot.assign(perm.begin(), perm.begin() + hot_n);
    std::vector<double> by_expert(n);
    for (int r = 0; r < n; ++r) by_expert[perm[r]] = by_rank[r];
    layer->fresh.Build(by_expert);
    layer->fresh_state.history.assign(static_cast<size_t>(params.recall_window) * k, -1);
    layers_.push_back(std::move(layer));
  }
}

SyntheticRouting::~SyntheticRouting() = default;

const SyntheticLayerTargets& SyntheticRouting::targets(int moe_index) const {
  return layers_[moe_index]->targets;
}

const std::vector<int>& SyntheticRouting::hot_experts(int moe_index) const {
  return layers_[moe_index]->hot;
}

void SyntheticRouting::NextRoute(int moe_index, Route* route, int stream) {
  CHECK(moe_index >= 0 && moe_index < static_cast<int>(layers_.size())) << moe_index;
  CHECK(stream >= 0) << stream;
  Layer& L = *layers_[moe_index];
  if (static_cast<size_t>(stream) >= L.states.size()) L.states.resize(stream + 1, L.fresh_state);
  const int k = shape_.k;
  int chosen[kMaxExpertsPerToken];
  PickExperts(L.targets, L.fresh, shape_.n_expert, k, params_.recall_window, L.rng,
              L.states[stream], chosen);
  // Mixing weights: log-normal, normalized like a renormalized top-k softmax.
  route->k = k;
  double total = 0;
  double w[kMaxExpertsPerToken];
  for (int j = 0; j < k; ++j) {
    w[j] = std::exp(params_.weight_spread * L.rng.Normal());
    total += w[j];
  }
  for (int j = 0; j < k; ++j) {
    route->ids[j] = chosen[j];
    route->weights[j] = static_cast<float>(w[j] / total);
  }
}

RoutingTrace SyntheticRouting::Generate(int64_t n_token) {
  RoutingTraceHeader header;
  header.shape = shape_;
  header.n_token = n_token;
  header.source = "sluice synthetic routing: " + params_.ToString();
  const int n_moe = shape_.n_moe_layer();
  std::vector<Route> routes(static_cast<size_t>(n_token) * n_moe);
  for (int m = 0; m < n_moe; ++m) {
    for (int64_t t = 0; t < n_token; ++t) NextRoute(m, &routes[t * n_moe + m]);
  }
  return RoutingTrace::FromRoutes(std::move(header), std::move(routes));
}

SyntheticRoutingHook::SyntheticRoutingHook(const SyntheticRoutingParams& params,
                                           const RoutingShape& shape)
    : routing_(params, shape), predictor_(params.predict, params.seed) {}

void SyntheticRoutingHook::SetStream(int stream) {
  CHECK(stream >= 0) << stream;
  stream_ = stream;
}

SyntheticRoutingHook::Peek& SyntheticRoutingHook::peek(int moe_index) {
  if (static_cast<size_t>(stream_) >= peeked_.size()) peeked_.resize(stream_ + 1);
  std::vector<Peek>& layers = peeked_[stream_];
  if (layers.empty()) layers.resize(routing_.shape().n_moe_layer());
  return layers[moe_index];
}

void SyntheticRoutingHook::OnRoute(int layer, int64_t token_index,
                                   std::span<const float> router_probs, Route* route) {
  (void)token_index;
  (void)router_probs;
  int m = routing_.shape().MoeIndex(layer);
  CHECK_GE(m, 0) << "synthetic routing called for layer " << layer << " without experts";
  Peek& p = peek(m);
  if (p.valid) {
    // PredictRoute already drew this layer's next route: hand out that one, so the sequence of
    // routes is the same whether or not the engine predicted.
    *route = p.route;
    p.valid = false;
    return;
  }
  routing_.NextRoute(m, route, stream_);
}

bool SyntheticRoutingHook::PredictRoute(int layer, int64_t token_index, Route* predicted) {
  (void)token_index;
  int m = routing_.shape().MoeIndex(layer);
  if (m < 0) return false;
  Peek& p = peek(m);
  if (!p.valid) {
    routing_.NextRoute(m, &p.route, stream_);
    p.valid = true;
  }
  predictor_.Predict(p.route, routing_.shape().n_expert, predicted);
  return true;
}

}  // namespace sluice
