// The UNet as a k-diffusion denoiser D(x, sigma), with classifier-free guidance:
//   c_in = 1 / sqrt(sigma^2 + 1), t = the schedule's timestep of sigma
//   out = UNet(c_in x, t, context) for the prompt and, with guidance, for the negative prompt
//         in the same batch (each weight read once for both); out = uncond + scale (cond - uncond)
//   eps prediction: D = x - sigma out
//   v prediction:   D = x / (sigma^2 + 1) - out sigma / sqrt(sigma^2 + 1)
// Guidance scale 1 (or 0, as SD-Turbo is run) skips the negative half.
//
// Thread-safety: one call at a time (the pool is the caller's).
#pragma once

#include <atomic>
#include <vector>

#include "diffusion/sampler.h"
#include "diffusion/unet.h"

namespace sluice::diffusion {

enum class Prediction { kEps, kV };

struct Conditioning {
  std::vector<float> context;  // (n_ctx, context_dim)
  std::vector<float> y;        // (adm_in_channels) SDXL, else empty
};

struct GuidedDenoiser {
  const UNet* unet = nullptr;
  const NoiseSchedule* schedule = nullptr;
  Prediction prediction = Prediction::kEps;
  float cfg_scale = 1.0f;
  const Conditioning* cond = nullptr;
  const Conditioning* uncond = nullptr;  // used when cfg_scale is neither 0 nor 1
  int n_ctx = 77;
  int h = 0, w = 0;  // latent size
  ThreadPool* pool = nullptr;
  const std::atomic<bool>* cancel = nullptr;
  int evaluations = 0;          // UNet forward calls so far
  BlockUser* blocks = nullptr;  // streaming, or null
  Status error;                 // a failed evaluation (operator() returned false)

  bool guided() const { return cfg_scale != 1.0f && cfg_scale != 0.0f && uncond != nullptr; }
  bool operator()(const std::vector<float>& x, double sigma, std::vector<float>& denoised);
};

}  // namespace sluice::diffusion
