// Samplers, schedules and noise: the samplers on an exact Gaussian denoiser with a known solution
// (Euler converges with order 1, DPM++ 2M with order 2, one Euler step to sigma 0 is the denoiser's
// output), the discrete schedule against k-diffusion's as PyTorch computed it, torch.randn on the
// CPU against torch's own values, Philox against Random123's known answers, and four guided Euler
// steps of a tiny SD 1.x UNet against the same steps in PyTorch (scripts/diffusion_golden.py).
#include "diffusion/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffusion/denoiser.h"
#include "diffusion/rng.h"

namespace sluice::diffusion {
namespace {

const nlohmann::json& Models() {
  static const nlohmann::json* j = [] {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) + "/tests/diffusion/golden/models.json");
    std::stringstream ss;
    ss << in.rdbuf();
    return new nlohmann::json(nlohmann::json::parse(ss.str()));
  }();
  return *j;
}

// Data x0 ~ N(mu, s0^2) per element: the exact denoiser, and the probability-flow ODE's exact
// solution from x at sigma_a to sigma_b: mu + (x - mu) sqrt(s0^2 + sigma_b^2) / sqrt(s0^2 +
// sigma_a^2). (The orders are measured down to sigma_min: the last step to 0 takes the denoiser's
// output, exact only up to O(sigma_min^2), the same for every step count.)
constexpr double kMu = 0.7, kS0 = 0.5;
Denoiser GaussianDenoiser() {
  return [](const std::vector<float>& x, double sigma, std::vector<float>& d) {
    d.resize(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      d[i] = static_cast<float>((kS0 * kS0 * x[i] + sigma * sigma * kMu) /
                                (kS0 * kS0 + sigma * sigma));
    }
    return true;
  };
}

double SolveError(SamplerKind kind, int steps) {
  const NoiseSchedule s;
  std::vector<double> sigmas = ScheduleSigmas(s, ScheduleKind::kKarras, steps + 1);
  sigmas.pop_back();  // end at sigma_min
  std::vector<float> x = {static_cast<float>(3.0 * sigmas[0]),
                          static_cast<float>(-2.0 * sigmas[0])};
  const std::vector<float> x0 = x;
  EXPECT_TRUE(Sample(kind, sigmas, GaussianDenoiser(), nullptr, x).ok());
  const double a = sigmas.front(), b = sigmas.back();
  double err = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double exact =
        kMu + (x0[i] - kMu) * std::sqrt(kS0 * kS0 + b * b) / std::sqrt(kS0 * kS0 + a * a);
    err = std::max(err, std::fabs(x[i] - exact));
  }
  return err;
}

TEST(Samplers, ConvergeWithTheirOrder) {
  // Error ratio when the steps double: ~2 for a first-order method, ~4 for second order.
  const double e1 = SolveError(SamplerKind::kEuler, 40), e2 = SolveError(SamplerKind::kEuler, 80);
  EXPECT_NEAR(e1 / e2, 2.0, 0.35) << e1 << " " << e2;
  const double d1 = SolveError(SamplerKind::kDpmpp2m, 40),
               d2 = SolveError(SamplerKind::kDpmpp2m, 80);
  EXPECT_NEAR(d1 / d2, 4.0, 0.8) << d1 << " " << d2;
  EXPECT_LT(d2, e2);
}

TEST(Samplers, OneEulerStepToZeroIsTheDenoisedLatent) {
  const std::vector<double> sigmas = {7.5, 0.0};
  std::vector<float> x = {1.0f, -4.0f, 2.5f};
  std::vector<float> want;
  GaussianDenoiser()(x, 7.5, want);
  for (SamplerKind k : {SamplerKind::kEuler, SamplerKind::kEulerAncestral, SamplerKind::kDpmpp2m,
                        SamplerKind::kLcm}) {
    std::vector<float> y = x;
    ASSERT_TRUE(Sample(k, sigmas, GaussianDenoiser(), nullptr, y).ok());
    for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], want[i], 1e-6) << SamplerKindName(k);
  }
}

TEST(Samplers, CancelStopsBetweenSteps) {
  int calls = 0;
  Denoiser stop_second = [&](const std::vector<float>& x, double, std::vector<float>& d) {
    d = x;
    return ++calls < 2;
  };
  std::vector<float> x = {1.0f};
  const NoiseSchedule s;
  Status st = Sample(SamplerKind::kEuler, ScheduleSigmas(s, ScheduleKind::kDiscrete, 5),
                     stop_second, nullptr, x);
  EXPECT_EQ(st.code(), StatusCode::kCancelled);
  EXPECT_EQ(calls, 2);
}

TEST(Schedules, MatchKDiffusion) {
  const NoiseSchedule s;
  const std::vector<double> want = Models()["discrete_sigmas_10"].get<std::vector<double>>();
  const std::vector<double> got = ScheduleSigmas(s, ScheduleKind::kDiscrete, 10);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-9 * (1 + want[i]));
  EXPECT_NEAR(s.sigma_max(), 14.614641, 1e-5);  // the well-known sigma_max of SD
  EXPECT_NEAR(s.sigma_min(), 0.029168, 1e-5);
  for (double t : {0.0, 1.0, 261.5, 500.25, 998.0})
    EXPECT_NEAR(s.TimestepOf(s.SigmaAt(t)), t, 1e-6);
  // SD-Turbo's single step starts at t = 999; four trailing steps at 999, 749, 499, 249.
  const std::vector<double> trailing = ScheduleSigmas(s, ScheduleKind::kTrailing, 4);
  EXPECT_NEAR(s.TimestepOf(trailing[1]), 749, 1e-6);
  EXPECT_NEAR(s.TimestepOf(trailing[3]), 249, 1e-6);
  const std::vector<double> karras = ScheduleSigmas(s, ScheduleKind::kKarras, 5);
  EXPECT_NEAR(karras[0], s.sigma_max(), 1e-9);
  EXPECT_NEAR(karras[4], s.sigma_min(), 1e-9);
  EXPECT_EQ(karras[5], 0.0);
}

TEST(Noise, CpuGeneratorMatchesTorchRandn) {
  for (const auto& [seed, values] : Models()["randn_cpu"].items()) {
    const std::vector<float> want = values.get<std::vector<float>>();
    NoiseGenerator g(RngKind::kCpu, std::stoull(seed));
    const std::vector<float> got = g.Randn(static_cast<int64_t>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) {
      ASSERT_NEAR(got[i], want[i], 2e-6 * (1 + std::fabs(want[i])))
          << "seed " << seed << " at " << i;
    }
  }
  const auto& small = Models()["randn_cpu_small"];
  NoiseGenerator g(RngKind::kCpu, small["seed"].get<uint64_t>());
  const std::vector<float> want = small["values"].get<std::vector<float>>();
  const std::vector<float> got = g.Randn(static_cast<int64_t>(want.size()));
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

TEST(Noise, PhiloxMatchesRandom123KnownAnswers) {
  struct Kat {
    uint32_t ctr[4], key[2], out[4];
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) {
    uint32_t out[4];
    Philox4x32_10(k.ctr, k.key, out);
    for (int i = 0; i < 4; ++i)
      EXPECT_EQ(out[i], k.out[i]) << std::hex << k.ctr[0] << " word " << i;
  }
  // Each call continues the offset: a second call differs from the first; the same seed repeats.
  NoiseGenerator a(RngKind::kCuda, 42), b(RngKind::kCuda, 42);
  const std::vector<float> a1 = a.Randn(64), a2 = a.Randn(64), b1 = b.Randn(64);
  EXPECT_EQ(a1, b1);
  EXPECT_NE(a1, a2);
  double mean = 0, var = 0;
  NoiseGenerator big(RngKind::kCuda, 7);
  const std::vector<float> v = big.Randn(100000);
  for (float f : v) mean += f / v.size();
  for (float f : v) var += (f - mean) * (f - mean) / v.size();
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.02);
}

TEST(Sampling, FourGuidedEulerStepsMatchPyTorch) {
  auto ckpt = Checkpoint::Open(std::string(SLUICE_SOURCE_DIR) +
                               "/tests/diffusion/golden/unet_sd1.safetensors");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  WeightReader r(**ckpt);
  UNetConfig c;
  c.model_channels = 32;
  c.channel_mult = {1, 2};
  c.num_res_blocks = 1;
  c.transformer_depth = {1, 0};
  c.context_dim = 32;
  c.num_heads = 2;
  auto unet = UNet::Load(r, c);
  ASSERT_TRUE(unet.ok()) << unet.status().ToString();
  const auto& g = Models()["unet_sd1"];
  const std::vector<float> ctx = g["context"].get<std::vector<float>>();
  Conditioning cond, uncond;
  cond.context.assign(ctx.begin(), ctx.begin() + 7 * 32);
  uncond.context.assign(ctx.begin() + 7 * 32, ctx.end());
  const NoiseSchedule schedule;
  GuidedDenoiser d;
  d.unet = unet->get();
  d.schedule = &schedule;
  d.cfg_scale = 5.0f;
  d.cond = &cond;
  d.uncond = &uncond;
  d.n_ctx = 7;
  d.h = d.w = 8;
  const auto& s = Models()["sample_sd1_euler"];
  const std::vector<double> sigmas = ScheduleSigmas(schedule, ScheduleKind::kDiscrete, 4);
  const std::vector<double> want_sigmas = s["sigmas"].get<std::vector<double>>();
  for (size_t i = 0; i < sigmas.size(); ++i)
    EXPECT_NEAR(sigmas[i], want_sigmas[i], 1e-9 * (1 + sigmas[i]));
  std::vector<float> x = s["noise"].get<std::vector<float>>();
  for (float& v : x) v = static_cast<float>(v * sigmas[0]);
  Denoiser denoise = [&](const std::vector<float>& xx, double sigma, std::vector<float>& out) {
    return d(xx, sigma, out);
  };
  ASSERT_TRUE(Sample(SamplerKind::kEuler, sigmas, denoise, nullptr, x).ok());
  EXPECT_EQ(d.evaluations, 4);
  const std::vector<float> want = s["latent"].get<std::vector<float>>();
  double err = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(x[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  EXPECT_LT(err / scale, 1e-4);
}

}  // namespace
}  // namespace sluice::diffusion
