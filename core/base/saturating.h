// Saturating arithmetic for sizes computed from input: a product or sum that would overflow
// uint64_t becomes UINT64_MAX, which every budget check then refuses ("needs 16 EiB") instead of
// passing on a wrapped-around small number.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <limits>

namespace sluice {

inline uint64_t SatMul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max() : r;
}

inline uint64_t SatAdd(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<uint64_t>::max() : r;
}

}  // namespace sluice
