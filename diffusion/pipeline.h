// Text to image: the model (text encoders, UNet, VAE decoder, tokenizer) and one generation.
//
//   cond   = text encoders(prompt tokens) with emphasis weights; SDXL: [CLIP-L | bigG] context and
//            y = [bigG pooled, size embeddings (original h, w; crop top, left; target h, w)]
//   uncond = the same of the negative prompt (SDXL with an empty negative prompt: zeros, as
//            diffusers does)
//   x      = noise(seed) * sigma_max; sampler steps with the guided denoiser; image = VAE(x)
//
// Weights are either resident (the file's mapping) or streamed within a byte budget
// (diffusion/weight_stream.h): a generation announces its whole order of blocks up front (text
// encoders, the UNet once per step, the VAE) and the stream reads ahead along it.
// Non-goals here: img2img, LoRA, ControlNet.
// Thread-safety: one generation at a time per model.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/threads/thread_pool.h"
#include "diffusion/checkpoint.h"
#include "diffusion/clip_text.h"
#include "diffusion/model_config.h"
#include "diffusion/rng.h"
#include "diffusion/sampler.h"
#include "diffusion/taesd.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"
#include "tokenizer/clip_tokenizer.h"

namespace sluice::diffusion {

struct DiffusionLoadOptions {
  std::optional<Prediction> prediction = std::nullopt;  // overrides the detected default when set
  // Bytes for weights: 0 keeps them resident (mapped); else they stream within this budget
  // (PlanStream says what it keeps; below the minimum Load fails naming it).
  uint64_t weight_budget = 0;
  IoOptions io = {};
  // A TAESD file (diffusion/taesd.h): images decode through it instead of the KL-VAE. Its
  // weights stay mapped (a few MB); the VAE's blocks are then never read.
  std::string taesd_path = {};
};

class DiffusionModel {
 public:
  // Detects the family (model_config.h); `prediction` overrides the default when set.
  static Result<std::unique_ptr<DiffusionModel>> Load(const std::string& path,
                                                      std::optional<Prediction> prediction);
  static Result<std::unique_ptr<DiffusionModel>> Load(const std::string& path,
                                                      const DiffusionLoadOptions& options);
  const DiffusionConfig& config() const { return config_; }
  const Checkpoint& checkpoint() const { return *ckpt_; }
  const ClipTokenizer& tokenizer() const { return *tokenizer_; }
  const UNet& unet() const { return *unet_; }
  const VaeDecoder& vae() const { return *vae_; }
  // Null unless loaded with a taesd_path.
  const TinyDecoder* tiny_decoder() const { return taesd_.get(); }
  const std::vector<std::unique_ptr<ClipTextModel>>& encoders() const { return encoders_; }
  uint64_t owned_bytes() const { return owned_bytes_; }
  // Null when the weights are resident.
  DiffusionStream* stream() const { return stream_.get(); }
  // The streaming blocks the networks registered, in the order one generation first uses them.
  const std::vector<std::string>& block_prefixes() const { return reader_->blocks(); }

 private:
  DiffusionConfig config_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<ClipTokenizer> tokenizer_;
  std::vector<std::unique_ptr<ClipTextModel>> encoders_;
  std::unique_ptr<UNet> unet_;
  std::unique_ptr<VaeDecoder> vae_;
  std::unique_ptr<TinyDecoder> taesd_;
  std::unique_ptr<WeightReader> reader_;  // owns the f32 copies the networks point at
  uint64_t owned_bytes_ = 0;
  std::unique_ptr<PlacedRegion> region_;  // streaming: where blocks are read to
  std::unique_ptr<DiffusionStream> stream_;
};

struct GenerateOptions {
  std::string prompt;
  std::string negative_prompt;
  int width = 512, height = 512;
  int steps = 20;
  float cfg_scale = 7.0f;
  SamplerKind sampler = SamplerKind::kEulerAncestral;
  ScheduleKind schedule = ScheduleKind::kDiscrete;
  uint64_t seed = 42;
  RngKind rng = RngKind::kCuda;
  int vae_tile = 0;  // > 0: the decoder (VAE or TAESD) works in tiles of this many latent pixels
};

struct GenerateTimings {
  double text_seconds = 0, sampling_seconds = 0, decode_seconds = 0;
  int steps = 0, unet_evaluations = 0;
  bool prompt_truncated = false;
  int prompt_tokens = 0;
};

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // (height, width, 3)
};

struct GenerateHooks {
  std::function<void(const char* stage)> on_stage;  // "text", "sampling", "decoding"
  StepCallback on_step;
  const std::atomic<bool>* cancel = nullptr;
};

// InvalidArgument for sizes that are not multiples of 8 * latent_multiple, steps < 1, and the
// like; Cancelled when hooks.cancel was set.
Result<Image> Generate(const DiffusionModel& model, const GenerateOptions& options,
                       ThreadPool* pool, const GenerateHooks& hooks, GenerateTimings* timings);

// AUTOMATIC1111's "parameters" text of a generation (the PNG text chunk, diffusion/png.h):
//   <prompt>\nNegative prompt: <negative>\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: ...,
//   Size: 512x512, Model: <model_name>, RNG: NV, Version: sluice <version>
std::string ParametersText(const GenerateOptions& o, const std::string& model_name,
                           const std::string& version);

// The bytes of activations a generation of width x height needs at its peak (the UNet's working
// set with the batch guidance makes, or the decoder's at full size, whichever is larger), for the
// memory plan. An estimate from the networks' buffer sizes, on the safe side.
// vae_tile > 0: the decoder works tile by tile (diffusion/tiles.h); taesd: the decoder is TAESD.
uint64_t ActivationBytes(const DiffusionConfig& config, int width, int height, bool guided,
                         int vae_tile = 0, bool taesd = false);

// SD 2.x checkpoints come as eps (512-base, SD-Turbo) and v (768-v) models with the same tensors:
// one UNet evaluation on a flat input tells them apart (what AUTOMATIC1111 and
// stable-diffusion.cpp do). Load runs it for SD 2.x unless the prediction is given.
Result<Prediction> DetectSd2Prediction(const UNet& unet, DiffusionStream* stream = nullptr);

// The conditioning of one prompt (exposed for tests). With a stream, the encoders' passes must
// have been announced.
Result<Conditioning> EncodePrompt(const DiffusionModel& model, const std::string& prompt, bool zero,
                                  int width, int height, ThreadPool* pool, bool* truncated,
                                  int* prompt_tokens);

}  // namespace sluice::diffusion
