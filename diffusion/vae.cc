#include "diffusion/vae.h"

#include <algorithm>

#include "core/base/str_cat.h"
#include "diffusion/tiles.h"

namespace sluice::diffusion {

Result<VaeDecoder::ResnetBlock> VaeDecoder::LoadResnet(WeightReader& r, const std::string& p,
                                                       int c_in, int c_out) {
  ResnetBlock b;
  b.c_in = c_in;
  b.c_out = c_out;
  b.block = r.Block(p);
  ASSIGN_OR_RETURN(b.gn1_w, r.Vector(p + "norm1.weight", c_in));
  ASSIGN_OR_RETURN(b.gn1_b, r.Vector(p + "norm1.bias", c_in));
  ASSIGN_OR_RETURN(b.conv1, r.Conv(p + "conv1", c_in, c_out, 3));
  ASSIGN_OR_RETURN(b.gn2_w, r.Vector(p + "norm2.weight", c_out));
  ASSIGN_OR_RETURN(b.gn2_b, r.Vector(p + "norm2.bias", c_out));
  ASSIGN_OR_RETURN(b.conv2, r.Conv(p + "conv2", c_out, c_out, 3));
  if (c_in != c_out) {
    ASSIGN_OR_RETURN(Conv2dWeights s, r.Conv(p + "nin_shortcut", c_in, c_out, 1));
    b.shortcut = s;
  }
  return b;
}

Result<std::unique_ptr<VaeDecoder>> VaeDecoder::Load(WeightReader& r, const VaeConfig& cfg) {
  std::unique_ptr<VaeDecoder> v(new VaeDecoder());
  v->config_ = cfg;
  const std::string& p = cfg.prefix;
  const std::string d = p + "decoder.";
  const int levels = static_cast<int>(cfg.ch_mult.size());
  int ch = cfg.ch * cfg.ch_mult.back();
  const size_t first_block = r.blocks().size();
  v->post_quant_block_ = r.Block(p + "post_quant_conv.");
  ASSIGN_OR_RETURN(v->post_quant_,
                   r.Conv(p + "post_quant_conv", cfg.z_channels, cfg.z_channels, 1));
  v->conv_in_block_ = r.Block(d + "conv_in.");
  ASSIGN_OR_RETURN(v->conv_in_, r.Conv(d + "conv_in", cfg.z_channels, ch, 3));
  ASSIGN_OR_RETURN(v->mid1_, LoadResnet(r, d + "mid.block_1.", ch, ch));
  {
    AttnBlock& a = v->mid_attn_;
    a.c = ch;
    const std::string q = d + "mid.attn_1.";
    a.block = r.Block(q);
    ASSIGN_OR_RETURN(a.gn_w, r.Vector(q + "norm.weight", ch));
    ASSIGN_OR_RETURN(a.gn_b, r.Vector(q + "norm.bias", ch));
    ASSIGN_OR_RETURN(a.q, r.Conv1x1(q + "q.weight", ch, ch));
    ASSIGN_OR_RETURN(a.q_b, r.Vector(q + "q.bias", ch));
    ASSIGN_OR_RETURN(a.k, r.Conv1x1(q + "k.weight", ch, ch));
    ASSIGN_OR_RETURN(a.k_b, r.Vector(q + "k.bias", ch));
    ASSIGN_OR_RETURN(a.v, r.Conv1x1(q + "v.weight", ch, ch));
    ASSIGN_OR_RETURN(a.v_b, r.Vector(q + "v.bias", ch));
    ASSIGN_OR_RETURN(a.proj, r.Conv1x1(q + "proj_out.weight", ch, ch));
    ASSIGN_OR_RETURN(a.proj_b, r.Vector(q + "proj_out.bias", ch));
  }
  ASSIGN_OR_RETURN(v->mid2_, LoadResnet(r, d + "mid.block_2.", ch, ch));
  for (int level = levels - 1; level >= 0; --level) {
    Level L;
    const int out = cfg.ch * cfg.ch_mult[level];
    for (int i = 0; i <= cfg.num_res_blocks; ++i) {
      ASSIGN_OR_RETURN(ResnetBlock b,
                       LoadResnet(r, StrCat(d, "up.", level, ".block.", i, "."), ch, out));
      L.blocks.push_back(b);
      ch = out;
    }
    if (level > 0) {
      L.upsample_block = r.Block(StrCat(d, "up.", level, ".upsample."));
      ASSIGN_OR_RETURN(Conv2dWeights c,
                       r.Conv(StrCat(d, "up.", level, ".upsample.conv"), ch, ch, 3));
      L.upsample = c;
    }
    v->levels_.push_back(std::move(L));
  }
  ASSIGN_OR_RETURN(v->norm_out_w_, r.Vector(d + "norm_out.weight", ch));
  ASSIGN_OR_RETURN(v->norm_out_b_, r.Vector(d + "norm_out.bias", ch));
  v->conv_out_block_ = r.Block(d + "conv_out.");
  ASSIGN_OR_RETURN(v->conv_out_, r.Conv(d + "conv_out", ch, cfg.out_channels, 3));
  for (size_t b = first_block; b < r.blocks().size(); ++b) v->pass_.push_back(static_cast<int>(b));
  return v;
}

void VaeDecoder::RunResnet(const ResnetBlock& b, std::vector<float>& x, int h, int w,
                           ThreadPool* pool) const {
  // Buffers die as early as the math allows: at the full-size levels one (pixels, C) tensor is
  // 64-256 MB and this block's peak is the decoder's. With a shortcut, its output is made first
  // and the input is then normalised in place (it is not needed again): at most the input, the
  // shortcut and conv1's output live at once, not also a normalised copy.
  const int64_t hw = static_cast<int64_t>(h) * w;
  std::vector<float> skip, t, u;
  if (b.shortcut.has_value()) {
    skip.resize(static_cast<size_t>(hw) * b.c_out);
    LinearBias(b.shortcut->w, b.shortcut->bias, x.data(), hw, skip.data(), pool);
    t.swap(x);
  } else {
    t.resize(x.size());
  }
  GroupNorm(b.shortcut.has_value() ? t.data() : x.data(), hw, b.c_in, 32, 1e-6f, b.gn1_w, b.gn1_b,
            t.data(), pool);
  SiluInPlace(t.data(), static_cast<int64_t>(t.size()));
  ConvSame(b.conv1, t.data(), h, w, u, pool);
  std::vector<float>().swap(t);
  if (b.shortcut.has_value()) x.swap(skip);
  GroupNorm(u.data(), hw, b.c_out, 32, 1e-6f, b.gn2_w, b.gn2_b, u.data(), pool);
  SiluInPlace(u.data(), static_cast<int64_t>(u.size()));
  ConvSame(b.conv2, u.data(), h, w, t, pool);
  std::vector<float>().swap(u);
  for (size_t i = 0; i < t.size(); ++i) t[i] += x[i];
  x.swap(t);
}

void VaeDecoder::RunAttn(const AttnBlock& a, std::vector<float>& x, int h, int w,
                         ThreadPool* pool) const {
  const int64_t hw = static_cast<int64_t>(h) * w;
  std::vector<float> n(x.size()), q(x.size()), k(x.size()), v(x.size()), o(x.size());
  GroupNorm(x.data(), hw, a.c, 32, 1e-6f, a.gn_w, a.gn_b, n.data(), pool);
  LinearBias(a.q, a.q_b, n.data(), hw, q.data(), pool);
  LinearBias(a.k, a.k_b, n.data(), hw, k.data(), pool);
  LinearBias(a.v, a.v_b, n.data(), hw, v.data(), pool);
  MultiHeadAttention(q.data(), k.data(), v.data(), hw, hw, 1, a.c, o.data(), pool);
  LinearBias(a.proj, a.proj_b, o.data(), hw, n.data(), pool);
  for (size_t i = 0; i < x.size(); ++i) x[i] += n[i];
}

Status VaeDecoder::Resnet(const ResnetBlock& b, std::vector<float>& x, int h, int w,
                          ThreadPool* pool, BlockUser* blocks) const {
  BlockScope use(blocks, b.block);
  RETURN_IF_ERROR(use.status());
  RunResnet(b, x, h, w, pool);
  return Status::Ok();
}

Status VaeDecoder::Decode(const float* latent, int h, int w, float* image, ThreadPool* pool,
                          BlockUser* blocks) const {
  const VaeConfig& cfg = config_;
  const int64_t hw = static_cast<int64_t>(h) * w;
  std::vector<float> z(static_cast<size_t>(hw) * cfg.z_channels), x;
  for (size_t i = 0; i < z.size(); ++i) z[i] = latent[i] / cfg.scale_factor;
  std::vector<float> zq(z.size());
  {
    BlockScope use(blocks, post_quant_block_);
    RETURN_IF_ERROR(use.status());
    LinearBias(post_quant_.w, post_quant_.bias, z.data(), hw, zq.data(), pool);
  }
  {
    BlockScope use(blocks, conv_in_block_);
    RETURN_IF_ERROR(use.status());
    ConvSame(conv_in_, zq.data(), h, w, x, pool);
  }
  RETURN_IF_ERROR(Resnet(mid1_, x, h, w, pool, blocks));
  {
    BlockScope use(blocks, mid_attn_.block);
    RETURN_IF_ERROR(use.status());
    RunAttn(mid_attn_, x, h, w, pool);
  }
  RETURN_IF_ERROR(Resnet(mid2_, x, h, w, pool, blocks));
  int ch_h = h, ch_w = w, ch = conv_in_.c_out;
  for (const Level& L : levels_) {
    for (const ResnetBlock& b : L.blocks) {
      RETURN_IF_ERROR(Resnet(b, x, ch_h, ch_w, pool, blocks));
      ch = b.c_out;
    }
    if (L.upsample.has_value()) {
      // Nearest 2x fused into the convolution: the 4x input is never made.
      BlockScope use(blocks, L.upsample_block);
      RETURN_IF_ERROR(use.status());
      std::vector<float> y;
      ConvUp2(*L.upsample, x.data(), ch_h, ch_w, y, pool);
      x.swap(y);
      ch_h *= 2;
      ch_w *= 2;
    }
  }
  const int64_t out_hw = static_cast<int64_t>(ch_h) * ch_w;
  GroupNorm(x.data(), out_hw, ch, 32, 1e-6f, norm_out_w_, norm_out_b_, x.data(), pool);
  SiluInPlace(x.data(), static_cast<int64_t>(x.size()));
  std::vector<float> img;
  {
    BlockScope use(blocks, conv_out_block_);
    RETURN_IF_ERROR(use.status());
    ConvSame(conv_out_, x.data(), ch_h, ch_w, img, pool);
  }
  std::copy(img.begin(), img.end(), image);
  return Status::Ok();
}

Status VaeDecoder::DecodeTiled(const float* latent, int h, int w, int tile, float* image,
                               ThreadPool* pool, BlockUser* blocks) const {
  return DecodeInTiles(
      latent, h, w, config_.z_channels, config_.out_channels, tile,
      [&](const float* sub, int th, int tw, float* out) {
        return Decode(sub, th, tw, out, pool, blocks);
      },
      image);
}

Status RequestVaeEncoderTensors(WeightReader& r, const VaeConfig& cfg) {
  const std::string e = cfg.prefix + "encoder.";
  auto resnet = [&](const std::string& p, int c_in, int c_out) -> Status {
    RETURN_IF_ERROR(r.Vector(p + "norm1.weight", c_in).status());
    RETURN_IF_ERROR(r.Vector(p + "norm1.bias", c_in).status());
    RETURN_IF_ERROR(r.Conv(p + "conv1", c_in, c_out, 3).status());
    RETURN_IF_ERROR(r.Vector(p + "norm2.weight", c_out).status());
    RETURN_IF_ERROR(r.Vector(p + "norm2.bias", c_out).status());
    RETURN_IF_ERROR(r.Conv(p + "conv2", c_out, c_out, 3).status());
    if (c_in != c_out) RETURN_IF_ERROR(r.Conv(p + "nin_shortcut", c_in, c_out, 1).status());
    return Status::Ok();
  };
  RETURN_IF_ERROR(r.Conv(e + "conv_in", 3, cfg.ch, 3).status());
  int ch = cfg.ch;
  const int levels = static_cast<int>(cfg.ch_mult.size());
  for (int level = 0; level < levels; ++level) {
    const int out = cfg.ch * cfg.ch_mult[level];
    for (int i = 0; i < cfg.num_res_blocks; ++i) {
      RETURN_IF_ERROR(resnet(StrCat(e, "down.", level, ".block.", i, "."), ch, out));
      ch = out;
    }
    if (level + 1 < levels) {
      RETURN_IF_ERROR(r.Conv(StrCat(e, "down.", level, ".downsample.conv"), ch, ch, 3).status());
    }
  }
  RETURN_IF_ERROR(resnet(e + "mid.block_1.", ch, ch));
  const std::string a = e + "mid.attn_1.";
  RETURN_IF_ERROR(r.Vector(a + "norm.weight", ch).status());
  RETURN_IF_ERROR(r.Vector(a + "norm.bias", ch).status());
  for (const char* n : {"q", "k", "v", "proj_out"}) {
    RETURN_IF_ERROR(r.Conv(a + n, ch, ch, 1).status());
  }
  RETURN_IF_ERROR(resnet(e + "mid.block_2.", ch, ch));
  RETURN_IF_ERROR(r.Vector(e + "norm_out.weight", ch).status());
  RETURN_IF_ERROR(r.Vector(e + "norm_out.bias", ch).status());
  RETURN_IF_ERROR(r.Conv(e + "conv_out", ch, 2 * cfg.z_channels, 3).status());
  RETURN_IF_ERROR(
      r.Conv(cfg.prefix + "quant_conv", 2 * cfg.z_channels, 2 * cfg.z_channels, 1).status());
  return Status::Ok();
}

}  // namespace sluice::diffusion
