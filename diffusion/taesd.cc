#include "diffusion/taesd.h"

#include <algorithm>
#include <cmath>

#include "core/base/str_cat.h"
#include "diffusion/ops.h"
#include "diffusion/tiles.h"

namespace sluice::diffusion {
namespace {

void ReluInPlace(float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = std::max(x[i], 0.0f);
}

}  // namespace

Result<std::unique_ptr<TinyDecoder>> TinyDecoder::Load(WeightReader& r, const std::string& prefix,
                                                       int first, int z_channels, int channels) {
  std::unique_ptr<TinyDecoder> d(new TinyDecoder());
  d->z_channels_ = z_channels;
  d->channels_ = channels;
  const int C = channels;
  int i = first;
  auto layer = [&](int index) { return StrCat(prefix, index); };
  auto block = [&](int index) -> Result<Block> {
    Block b;
    for (int j = 0; j < 3; ++j) {
      ASSIGN_OR_RETURN(b.conv[j], r.Conv(StrCat(layer(index), ".conv.", 2 * j), C, C, 3));
    }
    return b;
  };
  ASSIGN_OR_RETURN(d->conv_in_, r.Conv(layer(i), z_channels, C, 3));
  i += 2;  // conv, ReLU
  for (int s = 0; s < kStages; ++s) {
    for (int b = 0; b < kBlocksPerStage; ++b) {
      ASSIGN_OR_RETURN(Block blk, block(i++));
      d->stage_blocks_[s].push_back(blk);
    }
    ++i;  // Upsample
    ASSIGN_OR_RETURN(d->upsample_[s], r.Conv(layer(i++), C, C, 3, /*bias=*/false));
  }
  ASSIGN_OR_RETURN(d->last_, block(i++));
  ASSIGN_OR_RETURN(d->conv_out_, r.Conv(layer(i), C, 3, 3));
  return d;
}

Result<std::unique_ptr<TinyDecoder>> TinyDecoder::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<Checkpoint> ckpt, Checkpoint::Open(path));
  std::string prefix;
  int first = 0;
  if (ckpt->Has("decoder.layers.0.weight")) {
    prefix = "decoder.layers.";
  } else if (ckpt->Has("1.weight") && ckpt->Has("3.conv.0.weight")) {
    first = 1;
  } else {
    return InvalidArgument(
        path, ": not a TAESD decoder: expected the tensor ",
        "'decoder.layers.0.weight' (diffusers / stable-diffusion.cpp naming) or ",
        "'1.weight' (taesd_decoder), found neither among its ", ckpt->tensors().size(), " tensors");
  }
  const CkptTensor* in = ckpt->Find(StrCat(prefix, first, ".weight"));
  if (in->shape.size() != 4 || in->shape[0] < 1 || in->shape[0] > 1024 || in->shape[1] < 1 ||
      in->shape[1] > 64 || in->shape[2] != 3 || in->shape[3] != 3) {
    return InvalidArgument(path, ": tensor '", in->name,
                           "': expected [channels (64), z_channels (4), 3, 3], found ",
                           ShapeString(in->shape));
  }
  const int c = static_cast<int>(in->shape[0]), z = static_cast<int>(in->shape[1]);
  auto reader = std::make_unique<WeightReader>(*ckpt);
  ASSIGN_OR_RETURN(std::unique_ptr<TinyDecoder> d, Load(*reader, prefix, first, z, c));
  d->path_ = path;
  d->ckpt_ = std::move(ckpt);
  d->reader_ = std::move(reader);
  return d;
}

uint64_t TinyDecoder::weight_bytes() const {
  return (ckpt_ ? ckpt_->file_bytes() : 0) + (reader_ ? reader_->owned_bytes() : 0);
}

void TinyDecoder::RunBlock(const Block& b, std::vector<float>& x, int h, int w,
                           ThreadPool* pool) const {
  std::vector<float> t, u;
  ConvSame(b.conv[0], x.data(), h, w, t, pool);
  ReluInPlace(t.data(), t.size());
  ConvSame(b.conv[1], t.data(), h, w, u, pool);
  ReluInPlace(u.data(), u.size());
  ConvSame(b.conv[2], u.data(), h, w, t, pool);
  for (size_t i = 0; i < t.size(); ++i) t[i] = std::max(t[i] + x[i], 0.0f);
  x.swap(t);
}

Status TinyDecoder::Decode(const float* latent, int h, int w, float* image,
                           ThreadPool* pool) const {
  const size_t n = static_cast<size_t>(h) * w * z_channels_;
  std::vector<float> z(n), x;
  for (size_t i = 0; i < n; ++i) z[i] = std::tanh(latent[i] / 3.0f) * 3.0f;
  ConvSame(conv_in_, z.data(), h, w, x, pool);
  ReluInPlace(x.data(), x.size());
  int ch = h, cw = w;
  for (int s = 0; s < kStages; ++s) {
    for (const Block& b : stage_blocks_[s]) RunBlock(b, x, ch, cw, pool);
    std::vector<float> y;
    ConvUp2(upsample_[s], x.data(), ch, cw, y, pool);
    x.swap(y);
    ch *= 2;
    cw *= 2;
  }
  RunBlock(last_, x, ch, cw, pool);
  std::vector<float> out;
  ConvSame(conv_out_, x.data(), ch, cw, out, pool);
  for (size_t i = 0; i < out.size(); ++i) image[i] = out[i] * 2.0f - 1.0f;
  return Status::Ok();
}

Status TinyDecoder::DecodeTiled(const float* latent, int h, int w, int tile, float* image,
                                ThreadPool* pool) const {
  return DecodeInTiles(
      latent, h, w, z_channels_, 3, tile,
      [&](const float* sub, int th, int tw, float* out) { return Decode(sub, th, tw, out, pool); },
      image);
}

uint64_t TinyDecoder::ActivationBytes(int h, int w, int channels) {
  const uint64_t full = static_cast<uint64_t>(h) * 8 * static_cast<uint64_t>(w) * 8;
  // The last stage's upsample (x at a quarter, y) or the last Block (x, t, u): three tensors of
  // (full, 64) floats; an im2col chunk; the image.
  return 3 * full * static_cast<uint64_t>(channels) * 4 + (8ull << 20) + full * 3 * 4;
}

Status RequestTinyEncoderTensors(WeightReader& r, int z_channels) {
  constexpr int C = TinyDecoder::kChannels;
  int i = 0;
  auto block = [&](int index) -> Status {
    for (int j = 0; j < 3; ++j) {
      RETURN_IF_ERROR(r.Conv(StrCat("encoder.layers.", index, ".conv.", 2 * j), C, C, 3).status());
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(r.Conv(StrCat("encoder.layers.", i++), 3, C, 3).status());
  RETURN_IF_ERROR(block(i++));
  for (int s = 0; s < 3; ++s) {
    RETURN_IF_ERROR(r.Conv(StrCat("encoder.layers.", i++), C, C, 3, /*bias=*/false).status());
    for (int b = 0; b < 3; ++b) RETURN_IF_ERROR(block(i++));
  }
  RETURN_IF_ERROR(r.Conv(StrCat("encoder.layers.", i), C, z_channels, 3).status());
  return Status::Ok();
}

}  // namespace sluice::diffusion
