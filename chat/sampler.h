// Sampler: picks the next token from a row of logits.
// Order (as llama.cpp's default chain, so settings mean the same in both):
//   penalties over the last `repeat_last_n` tokens (repetition: positive logits divided by the
//   penalty, negative ones multiplied; then, as OpenAI defines them, logit -= count *
//   frequency_penalty + (count > 0) * presence_penalty) -> top-k -> top-p -> min-p -> temperature
//   -> draw.
// temperature <= 0 is greedy: the largest logit, ties to the lowest id (the penalty still applies).
// The draw uses a 64-bit Mersenne Twister seeded with `seed`: the same seed and logits give the
// same tokens.
//
// Non-goals: grammar constraints, DRY, mirostat, typical-p.
// Thread-safety: one Sampler per generating thread.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "core/base/status.h"
#include "core/ops/argmax.h"  // greedy: ArgMax

namespace sluice {

struct SamplerOptions {
  float temperature = 0.8f;        // <= 0: greedy
  int top_k = 40;                  // 0: off
  float top_p = 0.95f;             // 1: off
  float min_p = 0.05f;             // 0: off
  float repeat_penalty = 1.0f;     // 1: off
  float presence_penalty = 0.0f;   // 0: off; -2..2
  float frequency_penalty = 0.0f;  // 0: off; -2..2
  int repeat_last_n = 64;          // tokens the penalties look back at
  uint64_t seed = 0;
};

// InvalidArgument naming the field for out-of-range values (top_p outside (0, 1], ...).
Status ValidateSamplerOptions(const SamplerOptions& options);

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& options);

  // `history`: the tokens so far (prompt and generated); only the last repeat_last_n matter.
  int32_t Sample(std::span<const float> logits, std::span<const int32_t> history);

  const SamplerOptions& options() const { return options_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
  };
  void ApplyPenalty(std::span<const int32_t> history);

  SamplerOptions options_;
  std::mt19937_64 rng_;
  std::vector<Candidate> candidates_;  // (n_vocab) reused between calls
  std::vector<float> probs_;           // (n_vocab) reused between calls
};

}  // namespace sluice
