// SynthRng: the pseudo-random generator of everything synthetic (routing, weights). xoshiro256**
// seeded through splitmix64: fast (~1 ns a draw), and the same sequence on every platform and
// standard library, which std::mt19937 + std::*_distribution do not promise (the distributions are
// implementation-defined), so a seed reproduces a trace or an archive anywhere.
//
// Non-goals: cryptographic quality. Thread-safety: one instance per thread.
#pragma once

#include <cmath>
#include <cstdint>

namespace sluice {

class SynthRng {
 public:
  explicit SynthRng(uint64_t seed) {
    for (uint64_t& s : s_) s = SplitMix(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  // [0, n) without modulo bias worth caring about (multiply-shift of 32 random bits).
  uint32_t Below(uint32_t n) { return static_cast<uint32_t>(((Next() >> 32) * n) >> 32); }
  // Standard normal (Box-Muller, one value per call: simpler state, speed is not an issue here).
  double Normal() {
    double u1 = Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint64_t s_[4];
};

}  // namespace sluice
