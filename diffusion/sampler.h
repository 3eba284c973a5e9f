// Noise schedules and samplers (k-diffusion's formulation, as stable-diffusion.cpp and the popular
// UIs use it): the model is a denoiser D(x, sigma) of latents x noised to level sigma, and a
// sampler walks a decreasing list of sigmas down to 0.
//
// Schedule of the SD models (all families): betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2,
// alphas_cumprod = cumprod(1 - betas), sigma(t) = sqrt((1 - ac_t) / ac_t), t in 0..999, and
// between integers by interpolating log sigma.
//   discrete  t = linspace(999, 0, steps)                    (k-diffusion's default)
//   karras    sigma_max^(1/7) -> sigma_min^(1/7) linearly, to the 7th power (Karras et al.)
//   trailing  t = 999, 999 - 1000/steps, ...                 (SD-Turbo / SDXL-Turbo, LCM)
// each followed by 0.
// Samplers: euler, euler_a (ancestral: fresh noise each step), dpm++2m (second order multistep),
// lcm (the denoised latent renoised to the next sigma).
//
// Thread-safety: pure functions; a sampler run calls the denoiser from the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "diffusion/rng.h"

namespace sluice::diffusion {

class NoiseSchedule {
 public:
  NoiseSchedule();
  double sigma_min() const { return sigmas_.front(); }
  double sigma_max() const { return sigmas_.back(); }
  double SigmaAt(double t) const;         // t in [0, 999]
  double TimestepOf(double sigma) const;  // the inverse (clamped to [0, 999])

 private:
  std::vector<double> sigmas_;  // (1000) by t
  std::vector<double> log_sigmas_;
};

enum class ScheduleKind { kDiscrete, kKarras, kTrailing };
Result<ScheduleKind> ParseScheduleKind(std::string_view name);
const char* ScheduleKindName(ScheduleKind kind);
// steps + 1 sigmas, decreasing, the last 0.
std::vector<double> ScheduleSigmas(const NoiseSchedule& s, ScheduleKind kind, int steps);

enum class SamplerKind { kEuler, kEulerAncestral, kDpmpp2m, kLcm };
Result<SamplerKind> ParseSamplerKind(std::string_view name);  // euler, euler_a, dpm++2m, lcm
const char* SamplerKindName(SamplerKind kind);

// The denoiser: writes D(x, sigma) for latents x (n values) into `denoised`. Returns false to
// stop (cancelled).
using Denoiser =
    std::function<bool(const std::vector<float>& x, double sigma, std::vector<float>& denoised)>;
// Called after each step with (step done, steps).
using StepCallback = std::function<void(int, int)>;

// Runs the sampler from x (already scaled to sigmas[0]) to sigma 0, in place. `noise` supplies
// fresh Gaussian noise (ancestral and LCM steps) in the caller's layout. Cancelled when the
// denoiser returns false.
Status Sample(SamplerKind kind, const std::vector<double>& sigmas, const Denoiser& denoise,
              const std::function<std::vector<float>()>& noise, std::vector<float>& x,
              const StepCallback& on_step = nullptr);

}  // namespace sluice::diffusion
