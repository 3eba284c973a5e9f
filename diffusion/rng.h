// The noise generators the Stable Diffusion ecosystem seeds, so a seed gives the same image here
// as in other tools:
//   kCpu  torch.randn on the CPU (torch.Generator().manual_seed(seed)): a 32-bit Mersenne Twister;
//         for 16 values or more, uniforms of 24 bits in blocks of 16 turned into normals by
//         Box-Muller (the first 8 with cos, the last 8 with sin; a tail block recomputed over the
//         last 16 values); for fewer, 53-bit uniforms pairwise with a cached second value, as
//         torch's normal_distribution<double>. Checked against values torch 1.13 produced.
//   kCuda torch.randn on a GPU, the popular UIs' default (AUTOMATIC1111's rng_philox.py, which
//         stable-diffusion.cpp ports too): value i of a call is Philox4x32-10 of counter
//         (offset, 0, i, 0) with key (seed low, seed high), its first two words through
//         Box-Muller (sin); the offset advances by one per call. The Philox core is checked
//         against Random123's known-answer vectors; no GPU was available to compare the rest.
// Values come in PyTorch's NCHW order: callers laying out latents NHWC transpose them.
//
// Thread-safety: a generator is used by one thread.
#pragma once

#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "core/base/status.h"

namespace sluice::diffusion {

enum class RngKind { kCpu, kCuda };
Result<RngKind> ParseRngKind(std::string_view name);  // "cpu", "cuda"
const char* RngKindName(RngKind kind);

class NoiseGenerator {
 public:
  NoiseGenerator(RngKind kind, uint64_t seed);
  // n standard normal values, as one torch.randn(n) call.
  std::vector<float> Randn(int64_t n);

 private:
  std::vector<float> RandnCpu(int64_t n);
  std::vector<float> RandnCuda(int64_t n);
  double CpuNormalDouble();

  RngKind kind_;
  uint64_t seed_;
  std::mt19937 mt_;          // kCpu
  bool has_cached_ = false;  // kCpu, fewer than 16 values: the second Box-Muller value
  double cached_ = 0;
  uint32_t offset_ = 0;  // kCuda
};

// Philox4x32 with 10 rounds: counter (4 words), key (2 words) -> 4 words.
void Philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

}  // namespace sluice::diffusion
