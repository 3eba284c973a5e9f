// ArgMax: the index of the largest value, ties to the lowest index: greedy decoding, and the
// tests that compare it with references. Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <span>

#include "core/base/check.h"

namespace sluice {

inline int32_t ArgMax(std::span<const float> logits) {
  CHECK(!logits.empty());
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

}  // namespace sluice
