// The CLIP text encoders of Stable Diffusion: a causal transformer over the 77 prompt tokens.
//   x = token_embedding[ids] + position_embedding
//   per layer:  x += out_proj(attention(LN1(x)))      causal, `heads` heads
//               x += fc2(act(fc1(LN2(x))))            act: quick-GELU (OpenAI CLIP) or GELU
//   final LayerNorm (SD 1.x on the last layer, SD 2.x on the penultimate; SDXL's context takes
//   the penultimate layer without it)
// Two key layouts of the same network: OpenAI CLIP as Hugging Face names it (SD 1.x, SDXL's
// first encoder: ...text_model.encoder.layers.N.self_attn.q_proj) and OpenCLIP (SD 2.x, SDXL's
// second encoder: ...transformer.resblocks.N.attn.in_proj_weight, q|k|v fused).
// SDXL also takes a pooled vector from OpenCLIP bigG: the final-normed last layer at the
// end-of-text token (the largest id), times text_projection.
//
// Thread-safety: Encode is const; one call at a time per pool.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/threads/thread_pool.h"
#include "diffusion/checkpoint.h"
#include "diffusion/weight_stream.h"

namespace sluice::diffusion {

enum class ClipLayout { kOpenAi, kOpenClip };

struct ClipTextConfig {
  ClipLayout layout = ClipLayout::kOpenAi;
  std::string prefix;  // up to and including the last '.' before the layout's own names
  int width = 768;
  int layers = 12;
  int heads = 12;
  bool quick_gelu = true;
  // text_projection's output (0: not loaded): OpenCLIP's `text_projection` (width, dim), or
  // Hugging Face's `text_projection.weight` (dim, width) beside text_model in the OpenAI layout.
  int projection_dim = 0;
  int vocab = 49408;  // rows of the token embedding (CLIP's; tiny test models use fewer)
};

class ClipTextModel {
 public:
  static Result<std::unique_ptr<ClipTextModel>> Load(WeightReader& reader,
                                                     const ClipTextConfig& config);
  const ClipTextConfig& config() const { return config_; }

  struct Output {
    std::vector<float> hidden;  // (77, width) after `layers - skip` layers (+ final norm if asked)
    std::vector<float> pooled;  // (projection_dim) when asked
  };
  // skip: layers left out at the end (0: all; 1: the penultimate, "clip skip 2").
  // `blocks` (null: resident) is told before and after each layer (pass(skip, pooled)).
  Result<Output> Encode(const std::vector<int32_t>& ids, int skip, bool final_norm, bool pooled,
                        ThreadPool* pool, BlockUser* blocks = nullptr) const;
  // The blocks (layers) one Encode uses, in order.
  std::vector<int> pass(int skip, bool pooled) const;

 private:
  struct Layer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
    Matrix q, k, v, out, fc1, fc2;
    const float *q_b, *k_b, *v_b, *out_b, *fc1_b, *fc2_b;
    int block;
  };
  ClipTextConfig config_;
  Matrix token_embedding_;  // (vocab, width), rows read as used (in the file's mapping)
  const float* position_embedding_ = nullptr;  // (77, width)
  std::vector<Layer> layers_;
  const float *final_w_ = nullptr, *final_b_ = nullptr;
  Matrix projection_;  // (projection_dim, width): text_projection transposed
};

}  // namespace sluice::diffusion
