// TAESD, the tiny decoder (madebyollin/taesd; TAESDXL is the same network with other weights):
// Stable Diffusion's latents to an image in ~1% of the KL-VAE's weights and ~10% of its compute.
//   x = tanh(latent / 3) * 3            (the latent as the sampler leaves it: no scale factor)
//   x = relu(conv_in(x))                (z_channels -> 64, 3x3; 64 in every published file)
//   3 times: 3 Blocks, nearest 2x + conv (64 -> 64, 3x3, no bias)
//   x = Block(x); out = conv_out(x)     (64 -> 3, 3x3), in [0, 1]; image = 2 out - 1
// Block: relu(conv(relu(conv(relu(conv(x))))) + x), three 3x3 convolutions of 64 channels.
// Tensor names: diffusers' AutoencoderTiny and stable-diffusion.cpp's --taesd files
// (`decoder.layers.<i>.`, i = 0 for conv_in ... 18 for conv_out, ReLU and Upsample counting as
// layers; blocks `conv.0/2/4`), or the original taesd_decoder files (`<i>.`, one more: the clamp
// is layer 0). The encoder's tensors, when the file has them, are not read.
// Non-goals: the encoder (img2img), TAESD3/TAEF1 (16-channel latents: they load, but no
// pipeline here makes such latents).
// Thread-safety: Decode is const; one call at a time per pool.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/threads/thread_pool.h"
#include "diffusion/checkpoint.h"

namespace sluice::diffusion {

class TinyDecoder {
 public:
  static constexpr int kChannels = 64;       // of the published files (any width loads)
  static constexpr int kStages = 3;          // each ends in a 2x upsample
  static constexpr int kBlocksPerStage = 3;  // Blocks before each upsample

  // Opens a TAESD file (safetensors or GGUF); the naming is detected. Errors name the file and
  // the tensor (a VAE or UNet checkpoint given by mistake: the missing decoder tensor).
  static Result<std::unique_ptr<TinyDecoder>> Open(const std::string& path);
  // Loads from `reader` the layers named `prefix` + index, the first (conv_in) at `first`:
  // ("decoder.layers.", 0) or ("", 1). `sluice synth` records the tensors this way.
  static Result<std::unique_ptr<TinyDecoder>> Load(WeightReader& reader, const std::string& prefix,
                                                   int first, int z_channels,
                                                   int channels = kChannels);

  int z_channels() const { return z_channels_; }
  const std::string& path() const { return path_; }
  // The file's bytes (the weights stay mapped; F32 or F16 as stored) and the f32 copies of the
  // biases.
  uint64_t weight_bytes() const;
  // latent (h * w, z_channels) as the sampler leaves it -> image (8h * 8w, 3) in [-1, 1]
  // (not clamped).
  Status Decode(const float* latent, int h, int w, float* image, ThreadPool* pool) const;
  // In overlapping tiles of `tile` latent pixels a side (diffusion/tiles.h).
  Status DecodeTiled(const float* latent, int h, int w, int tile, float* image,
                     ThreadPool* pool) const;
  // The largest activations Decode of an h x w latent holds at once (three (pixels, 64) tensors
  // at the full size, an im2col chunk and the image), for the memory plan.
  static uint64_t ActivationBytes(int h, int w, int channels = kChannels);

 private:
  struct Block {
    Conv2dWeights conv[3];
  };
  void RunBlock(const Block& b, std::vector<float>& x, int h, int w, ThreadPool* pool) const;

  std::string path_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<WeightReader> reader_;
  int z_channels_ = 4;
  int channels_ = kChannels;
  Conv2dWeights conv_in_, conv_out_;
  std::vector<Block> stage_blocks_[kStages];
  Conv2dWeights upsample_[kStages];
  Block last_;
};

// Requests every tensor of TAESD's encoder (`encoder.layers.<i>.`: conv 3 -> 64, a Block, then
// three times a stride-2 conv without bias and 3 Blocks, conv 64 -> z_channels) from `reader`,
// loading nothing (text to image never encodes): `sluice synth` records them so its files are
// complete, as published ones are (stable-diffusion.cpp requires them).
Status RequestTinyEncoderTensors(WeightReader& reader, int z_channels);

}  // namespace sluice::diffusion
