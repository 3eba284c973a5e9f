#include "diffusion/sampler.h"

#include <algorithm>
#include <cmath>

namespace sluice::diffusion {

NoiseSchedule::NoiseSchedule() {
  constexpr int kSteps = 1000;
  const double b0 = std::sqrt(0.00085), b1 = std::sqrt(0.012);
  double ac = 1.0;
  for (int t = 0; t < kSteps; ++t) {
    const double b = b0 + (b1 - b0) * t / (kSteps - 1);
    ac *= 1.0 - b * b;
    sigmas_.push_back(std::sqrt((1.0 - ac) / ac));
    log_sigmas_.push_back(std::log(sigmas_.back()));
  }
}

double NoiseSchedule::SigmaAt(double t) const {
  t = std::clamp(t, 0.0, static_cast<double>(sigmas_.size() - 1));
  const int lo = static_cast<int>(std::floor(t));
  const int hi = std::min(lo + 1, static_cast<int>(sigmas_.size()) - 1);
  const double w = t - lo;
  return std::exp((1 - w) * log_sigmas_[lo] + w * log_sigmas_[hi]);
}

double NoiseSchedule::TimestepOf(double sigma) const {
  const double ls = std::log(sigma);
  const int n = static_cast<int>(log_sigmas_.size());
  // The last index whose log sigma is <= ls (k-diffusion's sigma_to_t), clamped to n - 2.
  int lo = 0;
  for (int i = 0; i < n; ++i) {
    if (ls - log_sigmas_[i] >= 0) lo = i;
  }
  lo = std::min(lo, n - 2);
  const double l = log_sigmas_[lo], h = log_sigmas_[lo + 1];
  const double w = std::clamp((l - ls) / (l - h), 0.0, 1.0);
  return (1 - w) * lo + w * (lo + 1);
}

Result<ScheduleKind> ParseScheduleKind(std::string_view name) {
  if (name == "discrete") return ScheduleKind::kDiscrete;
  if (name == "karras") return ScheduleKind::kKarras;
  if (name == "trailing") return ScheduleKind::kTrailing;
  return InvalidArgument("--schedule '", name, "': expected discrete, karras or trailing");
}

const char* ScheduleKindName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kDiscrete:
      return "discrete";
    case ScheduleKind::kKarras:
      return "karras";
    case ScheduleKind::kTrailing:
      return "trailing";
  }
  return "?";
}

std::vector<double> ScheduleSigmas(const NoiseSchedule& s, ScheduleKind kind, int steps) {
  CHECK(steps >= 1) << steps;
  std::vector<double> out;
  switch (kind) {
    case ScheduleKind::kDiscrete:
      for (int i = 0; i < steps; ++i) {
        const double t = steps == 1 ? 999.0 : 999.0 - 999.0 * i / (steps - 1);
        out.push_back(s.SigmaAt(t));
      }
      break;
    case ScheduleKind::kKarras: {
      const double rho = 7.0;
      const double lo = std::pow(s.sigma_min(), 1 / rho), hi = std::pow(s.sigma_max(), 1 / rho);
      for (int i = 0; i < steps; ++i) {
        const double ramp = steps == 1 ? 0.0 : static_cast<double>(i) / (steps - 1);
        out.push_back(std::pow(hi + ramp * (lo - hi), rho));
      }
      break;
    }
    case ScheduleKind::kTrailing:
      for (int i = 0; i < steps; ++i) {
        // diffusers' "trailing" spacing: round(1000 - i * 1000 / steps) - 1.
        const double t = std::round(1000.0 - i * 1000.0 / steps) - 1.0;
        out.push_back(s.SigmaAt(t));
      }
      break;
  }
  out.push_back(0.0);
  return out;
}

Result<SamplerKind> ParseSamplerKind(std::string_view name) {
  if (name == "euler") return SamplerKind::kEuler;
  if (name == "euler_a") return SamplerKind::kEulerAncestral;
  if (name == "dpm++2m" || name == "dpmpp2m") return SamplerKind::kDpmpp2m;
  if (name == "lcm") return SamplerKind::kLcm;
  return InvalidArgument("--sampler '", name, "': expected euler, euler_a, dpm++2m or lcm");
}

const char* SamplerKindName(SamplerKind kind) {
  switch (kind) {
    case SamplerKind::kEuler:
      return "euler";
    case SamplerKind::kEulerAncestral:
      return "euler_a";
    case SamplerKind::kDpmpp2m:
      return "dpm++2m";
    case SamplerKind::kLcm:
      return "lcm";
  }
  return "?";
}

Status Sample(SamplerKind kind, const std::vector<double>& sigmas, const Denoiser& denoise,
              const std::function<std::vector<float>()>& noise, std::vector<float>& x,
              const StepCallback& on_step) {
  const int steps = static_cast<int>(sigmas.size()) - 1;
  const size_t n = x.size();
  std::vector<float> den(n), old_den;
  for (int i = 0; i < steps; ++i) {
    const double s = sigmas[i], s_next = sigmas[i + 1];
    if (!denoise(x, s, den)) return Cancelled("sampling cancelled at step ", i + 1, " of ", steps);
    switch (kind) {
      case SamplerKind::kEuler:
        for (size_t j = 0; j < n; ++j)
          x[j] += static_cast<float>((x[j] - den[j]) / s * (s_next - s));
        break;
      case SamplerKind::kEulerAncestral: {
        const double up = std::min(
            s_next,
            std::sqrt(std::max(0.0, s_next * s_next * (s * s - s_next * s_next) / (s * s))));
        const double down = std::sqrt(std::max(0.0, s_next * s_next - up * up));
        for (size_t j = 0; j < n; ++j) x[j] += static_cast<float>((x[j] - den[j]) / s * (down - s));
        if (s_next > 0) {
          const std::vector<float> z = noise();
          for (size_t j = 0; j < n; ++j) x[j] += static_cast<float>(z[j] * up);
        }
        break;
      }
      case SamplerKind::kDpmpp2m: {
        if (s_next == 0) {
          x = den;  // the last step lands on the denoised latent
        } else {
          const double t = -std::log(s), t_next = -std::log(s_next), h = t_next - t;
          const double a = s_next / s, b = -std::expm1(-h);
          if (old_den.empty()) {
            for (size_t j = 0; j < n; ++j) x[j] = static_cast<float>(a * x[j] + b * den[j]);
          } else {
            const double h_last = t - (-std::log(sigmas[i - 1]));
            const double r = h_last / h;
            const double c0 = 1 + 1 / (2 * r), c1 = 1 / (2 * r);
            for (size_t j = 0; j < n; ++j) {
              x[j] = static_cast<float>(a * x[j] + b * (c0 * den[j] - c1 * old_den[j]));
            }
          }
        }
        old_den = den;
        break;
      }
      case SamplerKind::kLcm:
        x = den;
        if (s_next > 0) {
          const std::vector<float> z = noise();
          for (size_t j = 0; j < n; ++j) x[j] += static_cast<float>(z[j] * s_next);
        }
        break;
    }
    if (on_step) on_step(i + 1, steps);
  }
  return Status::Ok();
}

}  // namespace sluice::diffusion
