// The denoising UNet of Stable Diffusion 1.x, 2.x and XL (the original LDM layout, key names as in
// single-file checkpoints: model.diffusion_model.*), built from a UNetConfig:
//   emb = time_embed(timestep_embedding(t)) (+ label_emb(y): SDXL's pooled text and sizes)
//   input blocks:  conv_in, then per level: num_res_blocks x [ResBlock (+ SpatialTransformer)],
//                  and a stride-2 convolution between levels      -> each output kept as a skip
//   middle:        ResBlock, SpatialTransformer, ResBlock
//   output blocks: per level from the deepest: num_res_blocks + 1 x [concat(skip), ResBlock
//                  (+ SpatialTransformer)], nearest 2x + conv at the end of every level but the top
//   out:           GroupNorm, SiLU, conv -> the prediction (eps or v)
// ResBlock:            h = conv(silu(GN(x))) + emb_proj(silu(emb)); h = conv(silu(GN(h)));
//                      out = skip(x) + h        (GN: 32 groups, eps 1e-5; skip: 1x1 conv if the
//                                                channel count changes)
// SpatialTransformer:  h = proj_in(GN(x)) (GN eps 1e-6; proj a 1x1 conv in SD 1.x, Linear after)
//                      per block: h += attn1(LN1(h)); h += attn2(LN2(h), context);
//                                 h += ff(LN3(h))   (ff: Linear to 8C, GEGLU, Linear to C)
//                      out = x + proj_out(h)
// Heads: SD 1.x has 8 per transformer; SD 2.x and SDXL heads of 64 channels.
// Activations are (pixels, channels) per image (diffusion/ops.h); a batch of images (the
// conditional and unconditional halves of classifier-free guidance) goes through each weight
// once: per-pixel ops run over all images' rows together, norms, convolutions and attention per
// image, so an image's result does not depend on the others in the batch.
//
// Thread-safety: Forward is const; one call at a time per pool.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/threads/thread_pool.h"
#include "diffusion/checkpoint.h"
#include "diffusion/weight_stream.h"

namespace sluice::diffusion {

struct UNetConfig {
  std::string prefix = "model.diffusion_model.";
  int in_channels = 4;
  int out_channels = 4;
  int model_channels = 320;
  std::vector<int> channel_mult = {1, 2, 4, 4};
  int num_res_blocks = 2;
  std::vector<int> transformer_depth = {1, 1, 1, 0};  // per level; 0: no attention there
  int middle_depth = 1;
  int context_dim = 768;
  int num_heads = 8;         // > 0: this many heads in every transformer (SD 1.x)
  int head_dim = 0;          // > 0: heads of this many channels (SD 2.x, SDXL)
  bool linear_proj = false;  // proj_in/out are Linear (SD 2.x, SDXL), else 1x1 convolutions
  int adm_in_channels = 0;   // SDXL: 2816 (pooled text 1280 + 6 size embeddings of 256)

  int time_embed_dim() const { return 4 * model_channels; }
};

class UNet {
 public:
  static Result<std::unique_ptr<UNet>> Load(WeightReader& reader, const UNetConfig& config);
  const UNetConfig& config() const { return config_; }

  // x: (batch, h * w, in_channels) latents; t: (batch) timesteps; context: (batch, n_ctx,
  // context_dim); y: (batch, adm_in_channels) or null. out: (batch, h * w, out_channels).
  // h and w must be multiples of 2^(levels - 1). `blocks` (null: resident weights) is told
  // before and after each registered block is computed, in the order Load registered them
  // (pass()); its errors (a read, a checksum) are returned.
  Status Forward(const float* x, int batch, int h, int w, const double* t, const float* context,
                 int n_ctx, const float* y, float* out, ThreadPool* pool,
                 BlockUser* blocks = nullptr) const;
  // The blocks one Forward uses, in order.
  const std::vector<int>& pass() const { return pass_; }

 private:
  struct ResBlock {
    int c_in = 0, c_out = 0;
    const float *gn1_w = nullptr, *gn1_b = nullptr, *gn2_w = nullptr, *gn2_b = nullptr;
    Conv2dWeights conv1, conv2;
    Matrix emb;
    const float* emb_b = nullptr;
    std::optional<Conv2dWeights> skip;
    // Streaming blocks: in_layers (conv1), emb_layers, out_layers (conv2), skip_connection (or
    // -1): a ResBlock of 2560 -> 1280 channels is 95 MB in F16, its conv1 alone 59 MB.
    int in_block = -1, emb_block = -1, out_block = -1, skip_block = -1;
  };
  struct Attention {
    Matrix q, k, v, out;
    const float* out_b = nullptr;
  };
  struct TransformerBlock {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *ln3_w, *ln3_b;
    Attention attn1, attn2;
    Matrix ff1, ff2;
    const float *ff1_b, *ff2_b;
    int attn1_block, attn2_block, ff_block;  // streaming blocks
  };
  struct SpatialTransformer {
    int c = 0, heads = 0;
    const float *gn_w = nullptr, *gn_b = nullptr;
    Matrix proj_in, proj_out;
    const float *proj_in_b = nullptr, *proj_out_b = nullptr;
    std::vector<TransformerBlock> blocks;
    int proj_in_block = -1, proj_out_block = -1;
  };
  struct Block {
    std::optional<ResBlock> res;
    std::optional<SpatialTransformer> st;
    std::optional<Conv2dWeights> conv;  // conv_in, a stride-2 downsample, or an upsample's conv
    bool down = false, up = false;
    int conv_block = -1;
  };

  static Result<ResBlock> LoadRes(WeightReader& r, const std::string& p, int c_in, int c_out,
                                  int emb_dim);
  Result<SpatialTransformer> LoadTransformer(WeightReader& r, const std::string& p, int c,
                                             int depth) const;

  struct Scratch;
  Status RunRes(const ResBlock& b, const float* x, int batch, int h, int w, const float* emb_silu,
                float* out, Scratch& s, ThreadPool* pool, BlockUser* blocks) const;
  Status RunTransformer(const SpatialTransformer& st, float* x, int batch, int h, int w,
                        const float* context, int n_ctx, Scratch& s, ThreadPool* pool,
                        BlockUser* blocks) const;
  void RunConv(const Conv2dWeights& c, const float* x, int batch, int h, int w, int stride,
               float* out, Scratch& s, ThreadPool* pool) const;

  UNetConfig config_;
  std::vector<int> pass_;
  int time_block_ = -1, label_block_ = -1, out_block_ = -1;
  Matrix time1_, time2_, label1_, label2_;
  const float *time1_b_ = nullptr, *time2_b_ = nullptr, *label1_b_ = nullptr, *label2_b_ = nullptr;
  std::vector<Block> input_, output_;
  Block middle_res1_, middle_st_, middle_res2_;
  const float *out_gn_w_ = nullptr, *out_gn_b_ = nullptr;
  Conv2dWeights out_conv_;
};

}  // namespace sluice::diffusion
