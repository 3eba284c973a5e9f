// Random but numerically sane weights for synthetic models, produced fast enough that writing a
// 25 GB archive is limited by the disk (1-3 GB/s here), not by random number generation or
// quantization (the reference K-quant quantizer runs at tens of MB/s).
//
// How: a SynthRowPool quantizes a few MB of random rows once (zero-mean Gaussian floats with the
// tensor's standard deviation, through QuantizeRow, so every block is a valid block of its type
// with a sane scale; the grid formats IQ1_S..IQ3_S, which have no quantizer here, get random valid
// blocks scaled to that standard deviation), and every matrix of that (type, row length, stddev) is
// then assembled from pool rows (a start and a stride coprime to the pool size, both drawn from the
// matrix key): memcpy speed, deterministic, and each expert of each layer is a different matrix.
// The rows are independent draws of the right distribution; that rows repeat across matrices (and
// within matrices taller than the pool) changes nothing the engine or the I/O sees. Zero-mean
// values matter: random nibbles have a nonzero mean, which gives every token's hidden state a
// common direction, which routes every token to the same experts and flatters any cache.
//
// Scales (SynthScales): the residual stream starts at RMS 1 (embedding rows ~ N(0, 1)); q, k, v,
// the router, expert gate/up and the output head map unit-RMS inputs to unit-RMS outputs
// (stddev 1/sqrt(cols)); the matrices that write back into the residual (attention output, expert
// and shared-expert down) are scaled so that each block adds RMS ~alpha = 1/sqrt(2 n_layer). The
// stream's RMS then stays near sqrt(1 + 2 n_layer alpha^2) = sqrt(2) after any number of layers
// (tests/synth/synth_weights_test.cc measures each block's gain on the written bytes).
//
// Thread-safety: a pool is immutable after construction; FillMatrix may run concurrently.
#pragma once

#include <cstdint>
#include <vector>

#include "core/base/ggml_type.h"

namespace sluice {

// Standard deviations of the synthetic tensors (see the file comment).
struct SynthScales {
  float embedding = 1.0f;  // token_embd rows
  float in_proj = 0;       // q, k, v, router, expert gate/up, shared gate/up, output head
  float attn_out = 0;      // attn_output
  float expert_down = 0;   // routed and shared expert down
  float block_gain = 0;    // alpha: the RMS each attention / MoE block adds

  // n_embd: model width; attn_out_cols: n_head * head_dim; n_ff: expert hidden size.
  static SynthScales For(int n_layer, int64_t n_embd, int64_t attn_out_cols, int64_t n_ff);
};

// E[silu(g) * u] RMS for g, u ~ N(0, 1) independent: sqrt(E[silu(g)^2]) = 0.5965 (numerical
// integration), the RMS of an expert's hidden activation when gate and up outputs are unit RMS.
inline constexpr double kSiluUnitRms = 0.5965;

class SynthRowPool {
 public:
  // About `target_bytes` of rows (at least 64 rows) of `cols` elements ~ N(0, stddev^2), quantized
  // to `type` (any type QuantizeRow accepts; f32 too). `seed` makes the pool reproducible.
  SynthRowPool(GgmlType type, int64_t cols, float stddev, uint64_t seed,
               uint64_t target_bytes = 4ull << 20);

  GgmlType type() const { return type_; }
  int64_t cols() const { return cols_; }
  float stddev() const { return stddev_; }
  uint64_t row_bytes() const { return row_bytes_; }
  int rows() const { return n_rows_; }

  // dst (rows * row_bytes bytes) = a rows x cols matrix, row r = pool row (start + r * stride)
  // mod rows(), start and stride drawn from `key`.
  void FillMatrix(uint64_t key, int64_t rows, uint8_t* dst) const;

 private:
  GgmlType type_;
  int64_t cols_;
  float stddev_;
  uint64_t row_bytes_;
  int n_rows_;
  std::vector<uint8_t> rows_;  // (n_rows, row_bytes)
};

// Deterministic 64-bit mix of up to four values (matrix keys).
uint64_t SynthKey(uint64_t a, uint64_t b, uint64_t c = 0, uint64_t d = 0);

}  // namespace sluice
