// MatVec / MatMul front-end: validates shapes, quantizes the activations once per call into a
// per-thread scratch buffer, and splits weight rows across the pool. The per-ISA row kernels live
// in *_kernels.cc / *_avx2.cc / *_avx512.cc (see kernel_table.h).
#include "core/kernels/matmul.h"

#include <algorithm>
#include <cstring>

#include "core/base/aligned_buffer.h"
#include "core/base/check.h"
#include "core/kernels/dispatch.h"
#include "core/kernels/kernel_table.h"
#include "core/quant/blocks.h"
#include "core/quant/fp16.h"
#include "core/quant/quantize.h"

namespace sluice {
namespace {

enum class ActFormat { kF32, kQ8_0, kQ8_1, kQ8_K };

// The activation format each weight type is multiplied with (the same pairing GGUF engines use,
// so results track theirs; see docs/kernels.md).
ActFormat ActFormatFor(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return ActFormat::kF32;
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1:
      return ActFormat::kQ8_1;
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kIQ4_XS:
      return ActFormat::kQ8_K;
    default:
      return IsGridType(type) ? ActFormat::kQ8_K : ActFormat::kQ8_0;
  }
}

// Quantized activations of the calling thread, grown to the largest call seen and then reused,
// so steady-state calls allocate nothing.
uint8_t* ActivationScratch(uint64_t bytes) {
  thread_local AlignedBuffer buffer;
  if (buffer.size() < bytes) {
    buffer = AlignedBuffer(bytes < (1u << 16) ? (1u << 16) : bytes, AllocOptions{.alignment = 64});
    CHECK(buffer.data() != nullptr) << "out of memory for " << bytes << " activation bytes";
  }
  return buffer.data();
}

// Prompt-sized calls are blocked so that both operands of the inner loops stay in cache: a row
// kernel re-reads every token's activations for each row (tile), so beyond kTokenChunk tokens
// (Q8_K rows of a 7168-wide matrix: 8 KiB per token, 512 KiB per chunk) the token range is cut
// into chunks, and each thread's rows into blocks of at most kRowBlockBytes of weights, which stay
// in L2 while the chunks pass over them. Each (row, token) still gets the operations it gets
// alone (kernel_table.h), so results do not change. Measured (2 threads, Zen 4): IQ4_XS 2048 x
// 7168 at 512 tokens 74 -> 46 ms and at 128 tokens 13.7 -> 11.1 ms; IQ2_XXS 64 -> 51 and 14.7 ->
// 12.5 ms; Q4_K, Q6_K, Q8_0 unchanged (their tiles already reuse each activation block).
constexpr int64_t kTokenChunk = 64;
constexpr uint64_t kRowBlockBytes = 256 * 1024;

// Below this many weight bytes per call a second thread costs more (wake-up, ~5-20 us) than it
// saves (64 KiB streams in ~4 us at 16 GB/s).
constexpr uint64_t kMinParallelBytes = 64 * 1024;

struct QuantizeJob {
  QuantizeActFn fn;
  const float* x;
  int64_t cols;
  uint8_t* dst;
  uint64_t dst_row_bytes;
};

}  // namespace

uint64_t ActivationRowBytes(GgmlType act_type, int64_t cols) {
  const int64_t nb = cols / kQk;
  auto padded = [](uint64_t bytes) { return (bytes + 63) & ~uint64_t{63}; };
  switch (act_type) {
    case GgmlType::kQ8_0:
      return padded(ActScalesOffset(nb, sizeof(BlockQ8_0)) +
                    nb * (sizeof(float) + sizeof(int32_t)));
    case GgmlType::kQ8_1:
      return padded(ActScalesOffset(nb, sizeof(BlockQ8_1)) + 2 * nb * sizeof(float));
    case GgmlType::kQ8_K:
      return RowBytes(act_type, cols);
    default:
      return static_cast<uint64_t>(cols) * sizeof(float);
  }
}

GgmlType MatMulActivationType(GgmlType weight_type) {
  switch (ActFormatFor(weight_type)) {
    case ActFormat::kF32:
      return GgmlType::kF32;
    case ActFormat::kQ8_0:
      return GgmlType::kQ8_0;
    case ActFormat::kQ8_1:
      return GgmlType::kQ8_1;
    case ActFormat::kQ8_K:
      return GgmlType::kQ8_K;
  }
  return GgmlType::kF32;
}

bool IsSupportedWeightType(GgmlType type) {
  switch (type) {
    case GgmlType::kF32:
    case GgmlType::kF16:
    case GgmlType::kBF16:
    case GgmlType::kQ4_0:
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_0:
    case GgmlType::kQ5_1:
    case GgmlType::kQ8_0:
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kIQ4_NL:
    case GgmlType::kIQ4_XS:
    case GgmlType::kMXFP4:
      return true;
    default:
      return IsGridType(type);
  }
}

void MatVec(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x, float* y,
            ThreadPool* pool) {
  MatMul(type, w, rows, cols, x, 1, y, pool);
}

void MatMul(GgmlType type, const void* w, int64_t rows, int64_t cols, const float* x,
            int64_t n_tokens, float* y, ThreadPool* pool) {
  CHECK(IsSupportedWeightType(type)) << TypeName(type) << " is not a matmul weight type";
  CHECK(IsValidRowLength(type, cols)) << TypeName(type) << " row of " << cols << " elements";
  CHECK_GE(rows, 0);
  CHECK_GE(n_tokens, 0);
  if (rows == 0 || n_tokens == 0) return;
  const KernelTable& kernels = ActiveKernels();
  const ActFormat format = ActFormatFor(type);
  const uint64_t act_row_bytes = ActivationRowBytes(MatMulActivationType(type), cols);
  const uint64_t w_row_bytes = RowBytes(type, cols);
  const bool parallel = pool != nullptr && pool->size() > 1 &&
                        w_row_bytes * static_cast<uint64_t>(rows) >= kMinParallelBytes;

  const uint8_t* act = reinterpret_cast<const uint8_t*>(x);
  if (format != ActFormat::kF32) {
    uint8_t* scratch = ActivationScratch(act_row_bytes * static_cast<uint64_t>(n_tokens));
    const QuantizeJob job{.fn = format == ActFormat::kQ8_0   ? kernels.quantize_q8_0
                                : format == ActFormat::kQ8_1 ? kernels.quantize_q8_1
                                                             : kernels.quantize_q8_k,
                          .x = x,
                          .cols = cols,
                          .dst = scratch,
                          .dst_row_bytes = act_row_bytes};
    auto quantize = [&job](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        job.fn(job.x + t * job.cols, job.dst + static_cast<uint64_t>(t) * job.dst_row_bytes,
               job.cols);
      }
    };
    if (parallel && n_tokens > 1) {
      pool->ParallelFor(n_tokens, quantize);
    } else {
      quantize(0, n_tokens);
    }
    act = scratch;
  }

  const RowsArgs args{.w = static_cast<const uint8_t*>(w),
                      .w_row_bytes = w_row_bytes,
                      .cols = cols,
                      .act = act,
                      .act_row_bytes = act_row_bytes,
                      .n_tokens = n_tokens,
                      .y = y,
                      .y_stride = rows};
  const RowsFn rows_fn = kernels.rows[static_cast<int>(type)];
  CHECK(rows_fn != nullptr) << "no kernel for " << TypeName(type);
  // Rows per block: a multiple of 16 (the widest row tile) holding about kRowBlockBytes.
  const int64_t block_rows =
      std::max<int64_t>(16, static_cast<int64_t>(kRowBlockBytes / w_row_bytes) / 16 * 16);
  auto run = [&](int64_t begin, int64_t end) {
    if (n_tokens <= kTokenChunk) return rows_fn(args, begin, end);
    for (int64_t r0 = begin; r0 < end; r0 += block_rows) {
      const int64_t r1 = std::min(end, r0 + block_rows);
      for (int64_t t0 = 0; t0 < n_tokens; t0 += kTokenChunk) {
        RowsArgs chunk = args;
        chunk.act = args.act + static_cast<uint64_t>(t0) * act_row_bytes;
        chunk.n_tokens = std::min(kTokenChunk, n_tokens - t0);
        chunk.y = args.y + t0 * rows;
        rows_fn(chunk, r0, r1);
      }
    }
  };
  if (parallel) {
    pool->ParallelFor(rows, run);
  } else {
    run(0, rows);
  }
}

void DequantizeRow(GgmlType type, const void* src, float* dst, int64_t n) {
  CHECK(IsValidRowLength(type, n)) << TypeName(type) << " row of " << n << " elements";
  const auto* s = static_cast<const uint8_t*>(src);
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, s + 2 * i, sizeof(h));
        dst[i] = type == GgmlType::kF16 ? Fp16ToFp32(h) : Bf16ToFp32(h);
      }
      return;
    case GgmlType::kQ4_0:
      return DequantizeQ4_0(reinterpret_cast<const BlockQ4_0*>(s), dst, n);
    case GgmlType::kQ4_1:
      return DequantizeQ4_1(reinterpret_cast<const BlockQ4_1*>(s), dst, n);
    case GgmlType::kQ5_0:
      return DequantizeQ5_0(reinterpret_cast<const BlockQ5_0*>(s), dst, n);
    case GgmlType::kQ5_1:
      return DequantizeQ5_1(reinterpret_cast<const BlockQ5_1*>(s), dst, n);
    case GgmlType::kQ8_0:
      return DequantizeQ8_0(reinterpret_cast<const BlockQ8_0*>(s), dst, n);
    case GgmlType::kQ8_1:
      return DequantizeQ8_1(reinterpret_cast<const BlockQ8_1*>(s), dst, n);
    case GgmlType::kQ2_K:
      return DequantizeQ2_K(reinterpret_cast<const BlockQ2_K*>(s), dst, n);
    case GgmlType::kQ3_K:
      return DequantizeQ3_K(reinterpret_cast<const BlockQ3_K*>(s), dst, n);
    case GgmlType::kQ4_K:
      return DequantizeQ4_K(reinterpret_cast<const BlockQ4_K*>(s), dst, n);
    case GgmlType::kQ5_K:
      return DequantizeQ5_K(reinterpret_cast<const BlockQ5_K*>(s), dst, n);
    case GgmlType::kQ6_K:
      return DequantizeQ6_K(reinterpret_cast<const BlockQ6_K*>(s), dst, n);
    case GgmlType::kQ8_K: {
      // Q8_K blocks carry an f32 field: copy each to an aligned block first.
      BlockQ8_K block;
      for (int64_t i = 0; i < n / kQkK; ++i) {
        std::memcpy(&block, s + i * sizeof(BlockQ8_K), sizeof(block));
        DequantizeQ8_K(&block, dst + i * kQkK, kQkK);
      }
      return;
    }
    case GgmlType::kIQ4_NL:
      return DequantizeIq4Nl(reinterpret_cast<const BlockIq4Nl*>(s), dst, n);
    case GgmlType::kIQ4_XS:
      return DequantizeIq4Xs(reinterpret_cast<const BlockIq4Xs*>(s), dst, n);
    case GgmlType::kIQ2_XXS:
      return DequantizeIq2Xxs(reinterpret_cast<const BlockIq2Xxs*>(s), dst, n);
    case GgmlType::kIQ2_XS:
      return DequantizeIq2Xs(reinterpret_cast<const BlockIq2Xs*>(s), dst, n);
    case GgmlType::kIQ2_S:
      return DequantizeIq2S(reinterpret_cast<const BlockIq2S*>(s), dst, n);
    case GgmlType::kIQ3_XXS:
      return DequantizeIq3Xxs(reinterpret_cast<const BlockIq3Xxs*>(s), dst, n);
    case GgmlType::kIQ3_S:
      return DequantizeIq3S(reinterpret_cast<const BlockIq3S*>(s), dst, n);
    case GgmlType::kIQ1_S:
      return DequantizeIq1S(reinterpret_cast<const BlockIq1S*>(s), dst, n);
    case GgmlType::kIQ1_M:
      return DequantizeIq1M(reinterpret_cast<const BlockIq1M*>(s), dst, n);
    case GgmlType::kMXFP4:
      return DequantizeMxfp4(reinterpret_cast<const BlockMxfp4*>(s), dst, n);
    default:
      CHECK(false) << "DequantizeRow: unsupported type " << TypeName(type);
  }
}

void QuantizeRow(GgmlType type, const float* src, void* dst, int64_t n) {
  CHECK(IsValidRowLength(type, n)) << TypeName(type) << " row of " << n << " elements";
  auto* d = static_cast<uint8_t*>(dst);
  switch (type) {
    case GgmlType::kF32:
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = type == GgmlType::kF16 ? Fp32ToFp16(src[i]) : Fp32ToBf16(src[i]);
        std::memcpy(d + 2 * i, &h, sizeof(h));
      }
      return;
    case GgmlType::kQ4_0:
      return QuantizeQ4_0(src, reinterpret_cast<BlockQ4_0*>(d), n);
    case GgmlType::kQ4_1:
      return QuantizeQ4_1(src, reinterpret_cast<BlockQ4_1*>(d), n);
    case GgmlType::kQ5_0:
      return QuantizeQ5_0(src, reinterpret_cast<BlockQ5_0*>(d), n);
    case GgmlType::kQ5_1:
      return QuantizeQ5_1(src, reinterpret_cast<BlockQ5_1*>(d), n);
    case GgmlType::kQ8_0:
      return QuantizeQ8_0(src, reinterpret_cast<BlockQ8_0*>(d), n);
    case GgmlType::kQ8_1:
      return QuantizeQ8_1(src, reinterpret_cast<BlockQ8_1*>(d), n);
    case GgmlType::kQ2_K:
      return QuantizeQ2_K(src, reinterpret_cast<BlockQ2_K*>(d), n);
    case GgmlType::kQ3_K:
      return QuantizeQ3_K(src, reinterpret_cast<BlockQ3_K*>(d), n);
    case GgmlType::kQ4_K:
      return QuantizeQ4_K(src, reinterpret_cast<BlockQ4_K*>(d), n);
    case GgmlType::kQ5_K:
      return QuantizeQ5_K(src, reinterpret_cast<BlockQ5_K*>(d), n);
    case GgmlType::kQ6_K:
      return QuantizeQ6_K(src, reinterpret_cast<BlockQ6_K*>(d), n);
    case GgmlType::kQ8_K: {
      BlockQ8_K block;
      for (int64_t i = 0; i < n / kQkK; ++i) {
        QuantizeQ8_K(src + i * kQkK, &block, kQkK);
        std::memcpy(d + i * sizeof(BlockQ8_K), &block, sizeof(block));
      }
      return;
    }
    case GgmlType::kIQ4_NL:
      return QuantizeIq4Nl(src, reinterpret_cast<BlockIq4Nl*>(d), n);
    case GgmlType::kIQ4_XS:
      return QuantizeIq4Xs(src, reinterpret_cast<BlockIq4Xs*>(d), n);
    case GgmlType::kMXFP4:
      return QuantizeMxfp4(src, reinterpret_cast<BlockMxfp4*>(d), n);
    default:
      CHECK(false) << "QuantizeRow: unsupported type " << TypeName(type);
  }
}

}  // namespace sluice
