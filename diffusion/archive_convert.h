// `sluice convert` for a Stable Diffusion checkpoint: a diffusion archive, i.e. a GGUF with the
// checkpoint's own tensor names (what stable-diffusion.cpp reads too) laid out for streaming:
//   - tensors in the order the networks first use them, grouped by streaming block (the blocks
//     WeightReader::Block registers, diffusion/weight_stream.h), the rest after;
//   - every tensor 4 KiB aligned (general.alignment 4096), so each block is one contiguous,
//     aligned O_DIRECT read;
//   - each block's xxh3-64 (over its span, padding included) in kBlockChecksumsKey, checked after
//     every read of it;
//   - matrices (Linear weights, convolutions, embedding tables) in `type` where their rows are
//     whole blocks of it (F16 otherwise, as stable-diffusion.cpp does), vectors in F32;
//   - the source's string metadata (a synthetic model stays marked synthetic).
// Tensors the networks never read and that are not numbers (e.g. I64 position ids) are dropped.
// The output is written under a temporary name and renamed when complete (io/gguf_writer.h):
// a cancelled or failed conversion leaves nothing.
// Thread-safety: one conversion per call; `cancel` and `on_progress` from the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/base/ggml_type.h"
#include "core/base/status.h"

namespace sluice::diffusion {

struct ArchiveConvertOptions {
  GgmlType type = GgmlType::kF16;  // F16, or a quantized type the kernels run (Q8_0, Q4_K, ...)
  const std::atomic<bool>* cancel = nullptr;
  std::function<void(uint64_t done, uint64_t total)> on_progress = {};  // bytes of output
};

struct ArchiveConvertStats {
  uint64_t tensors = 0, quantized = 0, dropped = 0, blocks = 0;
  uint64_t file_bytes = 0, source_bytes = 0;
};

Result<ArchiveConvertStats> ConvertDiffusionCheckpoint(const std::string& in,
                                                       const std::string& out,
                                                       const ArchiveConvertOptions& options);

}  // namespace sluice::diffusion
