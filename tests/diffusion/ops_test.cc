// Diffusion ops against plain double-precision references: convolution (3x3 and 1x1, stride 1 and
// 2, F32 and F16 weights, any im2col chunking), group and layer norm, the activations, GEGLU's
// half order, nearest upsampling, the timestep embedding, attention with and without the causal
// mask. Results do not depend on the thread count (bit for bit).
#include "diffusion/ops.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <random>

#include "core/quant/fp16.h"

namespace sluice::diffusion {
namespace {

std::vector<float> Random(size_t n, uint64_t seed, float scale = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

void ExpectNear(const std::vector<float>& got, const std::vector<double>& want, double tol,
                const char* what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << " at " << i;
  }
}

struct ConvCase {
  int h, w, c_in, c_out, k, stride, pad;
  bool f16;
};

TEST(DiffusionOps, Conv2dMatchesTheDefinition) {
  const ConvCase cases[] = {{5, 7, 3, 4, 3, 1, 1, false}, {6, 6, 5, 3, 3, 2, 1, false},
                            {4, 5, 8, 6, 1, 1, 0, false}, {7, 5, 3, 4, 3, 1, 1, true},
                            {8, 8, 16, 8, 3, 2, 1, true}, {9, 4, 2, 2, 3, 1, 0, false}};
  auto pool = ThreadPool::Create(2);
  ASSERT_TRUE(pool.ok());
  for (const ConvCase& c : cases) {
    const int64_t cols = static_cast<int64_t>(c.k) * c.k * c.c_in;
    std::vector<float> wf = Random(static_cast<size_t>(c.c_out * cols), 1, 0.3f);
    std::vector<uint16_t> wh(wf.size());
    if (c.f16) {
      for (size_t i = 0; i < wf.size(); ++i) {
        wh[i] = Fp32ToFp16(wf[i]);
        wf[i] = Fp16ToFp32(wh[i]);  // the reference uses what the kernel sees
      }
    }
    const std::vector<float> bias = Random(c.c_out, 2);
    const std::vector<float> x = Random(static_cast<size_t>(c.h) * c.w * c.c_in, 3);
    Conv2dWeights cw;
    cw.w = Matrix{c.f16 ? GgmlType::kF16 : GgmlType::kF32,
                  c.f16 ? reinterpret_cast<const uint8_t*>(wh.data())
                        : reinterpret_cast<const uint8_t*>(wf.data()),
                  c.c_out, cols};
    cw.bias = bias.data();
    cw.c_in = c.c_in;
    cw.c_out = c.c_out;
    cw.k = c.k;
    const int ho = ConvOut(c.h, c.k, c.stride, c.pad), wo = ConvOut(c.w, c.k, c.stride, c.pad);
    std::vector<double> want(static_cast<size_t>(ho) * wo * c.c_out);
    for (int oy = 0; oy < ho; ++oy)
      for (int ox = 0; ox < wo; ++ox)
        for (int co = 0; co < c.c_out; ++co) {
          double s = bias[co];
          for (int ky = 0; ky < c.k; ++ky)
            for (int kx = 0; kx < c.k; ++kx)
              for (int ci = 0; ci < c.c_in; ++ci) {
                const int iy = oy * c.stride - c.pad + ky, ix = ox * c.stride - c.pad + kx;
                if (iy < 0 || iy >= c.h || ix < 0 || ix >= c.w) continue;
                s += static_cast<double>(wf[co * cols + (ci * c.k + ky) * c.k + kx]) *
                     x[(static_cast<size_t>(iy) * c.w + ix) * c.c_in + ci];
              }
          want[(static_cast<size_t>(oy) * wo + ox) * c.c_out + co] = s;
        }
    std::vector<float> y(want.size()), y_small(want.size()), y_one(want.size());
    std::vector<float> scratch(
        std::max<int64_t>(1, Conv2dScratchFloats(cw, c.h, c.w, c.stride, c.pad)));
    Conv2d(cw, x.data(), c.h, c.w, c.stride, c.pad, y.data(), scratch.data(), pool->get());
    ExpectNear(y, want, 1e-5, "conv");
    // Tiny chunks (a few pixels each) and one thread: the same bits.
    const int64_t small = cols * static_cast<int64_t>(sizeof(float)) * 3;
    std::vector<float> scratch_small(
        std::max<int64_t>(1, Conv2dScratchFloats(cw, c.h, c.w, c.stride, c.pad, small)));
    Conv2d(cw, x.data(), c.h, c.w, c.stride, c.pad, y_small.data(), scratch_small.data(),
           pool->get(), small);
    Conv2d(cw, x.data(), c.h, c.w, c.stride, c.pad, y_one.data(), scratch.data(), nullptr);
    EXPECT_EQ(y, y_small);
    EXPECT_EQ(y, y_one);
  }
}

// The fused nearest-2x convolution gathers the same values as Upsample2x then Conv2d, in the
// same order: the same bits, at any chunking and thread count (1x1 and 3x3, F32 and F16).
TEST(DiffusionOps, Conv2dUp2EqualsUpsampleThenConv) {
  auto pool = ThreadPool::Create(2);
  ASSERT_TRUE(pool.ok());
  for (const auto& [h, w, c_in, c_out, k] : std::vector<std::array<int, 5>>{
           {3, 5, 4, 6, 3}, {4, 4, 8, 3, 1}, {1, 2, 3, 5, 3}, {5, 3, 16, 16, 3}}) {
    const int64_t cols = static_cast<int64_t>(k) * k * c_in;
    std::vector<float> wf = Random(static_cast<size_t>(c_out * cols), 11, 0.3f);
    std::vector<uint16_t> wh(wf.size());
    for (size_t i = 0; i < wf.size(); ++i) wh[i] = Fp32ToFp16(wf[i]);
    const std::vector<float> bias = Random(c_out, 12);
    const std::vector<float> x = Random(static_cast<size_t>(h) * w * c_in, 13);
    for (bool f16 : {false, true}) {
      Conv2dWeights cw;
      cw.w = Matrix{f16 ? GgmlType::kF16 : GgmlType::kF32,
                    f16 ? reinterpret_cast<const uint8_t*>(wh.data())
                        : reinterpret_cast<const uint8_t*>(wf.data()),
                    c_out, cols};
      cw.bias = bias.data();
      cw.c_in = c_in;
      cw.c_out = c_out;
      cw.k = k;
      std::vector<float> up(x.size() * 4);
      Upsample2x(x.data(), h, w, c_in, up.data());
      const size_t out = static_cast<size_t>(4) * h * w * c_out;
      std::vector<float> want(out), got(out), got_small(out);
      std::vector<float> scratch(
          std::max<int64_t>(1, Conv2dScratchFloats(cw, 2 * h, 2 * w, 1, k / 2)));
      Conv2d(cw, up.data(), 2 * h, 2 * w, 1, k / 2, want.data(), scratch.data(), pool->get());
      std::vector<float> fused(Conv2dUp2ScratchFloats(cw, h, w));
      Conv2dUp2(cw, x.data(), h, w, got.data(), fused.data(), pool->get());
      EXPECT_EQ(got, want) << h << "x" << w << " k" << k << (f16 ? " f16" : " f32");
      const int64_t small = cols * static_cast<int64_t>(sizeof(float)) * 3;
      std::vector<float> fused_small(Conv2dUp2ScratchFloats(cw, h, w, small));
      Conv2dUp2(cw, x.data(), h, w, got_small.data(), fused_small.data(), nullptr, small);
      EXPECT_EQ(got_small, want) << h << "x" << w << " k" << k << " small chunks, one thread";
    }
  }
}

TEST(DiffusionOps, NormsMatchTheDefinition) {
  const int n = 37, c = 64, groups = 32;
  std::vector<float> x = Random(static_cast<size_t>(n) * c, 4, 3.0f);
  for (float& v : x) v += 5.0f;  // a large mean: the statistics must not lose it
  const std::vector<float> gamma = Random(c, 5), beta = Random(c, 6);
  std::vector<double> want(x.size());
  const int cg = c / groups;
  for (int g = 0; g < groups; ++g) {
    double s = 0, sq = 0;
    for (int p = 0; p < n; ++p)
      for (int i = 0; i < cg; ++i) s += x[p * c + g * cg + i];
    const double m = s / (n * cg);
    for (int p = 0; p < n; ++p)
      for (int i = 0; i < cg; ++i) sq += std::pow(x[p * c + g * cg + i] - m, 2);
    const double inv = 1 / std::sqrt(sq / (n * cg) + 1e-6);
    for (int p = 0; p < n; ++p)
      for (int i = 0; i < cg; ++i) {
        const int ch = g * cg + i;
        want[p * c + ch] = (x[p * c + ch] - m) * inv * gamma[ch] + beta[ch];
      }
  }
  std::vector<float> y(x.size());
  auto pool = ThreadPool::Create(2);
  GroupNorm(x.data(), n, c, groups, 1e-6f, gamma.data(), beta.data(), y.data(), pool->get());
  ExpectNear(y, want, 1e-6, "group norm");
  std::vector<float> y1(x.size());
  GroupNorm(x.data(), n, c, groups, 1e-6f, gamma.data(), beta.data(), y1.data(), nullptr);
  EXPECT_EQ(y, y1);

  for (int t = 0; t < n; ++t) {
    double s = 0, sq = 0;
    for (int i = 0; i < c; ++i) s += x[t * c + i];
    const double m = s / c;
    for (int i = 0; i < c; ++i) sq += std::pow(x[t * c + i] - m, 2);
    const double inv = 1 / std::sqrt(sq / c + 1e-5);
    for (int i = 0; i < c; ++i) want[t * c + i] = (x[t * c + i] - m) * inv * gamma[i] + beta[i];
  }
  LayerNorm(x.data(), n, c, 1e-5f, gamma.data(), beta.data(), y.data());
  ExpectNear(y, want, 1e-6, "layer norm");
}

TEST(DiffusionOps, ActivationsMatchTheirDefinitions) {
  std::vector<float> x = Random(1000, 7, 3.0f);
  std::vector<double> silu(x.size()), gelu(x.size()), quick(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double v = x[i];
    silu[i] = v / (1 + std::exp(-v));
    gelu[i] = 0.5 * v * (1 + std::erf(v / std::sqrt(2.0)));
    quick[i] = v / (1 + std::exp(-1.702 * v));
  }
  std::vector<float> a = x, b = x, c = x;
  SiluInPlace(a.data(), a.size());
  GeluInPlace(b.data(), b.size());
  QuickGeluInPlace(c.data(), c.size());
  ExpectNear(a, silu, 1e-6, "silu");
  ExpectNear(b, gelu, 1e-6, "gelu");
  ExpectNear(c, quick, 1e-6, "quick gelu");

  // GEGLU: value first, gate second.
  const int64_t n = 3, d = 5;
  std::vector<float> proj = Random(static_cast<size_t>(n * 2 * d), 8);
  std::vector<double> want(static_cast<size_t>(n * d));
  for (int64_t t = 0; t < n; ++t)
    for (int64_t i = 0; i < d; ++i) {
      const double g = proj[t * 2 * d + d + i];
      want[t * d + i] = proj[t * 2 * d + i] * 0.5 * g * (1 + std::erf(g / std::sqrt(2.0)));
    }
  std::vector<float> out(static_cast<size_t>(n * d));
  Geglu(proj.data(), n, d, out.data());
  ExpectNear(out, want, 1e-6, "geglu");
  Geglu(proj.data(), n, d, proj.data());  // in place
  proj.resize(static_cast<size_t>(n * d));
  EXPECT_EQ(proj, out);
}

TEST(DiffusionOps, UpsampleAndTimestepEmbedding) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8};  // 2x2 pixels, 2 channels
  std::vector<float> y(32);
  Upsample2x(x.data(), 2, 2, 2, y.data());
  // Pixel (row 1, col 2) of the 4x4 output is input pixel (0, 1) = {3, 4}.
  EXPECT_EQ(y[(1 * 4 + 2) * 2], 3);
  EXPECT_EQ(y[(1 * 4 + 2) * 2 + 1], 4);
  EXPECT_EQ(y[(3 * 4 + 3) * 2], 7);

  // In float32 like the reference: at t = 999 the argument's rounding (ulp 6e-5) shows.
  std::vector<float> e(320);
  TimestepEmbedding(999, 320, e.data());
  for (int i = 0; i < 160; ++i) {
    const double f = std::exp(-std::log(10000.0) * i / 160);
    EXPECT_NEAR(e[i], std::cos(999 * f), 2e-4);
    EXPECT_NEAR(e[160 + i], std::sin(999 * f), 2e-4);
  }
  TimestepEmbedding(1, 8, e.data());
  EXPECT_NEAR(e[0], std::cos(1.0), 1e-7);  // f_0 = 1
  EXPECT_NEAR(e[4], std::sin(1.0), 1e-7);
}

TEST(DiffusionOps, AttentionMatchesSoftmaxOfScaledDotProducts) {
  const int64_t nq = 9, nk = 13;
  const int heads = 3, d = 8, width = heads * d;
  const std::vector<float> q = Random(nq * width, 9), k = Random(nk * width, 10),
                           v = Random(nk * width, 11);
  auto reference = [&](int64_t n_q, int64_t n_k, bool causal) {
    std::vector<double> out(static_cast<size_t>(n_q * width));
    for (int64_t i = 0; i < n_q; ++i)
      for (int h = 0; h < heads; ++h) {
        const int64_t n = causal ? i + 1 : n_k;
        std::vector<double> s(n);
        double mx = -1e300;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int t = 0; t < d; ++t)
            dot += double(q[i * width + h * d + t]) * k[j * width + h * d + t];
          s[j] = dot / std::sqrt(double(d));
          mx = std::max(mx, s[j]);
        }
        double sum = 0;
        for (double& z : s) sum += z = std::exp(z - mx);
        for (int t = 0; t < d; ++t) {
          double o = 0;
          for (int64_t j = 0; j < n; ++j) o += s[j] / sum * v[j * width + h * d + t];
          out[i * width + h * d + t] = o;
        }
      }
    return out;
  };
  auto pool = ThreadPool::Create(2);
  std::vector<float> out(static_cast<size_t>(nq * width)), out1(out.size());
  MultiHeadAttention(q.data(), k.data(), v.data(), nq, nk, heads, d, out.data(), pool->get());
  ExpectNear(out, reference(nq, nk, false), 1e-5, "attention");
  MultiHeadAttention(q.data(), k.data(), v.data(), nq, nk, heads, d, out1.data(), nullptr);
  EXPECT_EQ(out, out1);
  std::vector<float> causal(static_cast<size_t>(nq * width));
  CausalMultiHeadAttention(q.data(), k.data(), v.data(), nq, heads, d, causal.data(), pool->get());
  ExpectNear(causal, reference(nq, nq, true), 1e-5, "causal attention");
}

}  // namespace
}  // namespace sluice::diffusion
