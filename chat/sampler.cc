#include "chat/sampler.h"

#include <algorithm>
#include <cmath>

namespace sluice {

Status ValidateSamplerOptions(const SamplerOptions& o) {
  if (!std::isfinite(o.temperature) || o.temperature < 0.0f) {
    return InvalidArgument("temperature ", o.temperature, " must be >= 0 (0: greedy)");
  }
  if (o.top_k < 0) return InvalidArgument("top-k ", o.top_k, " must be >= 0");
  if (!(o.top_p > 0.0f && o.top_p <= 1.0f)) {
    return InvalidArgument("top-p ", o.top_p, " must be in (0, 1]");
  }
  if (!(o.min_p >= 0.0f && o.min_p <= 1.0f)) {
    return InvalidArgument("min-p ", o.min_p, " must be in [0, 1]");
  }
  if (!(o.presence_penalty >= -2.0f && o.presence_penalty <= 2.0f)) {
    return InvalidArgument("presence penalty ", o.presence_penalty, " is outside [-2, 2]");
  }
  if (!(o.frequency_penalty >= -2.0f && o.frequency_penalty <= 2.0f)) {
    return InvalidArgument("frequency penalty ", o.frequency_penalty, " is outside [-2, 2]");
  }
  if (!(o.repeat_penalty > 0.0f) || !std::isfinite(o.repeat_penalty)) {
    return InvalidArgument("repeat penalty ", o.repeat_penalty, " must be > 0");
  }
  if (o.repeat_last_n < 0) {
    return InvalidArgument("repeat-last-n ", o.repeat_last_n, " must be >= 0");
  }
  return Status::Ok();
}

Sampler::Sampler(const SamplerOptions& options) : options_(options), rng_(options.seed) {}

void Sampler::ApplyPenalty(std::span<const int32_t> history) {
  const SamplerOptions& o = options_;
  if ((o.repeat_penalty == 1.0f && o.presence_penalty == 0.0f && o.frequency_penalty == 0.0f) ||
      o.repeat_last_n <= 0) {
    return;
  }
  const size_t n = std::min(history.size(), static_cast<size_t>(o.repeat_last_n));
  const std::span<const int32_t> recent = history.subspan(history.size() - n);
  for (size_t i = 0; i < recent.size(); ++i) {
    const int32_t id = recent[i];
    if (id < 0 || static_cast<size_t>(id) >= candidates_.size()) continue;
    // A token seen twice is penalised once, with its count: skip it if it occurred earlier in
    // the window.
    if (std::find(recent.begin(), recent.begin() + i, id) != recent.begin() + i) continue;
    const auto count = static_cast<float>(std::count(recent.begin() + i, recent.end(), id));
    float& logit = candidates_[id].logit;
    if (o.repeat_penalty != 1.0f) {
      logit = logit > 0 ? logit / o.repeat_penalty : logit * o.repeat_penalty;
    }
    logit -= count * o.frequency_penalty + o.presence_penalty;
  }
}

int32_t Sampler::Sample(std::span<const float> logits, std::span<const int32_t> history) {
  CHECK(!logits.empty());
  const size_t n_vocab = logits.size();
  candidates_.resize(n_vocab);
  for (size_t i = 0; i < n_vocab; ++i) {
    candidates_[i] = Candidate{static_cast<int32_t>(i), logits[i]};
  }
  ApplyPenalty(history);

  if (options_.temperature <= 0.0f) {
    size_t best = 0;
    for (size_t i = 1; i < n_vocab; ++i) {
      if (candidates_[i].logit > candidates_[best].logit) best = i;
    }
    return candidates_[best].id;
  }

  // Sort by logit descending (ties: lower id first) and cut to top-k.
  size_t n = n_vocab;
  auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  if (options_.top_k > 0 && static_cast<size_t>(options_.top_k) < n) {
    n = options_.top_k;
    std::partial_sort(candidates_.begin(), candidates_.begin() + n, candidates_.end(), by_logit);
  } else {
    std::sort(candidates_.begin(), candidates_.end(), by_logit);
  }

  // Probabilities at temperature 1 for the top-p and min-p filters.
  probs_.resize(n);
  const float max_logit = candidates_[0].logit;
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) sum += probs_[i] = std::exp(candidates_[i].logit - max_logit);
  if (options_.top_p < 1.0f) {
    double cumulative = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cumulative += probs_[i] / sum;
      if (cumulative >= options_.top_p) {
        n = i + 1;
        break;
      }
    }
  }
  if (options_.min_p > 0.0f) {
    // probs_[0] is the most likely (exp(0) = 1): keep tokens with p >= min_p * p_max.
    size_t keep = 1;
    while (keep < n && probs_[keep] >= options_.min_p) ++keep;
    n = keep;
  }

  // Temperature, then draw from the kept candidates.
  sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    sum += probs_[i] = std::exp((candidates_[i].logit - max_logit) / options_.temperature);
  }
  const double r = std::uniform_real_distribution<double>(0.0, sum)(rng_);
  double cumulative = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cumulative += probs_[i];
    if (r < cumulative) return candidates_[i].id;
  }
  return candidates_[n - 1].id;
}

}  // namespace sluice
