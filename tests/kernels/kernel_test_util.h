// Helpers shared by the kernel tests: deterministic random data, the list of ISA paths to sweep,
// and a guard that restores the active path.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/kernels/dispatch.h"
#include "core/kernels/matmul.h"
#include "core/quant/quantize.h"

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
      GgmlType::kF32,     GgmlType::kF16,    GgmlType::kBF16,   GgmlType::kQ8_0,
      GgmlType::kQ4_0,    GgmlType::kQ4_1,   GgmlType::kQ5_0,   GgmlType::kQ5_1,
      GgmlType::kQ2_K,    GgmlType::kQ3_K,   GgmlType::kQ4_K,   GgmlType::kQ5_K,
      GgmlType::kQ6_K,    GgmlType::kIQ4_NL, GgmlType::kIQ4_XS, GgmlType::kMXFP4,
      GgmlType::kIQ2_XXS, GgmlType::kIQ2_XS, GgmlType::kIQ2_S,  GgmlType::kIQ3_XXS,
      GgmlType::kIQ3_S,   GgmlType::kIQ1_S,  GgmlType::kIQ1_M};
  return types;
}

// One weight row in `type` from the values x: quantized, or for the grid formats (which sluice
// reads but does not produce) random valid blocks with the RMS of x, from `seed`.
inline void MakeRow(GgmlType type, const float* x, int64_t cols, uint64_t seed, void* dst) {
  if (!IsGridType(type)) return QuantizeRow(type, x, dst, cols);
  double ss = 0;
  for (int64_t i = 0; i < cols; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float rms = static_cast<float>(std::sqrt(ss / static_cast<double>(cols)));
  RandomGridBlocks(type, seed, rms, cols / kQkK, dst);
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
