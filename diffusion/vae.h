// The KL-VAE decoder of Stable Diffusion (first_stage_model.*; 4 latent channels, 8x upscaling):
//   z = post_quant_conv(latent / scale_factor)
//   x = conv_in(z); mid: ResnetBlock, AttnBlock, ResnetBlock
//   up levels from the deepest: num_res_blocks + 1 ResnetBlocks, then nearest 2x + conv (all but
//   the last level)
//   image = conv_out(silu(GroupNorm(x)))   in [-1, 1], 3 channels
// ResnetBlock: h = conv1(silu(GN(x))); h = conv2(silu(GN(h))); out = shortcut(x) + h
// AttnBlock:   one head over all pixels: q, k, v, proj_out are 1x1 convolutions; out = x + proj
// GroupNorm: 32 groups, eps 1e-6 throughout. Scale factor 0.18215 (SD 1.x/2.x), 0.13025 (SDXL).
//
// Tiling (DecodeTiled, diffusion/tiles.h): overlapping tiles blended across the overlaps: the
// activations of one tile instead of the whole image (at 512x512 the decoder's working set is
// ~0.4 GB whole, ~0.1 GB in 32-latent tiles); not the same numbers as a whole decode near the
// seams (tests/diffusion/vae_tiling_test.cc bounds the difference).
// Non-goals: the encoder (img2img).
// Thread-safety: Decode is const; one call at a time per pool.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/threads/thread_pool.h"
#include "diffusion/checkpoint.h"
#include "diffusion/tiles.h"
#include "diffusion/weight_stream.h"

namespace sluice::diffusion {

struct VaeConfig {
  std::string prefix = "first_stage_model.";
  int z_channels = 4;
  int ch = 128;
  std::vector<int> ch_mult = {1, 2, 4, 4};
  int num_res_blocks = 2;
  int out_channels = 3;
  float scale_factor = 0.18215f;
};

class VaeDecoder {
 public:
  static Result<std::unique_ptr<VaeDecoder>> Load(WeightReader& reader, const VaeConfig& config);
  const VaeConfig& config() const { return config_; }
  // latent: (h * w, z_channels), one image, as the sampler leaves it (not yet divided by the
  // scale factor). image: (8h * 8w, 3) in [-1, 1] (not clamped).
  // `blocks` (null: resident) is told before and after each block (pass()).
  Status Decode(const float* latent, int h, int w, float* image, ThreadPool* pool,
                BlockUser* blocks = nullptr) const;
  const std::vector<int>& pass() const { return pass_; }
  // `tile` latent pixels a side (>= 8), overlapping by a quarter; a tile that covers the image
  // decodes it whole, as Decode. `blocks` sees one pass() per tile (TileCount of them).
  Status DecodeTiled(const float* latent, int h, int w, int tile, float* image, ThreadPool* pool,
                     BlockUser* blocks = nullptr) const;
  static int TileCount(int h, int w, int tile) { return diffusion::TileCount(h, w, tile); }
  static std::vector<int> TileStarts(int n, int tile) { return diffusion::TileStarts(n, tile); }

 private:
  struct ResnetBlock {
    int c_in = 0, c_out = 0;
    const float *gn1_w, *gn1_b, *gn2_w, *gn2_b;
    Conv2dWeights conv1, conv2;
    std::optional<Conv2dWeights> shortcut;
    int block = -1;
  };
  struct AttnBlock {
    int c = 0;
    const float *gn_w, *gn_b;
    Matrix q, k, v, proj;
    const float *q_b, *k_b, *v_b, *proj_b;
    int block = -1;
  };
  struct Level {
    std::vector<ResnetBlock> blocks;
    std::optional<Conv2dWeights> upsample;
    int upsample_block = -1;
  };
  static Result<ResnetBlock> LoadResnet(WeightReader& r, const std::string& p, int c_in, int c_out);
  void RunResnet(const ResnetBlock& b, std::vector<float>& x, int h, int w, ThreadPool* pool) const;
  Status Resnet(const ResnetBlock& b, std::vector<float>& x, int h, int w, ThreadPool* pool,
                BlockUser* blocks) const;
  void RunAttn(const AttnBlock& a, std::vector<float>& x, int h, int w, ThreadPool* pool) const;

  VaeConfig config_;
  std::vector<int> pass_;
  int post_quant_block_ = -1, conv_in_block_ = -1, conv_out_block_ = -1;
  Conv2dWeights post_quant_, conv_in_, conv_out_;
  ResnetBlock mid1_, mid2_;
  AttnBlock mid_attn_;
  std::vector<Level> levels_;  // [0] is the deepest (decoder.up.{n-1})
  const float *norm_out_w_ = nullptr, *norm_out_b_ = nullptr;
};

// Requests every tensor of the KL-VAE's encoder (first_stage_model.encoder.*, quant_conv) from
// `reader` with its shape, loading nothing sluice computes with (text to image never encodes):
// `sluice synth` records them so its checkpoints are complete, as published ones are.
//   conv_in (3 -> ch); per level: num_res_blocks ResnetBlocks (to ch * mult), a stride-2
//   downsample conv except at the last level; mid: ResnetBlock, AttnBlock, ResnetBlock;
//   norm_out; conv_out (-> 2 z_channels: mean and log variance); quant_conv (1x1).
Status RequestVaeEncoderTensors(WeightReader& reader, const VaeConfig& config);

}  // namespace sluice::diffusion
