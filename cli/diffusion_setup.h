// Loading a diffusion model for a command: the defaults the model's family and name imply
// (steps, sampler, schedule, size), and the memory plan of --ram (`sluice diffuse` and
// `sluice bench` on a diffusion checkpoint share it).
//
// The plan: activations at the image size (diffusion::ActivationBytes, with the decoder (the VAE,
// or TAESD with --taesd) tiled when a whole decode would not fit beside the UNet's working set),
// the vectors converted at load, and kProgramBytes for the rest of the process; what is left of the
// budget is for weights, which stream (diffusion/weight_stream.h). Below the minimum, an error
// names it and its parts.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/base/status.h"
#include "diffusion/pipeline.h"

namespace sluice::cli {

// What the memory plan allows for the process beyond weights and activations: code, heap, the
// tokenizer, thread stacks, the conditioning, the mapping's page tables.
inline constexpr uint64_t kProgramBytes = 128ull << 20;

// Defaults from the model: turbo models (by file name) take 1 step of euler on the trailing
// schedule without guidance; SDXL base 1024 px; others 20 steps of euler_a at CFG 7, 512 px.
// Fields already set (steps > 0, cfg_scale >= 0, width/height > 0) are kept.
struct DiffuseDefaults {
  int steps = 0;
  double cfg_scale = -1;
  std::string sampler, schedule;
  int width = 0, height = 0;
};
// The command's --steps, --cfg-scale, --sampler, --schedule, -W and -H (diffuse and bench).
DiffuseDefaults DiffuseDefaultsFromFlags();
Status ApplyModelDefaults(const diffusion::DiffusionModel& model, const std::string& path,
                          const DiffuseDefaults& flags, diffusion::GenerateOptions* o);

// The file or folder's name (a diffusers folder given with a trailing '/' too).
std::string ModelName(const std::string& path);

// A checkpoint diffusion::DetectDiffusionConfig accepts (bench and convert choose by it).
bool IsDiffusionCheckpoint(const std::string& path);

// The device's random-read bandwidth on `path`: 4 MiB O_DIRECT reads (about a streamed block's
// size) at random offsets, `queue_depth` in flight, `total_bytes` in all; 0 for a file smaller
// than two reads.
Result<double> MeasureDeviceGBps(const std::string& path, uint64_t file_bytes, uint64_t total_bytes,
                                 int queue_depth, uint64_t seed);

// Under --ram: large allocations (activation buffers) come from their own mappings and go back
// to the system when freed. glibc otherwise raises its mmap threshold after the first large free
// (up to 32 MiB) and serves later buffers from the heap, which keeps freed memory: SD 1.5 at
// --ram 512M peaked 1 MiB over the budget with the default, with the plan's estimates unchanged.
void ReturnFreedMemory();

struct RamPlan {
  uint64_t ram = 0, activations = 0, vectors = 0, program = 0, weights = 0;
  diffusion::StreamPlan whole;  // the plan were everything kept: total and minimum
  std::string text;             // "memory plan for --ram ...": for the log
  std::string tiling;           // why the decoder tiles, or ""
};

// With ram > 0: picks the decoder's tile (when o->vae_tile is 0), checks the minimum, and
// reloads `*model` streaming within the plan. `load` carries the user's prediction override (else
// detected) and TAESD file; its budget and I/O fields are the plan's.
Result<RamPlan> LoadWithinRam(const std::string& path, const diffusion::DiffusionLoadOptions& load,
                              uint64_t ram, diffusion::GenerateOptions* o,
                              std::unique_ptr<diffusion::DiffusionModel>* model);

}  // namespace sluice::cli
