// Rotary position embedding (RoPE) on query/key heads.
// Two layouts, as GGUF models use them:
//   kNormal (llama, Mixtral): dims (2i, 2i+1) form a rotated pair;
//   kNeox   (Qwen, NeoX):     dims (i, i + n_rot/2) form a rotated pair.
// Pair i rotates by angle pos * freq_scale * freq_base^(-2i / n_rot); dims at and beyond n_rot
// (partial rotary) are left unchanged. freq_scale = 1 / (linear scaling factor).
// YaRN (yarn_factor F > 0; DeepSeek-V3, gpt-oss): pair i's angle is pos * freq_base^(-2i/n_rot)
// * ((1 - ramp_i) / F + ramp_i), where ramp_i falls from 1 to 0 between the pairs whose
// wavelength fits beta_fast and beta_slow times in the original context:
//   corr(b) = n_rot ln(orig_ctx / (2 pi b)) / (2 ln freq_base)
//   lo = max(0, floor(corr(beta_fast))), hi = min(n_rot - 1, ceil(corr(beta_slow)))
//   ramp_i = 1 - clamp((i - lo) / max(0.001, hi - lo), 0, 1)
// and cos/sin are multiplied by `mscale` (1 where the model folds it into the attention scale).
// Non-goals: LongRoPE.
// Thread-safety: pure functions on caller-owned buffers.
#pragma once

#include <cstdint>

namespace sluice {

enum class RopeLayout { kNormal, kNeox };

struct RopeParams {
  RopeLayout layout = RopeLayout::kNeox;
  int head_dim = 0;  // elements per head
  int n_rot = 0;     // rotated dims (even, <= head_dim); usually head_dim
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;   // linear scaling: 1 / factor
  float yarn_factor = 0.0f;  // F; 0: no YaRN
  int64_t yarn_orig_ctx = 0;
  float yarn_beta_fast = 32.0f;
  float yarn_beta_slow = 1.0f;
  float mscale = 1.0f;  // multiplies cos and sin
};

// Precomputes cos/sin for one position: cos_sin is (n_rot / 2, 2) as {cos, sin} pairs.
// Angles are computed in double and rounded once, so they do not drift with position.
void RopeAngles(const RopeParams& params, int64_t pos, float* cos_sin);

// Rotates each of `n_heads` heads of x (n_heads, head_dim) in place with precomputed angles.
void RopeApply(const RopeParams& params, const float* cos_sin, int n_heads, float* x);

// RopeAngles + RopeApply for one position.
void Rope(const RopeParams& params, int64_t pos, int n_heads, float* x, float* cos_sin_scratch);

}  // namespace sluice
