// Helpers shared by the kernel tests: deterministic random data, the list of ISA paths to sweep,
// and a guard that restores the active path.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/kernels/dispatch.h"

namespace sluice::testing {

// Gaussian values; a few rows get a large outlier so block scales vary.
inline std::vector<float> RandomFloats(int64_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  for (int64_t i = 0; i < n; i += 97) v[static_cast<size_t>(i)] *= 6.0f;
  return v;
}

// Every weight type MatVec supports.
inline const std::vector<GgmlType>& AllWeightTypes() {
  static const std::vector<GgmlType> types = {
      GgmlType::kF32,  GgmlType::kF16,    GgmlType::kBF16,   GgmlType::kQ8_0,
      GgmlType::kQ4_0, GgmlType::kQ4_1,   GgmlType::kQ5_0,   GgmlType::kQ5_1,
      GgmlType::kQ2_K, GgmlType::kQ3_K,   GgmlType::kQ4_K,   GgmlType::kQ5_K,
      GgmlType::kQ6_K, GgmlType::kIQ4_NL, GgmlType::kIQ4_XS, GgmlType::kMXFP4};
  return types;
}

inline std::vector<Isa> AllIsas() { return {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}; }

// Restores the ISA that was active when it was created.
class IsaGuard {
 public:
  IsaGuard() : saved_(ActiveIsa()) {}
  ~IsaGuard() { ForceIsa(saved_); }

 private:
  Isa saved_;
};

}  // namespace sluice::testing
