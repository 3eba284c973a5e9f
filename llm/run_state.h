// RunState: the activations of one forward batch, allocated once for batch_size tokens. The
// memory plan counts Bytes() of the same shape, so what is planned is what is allocated.
//
// Thread-safety: plain data; the engine's thread.
#pragma once

#include <cstdint>

#include "core/base/aligned_buffer.h"
#include "core/base/status.h"

namespace sluice {

struct RunState {
  // Bytes of the buffers below for `batch` tokens of width n_embd; n_ff: the dense FFN width of
  // models with dense layers (0: none).
  static uint64_t Bytes(int64_t n_embd, int batch, int64_t n_ff = 0) {
    return (3ull * static_cast<uint64_t>(n_embd) + 2ull * static_cast<uint64_t>(n_ff)) *
           static_cast<uint64_t>(batch) * sizeof(float);
  }
  static Result<RunState> Create(int64_t n_embd, int batch, int64_t n_ff = 0);

  AlignedBuffer buffer;       // x, xb, out, ffn_gate, ffn_up below
  float* x = nullptr;         // (batch, n_embd) residual stream
  float* xb = nullptr;        // (batch, n_embd) normalised input of the current block
  float* out = nullptr;       // (batch, n_embd) the current block's output
  float* ffn_gate = nullptr;  // (batch, n_ff) dense FFN hidden, or null
  float* ffn_up = nullptr;    // (batch, n_ff)
};

}  // namespace sluice
