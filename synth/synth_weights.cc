#include "synth/synth_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "core/base/check.h"
#include "core/base/random.h"
#include "core/kernels/matmul.h"
#include "core/quant/quantize.h"

namespace sluice {

SynthScales SynthScales::For(int n_layer, int64_t n_embd, int64_t attn_out_cols, int64_t n_ff) {
  CHECK(n_layer > 0 && n_embd > 0 && attn_out_cols > 0 && n_ff > 0);
  SynthScales s;
  s.block_gain = static_cast<float>(1.0 / std::sqrt(2.0 * n_layer));
  s.in_proj = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n_embd)));
  // attn_output sees the attention-weighted values: unit RMS at most (a convex mix of unit-RMS
  // v rows; mixing several positions only lowers it).
  s.attn_out = static_cast<float>(s.block_gain / std::sqrt(static_cast<double>(attn_out_cols)));
  // down sees silu(gate) * up, RMS kSiluUnitRms; the k weighted expert outputs (weights summing
  // to at most 1) add up to at most that RMS.
  s.expert_down =
      static_cast<float>(s.block_gain / (kSiluUnitRms * std::sqrt(static_cast<double>(n_ff))));
  return s;
}

uint64_t SynthKey(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
  uint64_t h = 0x243f6a8885a308d3ull;
  for (uint64_t v : {a, b, c, d}) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h = (h ^ (h >> 31)) * 0xbf58476d1ce4e5b9ull;
  }
  return h ^ (h >> 29);
}

SynthRowPool::SynthRowPool(GgmlType type, int64_t cols, float stddev, uint64_t seed,
                           uint64_t target_bytes)
    : type_(type), cols_(cols), stddev_(stddev), row_bytes_(RowBytes(type, cols)) {
  n_rows_ = static_cast<int>(std::max<uint64_t>(64, target_bytes / row_bytes_));
  rows_.resize(static_cast<size_t>(n_rows_) * row_bytes_);
  SynthRng rng(SynthKey(seed, static_cast<uint64_t>(type), static_cast<uint64_t>(cols),
                        static_cast<uint64_t>(std::llround(stddev * 1e9))));
  std::vector<float> row(static_cast<size_t>(cols));
  for (int r = 0; r < n_rows_; ++r) {
    uint8_t* dst = rows_.data() + static_cast<size_t>(r) * row_bytes_;
    if (IsGridType(type)) {
      // No quantizer for the grid formats (they are fitted with an importance matrix by their
      // producers): random valid blocks, each scaled to RMS stddev, zero mean by random signs.
      RandomGridBlocks(type, rng.Next(), stddev, cols / kQkK, dst);
      continue;
    }
    for (float& v : row) v = static_cast<float>(stddev * rng.Normal());
    QuantizeRow(type, row.data(), dst, cols);
  }
}

void SynthRowPool::FillMatrix(uint64_t key, int64_t rows, uint8_t* dst) const {
  // A random start and an odd stride modulo the pool size: consecutive rows of one matrix are
  // distinct pool rows (for rows <= pool size), and different keys give different matrices.
  SynthRng rng(key);
  const uint64_t n = static_cast<uint64_t>(n_rows_);
  uint64_t index = rng.Next() % n;
  uint64_t stride = rng.Next() % n;
  while (std::gcd(stride, n) != 1) stride = (stride + 1) % n;
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(dst + static_cast<uint64_t>(r) * row_bytes_, rows_.data() + index * row_bytes_,
                row_bytes_);
    index = (index + stride) % n;
  }
}

}  // namespace sluice
