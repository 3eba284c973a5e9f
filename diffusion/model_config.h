// What kind of Stable Diffusion model a checkpoint holds, detected from the tensors present and
// their shapes, as other tools do:
//   SDXL   conditioner.embedders.1.model.* (OpenCLIP bigG) beside embedders.0 (CLIP ViT-L)
//   SD 2.x cond_stage_model.model.* (OpenCLIP ViT-H)
//   SD 1.x cond_stage_model.transformer.text_model.* (CLIP ViT-L)
// The UNet's and VAE's structure (channels, levels, residual blocks per level, transformer depth
// per level, context width, linear or convolutional projections, SDXL's label embedding) and the
// text encoders' widths and layer counts are read off the tensor names and shapes, so scaled-down
// models of a family (`sluice synth --scale`) load as well as the real ones. What shapes cannot say
// comes from the family: heads (8 in SD 1.x, 64-channel heads after), the VAE scale factor
// (0.18215, SDXL 0.13025), the text encoders' activations and layers used. The prediction type
// cannot be read off: eps by default (SD 1.x, SD 2.x base, SD-Turbo, SDXL); --prediction v for
// 768-v models.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "diffusion/checkpoint.h"
#include "diffusion/clip_text.h"
#include "diffusion/denoiser.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"

namespace sluice::diffusion {

enum class Family { kSd1, kSd2, kSdxl };
const char* FamilyName(Family f);  // "SD 1.x", "SD 2.x", "SDXL"

struct TextEncoderSetup {
  ClipTextConfig config;
  int skip = 0;  // layers left out at the end
  bool final_norm = true;
  int32_t pad_id = 49407;
};

struct DiffusionConfig {
  Family family = Family::kSd1;
  std::vector<TextEncoderSetup> encoders;  // SDXL: CLIP-L then bigG (whose pooled output is used)
  UNetConfig unet;
  VaeConfig vae;
  Prediction prediction = Prediction::kEps;
  int latent_multiple = 8;  // latent sizes must be multiples of this (2^(levels - 1))
};

// NotFound / Unsupported naming the file and what is missing when the checkpoint is not one of the
// families (a diffusers folder's unet file alone, an LLM GGUF, ...).
Result<DiffusionConfig> DetectDiffusionConfig(const Checkpoint& ckpt);

}  // namespace sluice::diffusion
