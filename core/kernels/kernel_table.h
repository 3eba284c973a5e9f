// The per-ISA kernel table behind MatVec/MatMul (internal to core/kernels/).
//
// Each ISA fills a KernelTable: one row-range function per weight type plus the activation
// quantizers. matmul.cc quantizes the activations once, then splits rows across the pool and
// calls rows[type] on each range. A row-range function computes, for rows r in [row_begin,
// row_end) and every token t, y[t * y_stride + r] = dot(W[r], act[t]); it must give each (r, t)
// the same operation sequence whatever the range, the token count or the tiling, which is what
// makes results independent of thread count and MatMul equal to MatVec bit for bit.
//
// Rule for the per-ISA files (*_avx2.cc, *_avx512.cc, a future *_neon.cc): include only this
// header, core/quant/blocks.h, core/quant/fp16.h, core/kernels/simd_*.h and C headers (<cstdint>,
// <cstring>, <immintrin.h>); keep every helper in an anonymous namespace. Anything with external
// linkage and inline definitions (std:: templates, CHECK) compiled there could be picked by the
// linker for the whole program and run AVX-512 code on a CPU without it.
// Thread-safety: tables are immutable after construction.
#pragma once

#include <cstdint>

#include "core/base/ggml_type.h"

namespace sluice {

struct RowsArgs {
  const uint8_t* w;        // row 0 of the weights (any byte alignment)
  uint64_t w_row_bytes;    // bytes per weight row
  int64_t cols;            // elements per row (a whole number of blocks)
  const uint8_t* act;      // token 0's activations: quantized blocks, or f32 for float weights
  uint64_t act_row_bytes;  // bytes per token of act
  int64_t n_tokens;        // tokens in act and y
  float* y;                // y[t * y_stride + r]
  int64_t y_stride;        // floats between tokens in y (= rows)
};

using RowsFn = void (*)(const RowsArgs& args, int64_t row_begin, int64_t row_end);
using QuantizeActFn = void (*)(const float* x, void* dst, int64_t n);

// ggml type ids run 0..39; index rows[] by the id.
inline constexpr int kMaxTypeId = 40;

struct KernelTable {
  RowsFn rows[kMaxTypeId] = {};
  // Activation rows (ActivationRowBytes each). Q8_0 and Q8_1 rows carry, after the GGUF blocks,
  // the block scales again as f32 (the exact values of the f16 fields): a SIMD kernel then
  // broadcasts a float instead of converting an f16 per block and token. Q8_0 rows also carry
  // each block's level sum (the offset correction of kernels that feed unsigned weight levels to
  // u8 x s8 dot instructions, block32_avx512.cc).
  QuantizeActFn quantize_q8_0 =
      nullptr;  // -> BlockQ8_0[n / 32], float d[n / 32], int32 sum[n / 32]
  QuantizeActFn quantize_q8_1 = nullptr;  // -> BlockQ8_1[n / 32], float d[n / 32], float s[n / 32]
  QuantizeActFn quantize_q8_k = nullptr;  // -> BlockQ8_K[n / 256]
};

// Bytes of one token's activations in act_type (kF32, kQ8_0, kQ8_1 or kQ8_K), layouts above;
// Q8_0/Q8_1 rows are padded to 64 bytes so every token's row and scales stay aligned.
uint64_t ActivationRowBytes(GgmlType act_type, int64_t cols);

// Byte offset of the f32 scales in a Q8_0/Q8_1 activation row of nb blocks (16-byte aligned).
static inline uint64_t ActScalesOffset(int64_t nb, uint64_t block_bytes) {
  return (static_cast<uint64_t>(nb) * block_bytes + 15) & ~uint64_t{15};
}

// Fill functions, one per ISA file group. Each overwrites the entries it implements, so a table
// is built by filling scalar first, then the ISA's files on top.
void FillScalarKernels(KernelTable* table);
void FillScalarKQuantKernels(KernelTable* table);
void FillAvx2Kernels(KernelTable* table);
void FillAvx2KQuantKernels(KernelTable* table);
void FillAvx2FloatKernels(KernelTable* table);
void FillAvx2GridKernels(KernelTable* table);
void FillAvx512Kernels(KernelTable* table);
void FillAvx512KQuantKernels(KernelTable* table);
void FillAvx512FloatKernels(KernelTable* table);
void FillAvx512GridKernels(KernelTable* table);
void FillAvx512Block32Kernels(KernelTable* table);

// The table of the active ISA (core/kernels/dispatch.h).
const KernelTable& ActiveKernels();

}  // namespace sluice
