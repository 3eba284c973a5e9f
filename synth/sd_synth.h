// Synthetic Stable Diffusion checkpoints: the real tensor names and shapes of SD 1.5, SD-Turbo
// (SD 2.1's architecture) and SDXL-Turbo (SDXL's), with random weights, as single-file
// safetensors that other engines (stable-diffusion.cpp, ComfyUI) load as they are, so users can
// benchmark without a download. The tensor list comes from the networks' own Load functions run
// on a recording reader (diffusion/checkpoint.h), so it is exactly what sluice (and the original
// LDM code) expects.
//
// Weights are numerically sane, not meaningful (the image is noise): norm scales 1, biases
// N(0, 0.02),
// matrices and kernels N(0, 1/fan_in) (activations keep their scale through the residual
// stacks), token embeddings N(0, 0.02), position embeddings N(0, 0.01). Stored as F16, as the
// published checkpoints are. `tiny` keeps every block and name but shrinks widths, layer counts
// and transformer depths, for tests.
//
// Thread-safety: reentrant; `progress` is called from the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "diffusion/model_config.h"

namespace sluice {

struct SdPreset {
  std::string name;         // "sd15", "sd-turbo", "sdxl-turbo"
  std::string description;  // one line
  diffusion::DiffusionConfig config;
  int default_steps = 20;
  float default_cfg = 7.0f;
  int default_size = 512;
};

// The presets' names, for --help and errors.
std::vector<std::string> SdPresetNames();
// InvalidArgument listing the names when unknown.
Result<SdPreset> FindSdPreset(std::string_view name, bool tiny);

struct SdTensorSpec {
  std::string name;
  std::vector<int64_t> shape;
};
// Every tensor of a checkpoint of `config`, in the order the loaders read them.
Result<std::vector<SdTensorSpec>> SdTensorSpecs(const diffusion::DiffusionConfig& config);

struct SdSynthOptions {
  uint64_t seed = 1;
  const std::atomic<bool>* cancel = nullptr;  // set: stop (Cancelled), nothing left behind
  std::function<void(uint64_t done, uint64_t total)> progress;
};
// Writes the checkpoint (safetensors, F16). Returns its size in bytes.
Result<uint64_t> WriteSdCheckpoint(const std::string& path, const SdPreset& preset,
                                   const SdSynthOptions& options);
// A TAESD (diffusion/taesd.h) with random weights, named as diffusers and stable-diffusion.cpp
// name it (encoder.layers.*, decoder.layers.*), F16, ~4.7 MB.
Result<uint64_t> WriteTaesdCheckpoint(const std::string& path, const SdSynthOptions& options);

}  // namespace sluice
