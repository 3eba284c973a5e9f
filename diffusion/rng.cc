#include "diffusion/rng.h"

#include <cmath>

namespace sluice::diffusion {

Result<RngKind> ParseRngKind(std::string_view name) {
  if (name == "cpu") return RngKind::kCpu;
  if (name == "cuda") return RngKind::kCuda;
  return InvalidArgument("--rng '", name, "': expected cuda or cpu");
}

const char* RngKindName(RngKind kind) { return kind == RngKind::kCpu ? "cpu" : "cuda"; }

NoiseGenerator::NoiseGenerator(RngKind kind, uint64_t seed)
    : kind_(kind), seed_(seed), mt_(static_cast<uint32_t>(seed)) {}

std::vector<float> NoiseGenerator::Randn(int64_t n) {
  return kind_ == RngKind::kCpu ? RandnCpu(n) : RandnCuda(n);
}

double NoiseGenerator::CpuNormalDouble() {
  if (has_cached_) {
    has_cached_ = false;
    return cached_;
  }
  // at::uniform_real_distribution<double>: 53 bits of random64() = (first << 32) | second.
  auto uniform = [&] {
    const uint64_t hi = mt_(), lo = mt_();
    const uint64_t x = (hi << 32) | lo;
    return static_cast<double>(x & ((uint64_t{1} << 53) - 1)) * std::ldexp(1.0, -53);
  };
  const double u1 = uniform();
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log1p(-u2));
  const double theta = 2.0 * M_PI * u1;
  cached_ = r * std::sin(theta);
  has_cached_ = true;
  return r * std::cos(theta);
}

std::vector<float> NoiseGenerator::RandnCpu(int64_t n) {
  std::vector<float> out(static_cast<size_t>(n));
  if (n < 16) {
    for (float& v : out) v = static_cast<float>(CpuNormalDouble());
    return out;
  }
  auto uniform = [&] {
    return static_cast<float>((mt_() & ((1u << 24) - 1)) * std::ldexp(1.0, -24));
  };
  auto fill16 = [](float* d) {
    for (int j = 0; j < 8; ++j) {
      const float u1 = 1.0f - d[j];
      const float u2 = d[j + 8];
      const float radius = std::sqrt(-2.0f * std::log(u1));
      const float theta = static_cast<float>(2.0 * M_PI * u2);
      d[j] = radius * std::cos(theta);
      d[j + 8] = radius * std::sin(theta);
    }
  };
  for (float& v : out) v = uniform();
  for (int64_t i = 0; i + 16 <= n; i += 16) fill16(out.data() + i);
  if (n % 16 != 0) {
    float* tail = out.data() + n - 16;
    for (int i = 0; i < 16; ++i) tail[i] = uniform();
    fill16(tail);
  }
  return out;
}

void Philox4x32_10(const uint32_t counter[4], const uint32_t key_in[2], uint32_t out[4]) {
  constexpr uint32_t kM0 = 0xD2511F53, kM1 = 0xCD9E8D57;
  constexpr uint32_t kW0 = 0x9E3779B9, kW1 = 0xBB67AE85;
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  uint32_t key[2] = {key_in[0], key_in[1]};
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = static_cast<uint64_t>(kM0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(kM1) * c[2];
    const uint32_t c1 = c[1], c3 = c[3];
    c[0] = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ key[0];
    c[1] = static_cast<uint32_t>(p1);
    c[2] = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ key[1];
    c[3] = static_cast<uint32_t>(p0);
    key[0] += kW0;
    key[1] += kW1;
  }
  for (int i = 0; i < 4; ++i) out[i] = c[i];
}

std::vector<float> NoiseGenerator::RandnCuda(int64_t n) {
  // rng_philox.py's constants are float32 numbers; its arithmetic is float64 (numpy promotes).
  const double inv = static_cast<double>(2.3283064e-10f);
  const double inv_2pi = static_cast<double>(static_cast<float>(2.3283064e-10 * 6.2831855));
  std::vector<float> out(static_cast<size_t>(n));
  const uint32_t key[2] = {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)};
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t counter[4] = {offset_, 0, static_cast<uint32_t>(i), 0};
    uint32_t r[4];
    Philox4x32_10(counter, key, r);
    const double u = r[0] * inv + inv / 2;
    const double v = r[1] * inv_2pi + inv_2pi / 2;
    out[i] = static_cast<float>(std::sqrt(-2.0 * std::log(u)) * std::sin(v));
  }
  ++offset_;
  return out;
}

}  // namespace sluice::diffusion
