// `sluice synth`: writes a model with the exact expert shapes and quantized formats of a real
// model (synth/synth_presets.h) and random, numerically sane weights (synth/synth_weights.h), as a
// sluice archive or as a standard GGUF of a real architecture, so that sluice and other engines
// can be benchmarked on the very same bytes.
//
// The metadata is complete: the architecture's config keys, a small byte-level vocabulary with a
// ChatML template (synth/synth_vocab.h), and
//   sluice.synthetic = true                  the weights are random (bench and chat say so)
//   sluice.default_routing = "synthetic"     engines use synthetic routing unless told otherwise
//   sluice.synth.preset / .seed / .full_layers / .full_experts
// Same preset, scale and seed => byte-identical tensors in both formats.
//
// Speed: experts are assembled from pre-quantized row pools on `threads` threads and handed to
// the archive writer concurrently; GGUF is written in its tensor order on one thread. Free space
// is checked before anything is written (the error says which --layers would fit), output goes
// to a temporary name and appears under the final name only when complete, and a cancel flag
// (Ctrl-C in the CLI) stops the work and removes the temporary file.
//
// Thread-safety: WriteSynthModel is reentrant; `progress` is called from the calling thread only.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/base/status.h"
#include "io/metadata.h"
#include "synth/synth_presets.h"

namespace sluice {

enum class SynthFormat { kArchive, kGguf };
Result<SynthFormat> ParseSynthFormat(std::string_view name);  // "archive" | "sluice" | "gguf"

struct SynthOptions {
  SynthShape shape;  // a preset, scaled (ScaleSynthShape)
  SynthFormat format = SynthFormat::kArchive;
  uint64_t seed = 1;
  int threads = 2;  // expert assembly threads (archive)
  // Random rows quantized per (type, row length, stddev); tests use less (the weights change,
  // their statistics do not).
  uint64_t pool_bytes = 4ull << 20;
  bool check_free_space = true;
  const std::atomic<bool>* cancel = nullptr;  // set to stop (Cancelled, nothing left behind)
  // (bytes done, bytes total), about 10 times a second and once at the end.
  std::function<void(uint64_t, uint64_t)> progress;
};

struct SynthResult {
  std::string path;
  uint64_t file_bytes = 0;
  uint64_t expert_bytes = 0;  // all routed experts
  uint64_t dense_bytes = 0;
  double seconds = 0;
};

// The metadata a synthetic model carries (config, tokenizer, sluice.* keys).
Metadata SynthMetadata(const SynthShape& shape, uint64_t seed);

// Bytes the output file will take, within a few MB (headers and alignment padding aside).
uint64_t SynthFileBytes(const SynthShape& shape);

// ResourceExhausted when `bytes` do not fit on the filesystem holding `path` (leaving 1 GiB
// free), naming both sizes and the largest --layers that would fit.
Status CheckSynthFreeSpace(const std::string& path, const SynthShape& shape);

Result<SynthResult> WriteSynthModel(const std::string& path, const SynthOptions& options);

}  // namespace sluice
