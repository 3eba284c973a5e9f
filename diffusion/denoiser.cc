#include "diffusion/denoiser.h"

#include <cmath>

namespace sluice::diffusion {

bool GuidedDenoiser::operator()(const std::vector<float>& x, double sigma,
                                std::vector<float>& denoised) {
  if (cancel != nullptr && cancel->load()) return false;
  const UNetConfig& cfg = unet->config();
  const size_t n = x.size();
  const int batch = guided() ? 2 : 1;
  const double c_in = 1.0 / std::sqrt(sigma * sigma + 1.0);
  std::vector<float> in(n * batch), out(n * batch);
  for (int b = 0; b < batch; ++b)
    for (size_t i = 0; i < n; ++i) in[b * n + i] = static_cast<float>(x[i] * c_in);
  const double t = schedule->TimestepOf(sigma);
  const double ts[2] = {t, t};
  const size_t ctx_n = static_cast<size_t>(n_ctx) * cfg.context_dim;
  std::vector<float> context(ctx_n * batch), y;
  std::copy(cond->context.begin(), cond->context.end(), context.begin());
  if (batch == 2)
    std::copy(uncond->context.begin(), uncond->context.end(), context.begin() + ctx_n);
  if (cfg.adm_in_channels > 0) {
    y = cond->y;
    if (batch == 2) y.insert(y.end(), uncond->y.begin(), uncond->y.end());
  }
  error = unet->Forward(in.data(), batch, h, w, ts, context.data(), n_ctx,
                        y.empty() ? nullptr : y.data(), out.data(), pool, blocks);
  if (!error.ok()) return false;
  ++evaluations;
  denoised.resize(n);
  const double s2 = sigma * sigma;
  for (size_t i = 0; i < n; ++i) {
    double o = out[i];
    if (batch == 2) o = out[n + i] + cfg_scale * (out[i] - out[n + i]);
    if (prediction == Prediction::kEps) {
      denoised[i] = static_cast<float>(x[i] - sigma * o);
    } else {
      denoised[i] = static_cast<float>(x[i] / (s2 + 1.0) - o * sigma / std::sqrt(s2 + 1.0));
    }
  }
  return true;
}

}  // namespace sluice::diffusion
