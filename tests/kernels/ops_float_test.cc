// Float ops (core/ops) against double-precision references written independently here.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/ops/activation.h"
#include "core/ops/norm.h"
#include "core/ops/rope.h"
#include "core/quant/fp16.h"

namespace sluice {
namespace {

std::vector<float> RandomVector(int64_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(OpsRmsNorm, MatchesDoubleReference) {
  for (int64_t n : {1, 7, 64, 257, 4096}) {
    std::vector<float> x = RandomVector(n, 1 + n, 3.0f);
    std::vector<float> w = RandomVector(n, 2 + n);
    std::vector<float> out(n);
    RmsNorm(x.data(), w.data(), n, 1e-6f, out.data());
    double ss = 0;
    for (float v : x) ss += double(v) * v;
    const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = double(x[i]) * inv * w[i];
      ASSERT_NEAR(out[i], ref, 1e-6 * (1 + std::fabs(ref))) << "n=" << n << " i=" << i;
    }
  }
}

TEST(OpsRmsNorm, RowsShareTheWeightAndMayAlias) {
  const int rows = 5, n = 16;
  std::vector<float> x = RandomVector(rows * n, 7);
  std::vector<float> w = RandomVector(n, 8);
  std::vector<float> expected(rows * n);
  for (int r = 0; r < rows; ++r) RmsNorm(&x[r * n], w.data(), n, 1e-5f, &expected[r * n]);
  RmsNormRows(x.data(), w.data(), rows, n, 1e-5f, x.data());  // in place
  EXPECT_EQ(0, std::memcmp(x.data(), expected.data(), sizeof(float) * rows * n));
}

// Reference RoPE: rotates pair (a, b) by pos * scale * base^(-2i/n_rot), in double.
std::vector<double> RopeReference(const std::vector<float>& x, const RopeParams& p, int64_t pos,
                                  int n_heads) {
  std::vector<double> y(x.begin(), x.end());
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < p.n_rot / 2; ++i) {
      const int a = h * p.head_dim + (p.layout == RopeLayout::kNeox ? i : 2 * i);
      const int b = p.layout == RopeLayout::kNeox ? a + p.n_rot / 2 : a + 1;
      const double theta =
          double(pos) * p.freq_scale * std::pow(double(p.freq_base), -2.0 * i / p.n_rot);
      y[a] = x[a] * std::cos(theta) - double(x[b]) * std::sin(theta);
      y[b] = x[a] * std::sin(theta) + double(x[b]) * std::cos(theta);
    }
  }
  return y;
}

TEST(OpsRope, BothLayoutsPartialRotaryAndScaling) {
  struct Case {
    RopeLayout layout;
    int head_dim, n_rot;
    float base, scale;
  };
  const Case cases[] = {
      {RopeLayout::kNeox, 16, 16, 1e6f, 1.0f},   {RopeLayout::kNormal, 16, 16, 1e4f, 1.0f},
      {RopeLayout::kNeox, 128, 64, 1e4f, 0.25f}, {RopeLayout::kNormal, 64, 32, 5e5f, 0.5f},
      {RopeLayout::kNeox, 128, 128, 1e6f, 1.0f},
  };
  for (const Case& c : cases) {
    RopeParams p{.layout = c.layout,
                 .head_dim = c.head_dim,
                 .n_rot = c.n_rot,
                 .freq_base = c.base,
                 .freq_scale = c.scale};
    for (int64_t pos : {0, 1, 17, 4095, 40000}) {
      const int n_heads = 3;
      std::vector<float> x = RandomVector(n_heads * c.head_dim, 11 + pos);
      std::vector<double> ref = RopeReference(x, p, pos, n_heads);
      std::vector<float> cs(c.n_rot);
      Rope(p, pos, n_heads, x.data(), cs.data());
      for (size_t i = 0; i < x.size(); ++i) {
        // Angles up to 4e4 rad: float cos/sin of a double angle keep ~1e-7 relative error.
        ASSERT_NEAR(x[i], ref[i], 2e-6 * (1 + std::fabs(ref[i])))
            << "layout " << int(c.layout) << " hd " << c.head_dim << " pos " << pos << " i " << i;
      }
    }
  }
}

TEST(OpsRope, PositionZeroIsIdentityAndNormIsKept) {
  RopeParams p{.layout = RopeLayout::kNormal, .head_dim = 32, .n_rot = 32};
  std::vector<float> x = RandomVector(64, 3), y = x;
  std::vector<float> cs(32);
  Rope(p, 0, 2, y.data(), cs.data());
  EXPECT_EQ(x, y);
  Rope(p, 123, 2, y.data(), cs.data());
  double n0 = 0, n1 = 0;
  for (size_t i = 0; i < x.size(); ++i) n0 += double(x[i]) * x[i], n1 += double(y[i]) * y[i];
  EXPECT_NEAR(n0, n1, 1e-5 * n0);
}

TEST(OpsSoftmax, MatchesDoubleReferenceAndSumsToOne) {
  for (int64_t n : {1, 2, 8, 128, 1000}) {
    std::vector<float> x = RandomVector(n, 5 + n, 10.0f);
    std::vector<double> ref(n);
    double mx = -1e300, sum = 0;
    for (float v : x) mx = std::max(mx, double(v));
    for (int64_t i = 0; i < n; ++i) sum += ref[i] = std::exp(x[i] - mx);
    Softmax(x.data(), n);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_NEAR(x[i], ref[i] / sum, 1e-6) << n;
      total += x[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(OpsActivation, SiluSigmoidSwiGlu) {
  std::vector<float> g = RandomVector(100, 9, 4.0f), u = RandomVector(100, 10), out(100);
  SwiGlu(g.data(), u.data(), 100, out.data());
  for (int i = 0; i < 100; ++i) {
    const double sig = 1.0 / (1.0 + std::exp(-double(g[i])));
    EXPECT_NEAR(Sigmoid(g[i]), sig, 1e-6);
    EXPECT_NEAR(Silu(g[i]), g[i] * sig, 1e-6 * (1 + std::fabs(g[i])));
    EXPECT_NEAR(out[i], g[i] * sig * u[i], 1e-5 * (1 + std::fabs(out[i])));
  }
}

// Every half value converts to float exactly, and float -> half rounds to the nearest half
// (ties to even): checked against the neighbours in the half grid.
TEST(OpsF16, RoundTripAndNearestEven) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = Fp16ToFp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(Fp16ToFp32(Fp32ToFp16(f))));
      continue;
    }
    ASSERT_EQ(Fp32ToFp16(f), h) << std::hex << h;
  }
  EXPECT_EQ(Fp16ToFp32(0x3c00), 1.0f);
  EXPECT_EQ(Fp16ToFp32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(Fp16ToFp32(0x7bff), 65504.0f);
  std::mt19937 rng(42);
  std::uniform_int_distribution<uint32_t> bits_dist;
  int checked = 0;
  while (checked < 200000) {
    uint32_t bits = bits_dist(rng);
    float f;
    std::memcpy(&f, &bits, 4);
    if (!std::isfinite(f) || std::fabs(f) > 65519.0f) continue;
    ++checked;
    const uint16_t h = Fp32ToFp16(f);
    const double got = Fp16ToFp32(h);
    const double err = std::fabs(got - f);
    // No other half is closer, and on an exact tie the chosen one has an even mantissa.
    for (int d : {-1, 1}) {
      const uint16_t other = static_cast<uint16_t>(h + d);
      if ((other & 0x7c00) == 0x7c00) continue;
      if (((other ^ h) & 0x8000) != 0) continue;
      const double other_err = std::fabs(double(Fp16ToFp32(other)) - f);
      ASSERT_LE(err, other_err) << f;
      if (err == other_err) {
        ASSERT_EQ(h & 1, 0) << f;
      }
    }
  }
  EXPECT_EQ(Fp32ToFp16(65520.0f), 0x7c00);
  EXPECT_EQ(Fp32ToFp16(-1e9f), 0xfc00);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(Fp32ToFp16(std::ldexp(1.5f, -25)), 0x0001);
}

}  // namespace
}  // namespace sluice
