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
  // Bytes of the buffers below for `batch` tokens of width n_embd.
  static uint64_t Bytes(int64_t n_embd, int batch) {
    return 3ull * static_cast<uint64_t>(batch) * static_cast<uint64_t>(n_embd) * sizeof(float);
  }
  static Result<RunState> Create(int64_t n_embd, int batch);

  AlignedBuffer buffer;  // x, xb, out below
  float* x = nullptr;    // (batch, n_embd) residual stream
  float* xb = nullptr;   // (batch, n_embd) normalised input of the current block
  float* out = nullptr;  // (batch, n_embd) the current block's output
};

}  // namespace sluice
