#include "diffusion/model_config.h"

#include "core/base/str_cat.h"

namespace sluice::diffusion {
namespace {

const std::vector<int64_t>* ShapeOf(const Checkpoint& c, const std::string& name) {
  const CkptTensor* t = c.Find(name);
  return t == nullptr ? nullptr : &t->shape;
}

int CountPrefixed(const Checkpoint& c, const std::string& before, const std::string& after) {
  int n = 0;
  while (c.Has(StrCat(before, n, after))) ++n;
  return n;
}

Result<TextEncoderSetup> DetectClip(const Checkpoint& c, const std::string& prefix,
                                    ClipLayout layout) {
  TextEncoderSetup s;
  ClipTextConfig& cfg = s.config;
  cfg.layout = layout;
  cfg.prefix = prefix;
  const bool openai = layout == ClipLayout::kOpenAi;
  const std::string tok =
      prefix + (openai ? "embeddings.token_embedding.weight" : "token_embedding.weight");
  const std::vector<int64_t>* shape = ShapeOf(c, tok);
  if (shape == nullptr || shape->size() != 2) {
    return NotFound(c.path(), ": text encoder tensor '", tok, "' is missing or not 2-D");
  }
  if ((*shape)[0] < 2 || (*shape)[0] > 1000000 || (*shape)[1] < 1 || (*shape)[1] > 65536) {
    return Corrupt(c.path(), ": '", tok, "' has shape ", ShapeString(*shape));
  }
  cfg.vocab = static_cast<int>((*shape)[0]);
  cfg.width = static_cast<int>((*shape)[1]);
  cfg.heads = std::max(1, cfg.width / 64);
  cfg.layers = openai ? CountPrefixed(c, prefix + "encoder.layers.", ".layer_norm1.weight")
                      : CountPrefixed(c, prefix + "transformer.resblocks.", ".ln_1.weight");
  cfg.quick_gelu = openai;
  if (cfg.layers < 2)
    return Corrupt(c.path(), ": text encoder ", prefix, " has ", cfg.layers, " layers");
  return s;
}

// SDXL's first encoder (CLIP ViT-L in Hugging Face's names in both layouts): the penultimate
// layer without the final norm.
Result<TextEncoderSetup> DetectSdxlClipL(const Checkpoint& c) {
  ASSIGN_OR_RETURN(
      TextEncoderSetup l,
      DetectClip(c, "conditioner.embedders.0.transformer.text_model.", ClipLayout::kOpenAi));
  l.skip = 1;
  l.final_norm = false;
  return l;
}

Result<UNetConfig> DetectUNet(const Checkpoint& c, Family family) {
  UNetConfig u;
  const std::string& p = u.prefix;
  const std::vector<int64_t>* in = ShapeOf(c, p + "input_blocks.0.0.weight");
  if (in == nullptr || in->size() != 4) {
    return NotFound(c.path(), ": UNet tensor '", p, "input_blocks.0.0.weight' is missing");
  }
  u.model_channels = static_cast<int>((*in)[0]);
  u.in_channels = static_cast<int>((*in)[1]);
  if ((*in)[0] < 32 || (*in)[0] > 65536 || (*in)[0] % 32 != 0 || (*in)[1] < 1 || (*in)[1] > 64) {
    return Corrupt(c.path(), ": UNet input convolution has shape ", ShapeString(*in),
                   "; expected [channels (a multiple of 32), latent channels, 3, 3]");
  }
  // Walk the input blocks: a ResBlock's out channels give the level's multiplier; a ".0.op"
  // block ends a level.
  u.channel_mult.clear();
  u.transformer_depth.clear();
  int res_in_level = 0, blocks_per_level = -1;
  int depth = 0;
  for (int i = 1;; ++i) {
    const std::string q = StrCat(p, "input_blocks.", i, ".");
    if (c.Has(q + "0.op.weight")) {
      u.transformer_depth.push_back(depth);
      if (blocks_per_level >= 0 && blocks_per_level != res_in_level) {
        return Corrupt(c.path(), ": UNet levels have different numbers of residual blocks");
      }
      blocks_per_level = res_in_level;
      res_in_level = 0;
      depth = 0;
      continue;
    }
    const std::vector<int64_t>* conv = ShapeOf(c, q + "0.in_layers.2.weight");
    if (conv == nullptr) break;
    if (res_in_level == 0)
      u.channel_mult.push_back(static_cast<int>((*conv)[0]) / u.model_channels);
    ++res_in_level;
    depth = CountPrefixed(c, q + "1.transformer_blocks.", ".norm1.weight");
  }
  u.transformer_depth.push_back(depth);
  if (u.channel_mult.empty() || u.channel_mult.size() != u.transformer_depth.size() ||
      u.channel_mult.size() > 8) {
    return Corrupt(c.path(), ": cannot read the UNet's levels from its input blocks");
  }
  u.num_res_blocks = res_in_level;
  u.middle_depth = CountPrefixed(c, p + "middle_block.1.transformer_blocks.", ".norm1.weight");
  // The context width: any cross-attention's key projection.
  std::string any_attn2;
  for (int i = 1; i < 64 && any_attn2.empty(); ++i) {
    const std::string k =
        StrCat(p, "input_blocks.", i, ".1.transformer_blocks.0.attn2.to_k.weight");
    if (c.Has(k)) any_attn2 = k;
  }
  if (any_attn2.empty()) any_attn2 = p + "middle_block.1.transformer_blocks.0.attn2.to_k.weight";
  const std::vector<int64_t>* k = ShapeOf(c, any_attn2);
  if (k == nullptr || k->size() != 2 || (*k)[1] < 1 || (*k)[1] > 65536) {
    return NotFound(c.path(), ": no cross-attention in the UNet");
  }
  u.context_dim = static_cast<int>((*k)[1]);
  const std::vector<int64_t>* proj = ShapeOf(c, p + "middle_block.1.proj_in.weight");
  u.linear_proj = proj != nullptr && proj->size() == 2;
  if (family == Family::kSd1) {
    u.num_heads = 8;
    u.head_dim = 0;
  } else {
    u.num_heads = 0;
    u.head_dim = 64;
  }
  // Scaled-down models keep the families' head rules where they divide; else one head per 64.
  for (int mult : u.channel_mult) {
    const int ch = mult * u.model_channels;
    if (u.head_dim > 0 && ch % u.head_dim != 0) u.head_dim = ch < 64 ? ch : 64;
    if (u.num_heads > 0 && ch % u.num_heads != 0) u.num_heads = 1;
  }
  if (const std::vector<int64_t>* label = ShapeOf(c, p + "label_emb.0.0.weight")) {
    if (label->size() != 2 || (*label)[1] < 1 || (*label)[1] > 65536) {
      return Corrupt(c.path(), ": '", p, "label_emb.0.0.weight' has shape ", ShapeString(*label));
    }
    u.adm_in_channels = static_cast<int>((*label)[1]);
  }
  const std::vector<int64_t>* out = ShapeOf(c, p + "out.2.weight");
  if (out == nullptr || out->empty() || (*out)[0] < 1 || (*out)[0] > 64) {
    return NotFound(c.path(), ": UNet tensor '", p, "out.2.weight' is missing or malformed");
  }
  u.out_channels = static_cast<int>((*out)[0]);
  return u;
}

Result<VaeConfig> DetectVae(const Checkpoint& c, Family family) {
  VaeConfig v;
  const std::string d = v.prefix + "decoder.";
  const std::vector<int64_t>* conv_out = ShapeOf(c, d + "conv_out.weight");
  const std::vector<int64_t>* conv_in = ShapeOf(c, d + "conv_in.weight");
  if (conv_out == nullptr || conv_in == nullptr || conv_out->size() != 4 || conv_in->size() != 4) {
    return NotFound(c.path(), ": VAE decoder tensors '", d, "conv_in/conv_out.weight' are missing");
  }
  if ((*conv_out)[1] < 32 || (*conv_out)[1] > 65536 || (*conv_in)[1] < 1 || (*conv_in)[1] > 64) {
    return Corrupt(c.path(), ": VAE decoder convolutions have shapes ", ShapeString(*conv_in),
                   " and ", ShapeString(*conv_out));
  }
  v.ch = static_cast<int>((*conv_out)[1]);
  v.z_channels = static_cast<int>((*conv_in)[1]);
  const int levels = CountPrefixed(c, d + "up.", ".block.0.conv1.weight");
  v.num_res_blocks = CountPrefixed(c, d + "up.0.block.", ".conv1.weight") - 1;
  v.ch_mult.clear();
  for (int l = 0; l < levels; ++l) {
    const std::vector<int64_t>* s = ShapeOf(c, StrCat(d, "up.", l, ".block.0.conv2.weight"));
    if (s == nullptr || s->empty() || (*s)[0] % v.ch != 0 || (*s)[0] <= 0) {
      return Corrupt(c.path(), ": VAE level ", l,
                     " is incomplete or its channels are not a multiple of ", v.ch);
    }
    v.ch_mult.push_back(static_cast<int>((*s)[0]) / v.ch);
  }
  if (levels < 1 || v.num_res_blocks < 0)
    return Corrupt(c.path(), ": cannot read the VAE's levels");
  v.scale_factor = family == Family::kSdxl ? 0.13025f : 0.18215f;
  return v;
}

}  // namespace

const char* FamilyName(Family f) {
  switch (f) {
    case Family::kSd1:
      return "SD 1.x";
    case Family::kSd2:
      return "SD 2.x";
    case Family::kSdxl:
      return "SDXL";
  }
  return "?";
}

Result<DiffusionConfig> DetectDiffusionConfig(const Checkpoint& c) {
  DiffusionConfig d;
  if (c.Has("conditioner.embedders.1.transformer.text_model.final_layer_norm.weight")) {
    // SDXL from a diffusers folder: bigG in Hugging Face's names (GELU, a Linear projection).
    d.family = Family::kSdxl;
    ASSIGN_OR_RETURN(TextEncoderSetup l, DetectSdxlClipL(c));
    ASSIGN_OR_RETURN(
        TextEncoderSetup g,
        DetectClip(c, "conditioner.embedders.1.transformer.text_model.", ClipLayout::kOpenAi));
    g.config.quick_gelu = c.MetadataValue("diffusers.text_encoder_2.hidden_act") == "quick_gelu";
    g.skip = 1;
    g.final_norm = false;
    g.pad_id = 0;
    const std::vector<int64_t>* proj =
        ShapeOf(c, "conditioner.embedders.1.transformer.text_projection.weight");
    if (proj == nullptr || proj->size() != 2 || (*proj)[0] < 1 || (*proj)[0] > 65536 ||
        (*proj)[1] != g.config.width) {
      return NotFound(c.path(),
                      ": SDXL's text_encoder_2 text_projection.weight is missing or not [", "dim, ",
                      g.config.width, "]");
    }
    g.config.projection_dim = static_cast<int>((*proj)[0]);
    d.encoders = {l, g};
  } else if (c.Has("conditioner.embedders.1.model.ln_final.weight")) {
    d.family = Family::kSdxl;
    ASSIGN_OR_RETURN(TextEncoderSetup l, DetectSdxlClipL(c));
    ASSIGN_OR_RETURN(TextEncoderSetup g,
                     DetectClip(c, "conditioner.embedders.1.model.", ClipLayout::kOpenClip));
    g.skip = 1;
    g.final_norm = false;
    g.pad_id = 0;
    const std::vector<int64_t>* proj = ShapeOf(c, "conditioner.embedders.1.model.text_projection");
    if (proj == nullptr || proj->size() != 2 || (*proj)[1] < 1 || (*proj)[1] > 65536) {
      return NotFound(c.path(), ": SDXL's text_projection is missing");
    }
    g.config.projection_dim = static_cast<int>((*proj)[1]);
    d.encoders = {l, g};
  } else if (c.Has("cond_stage_model.model.ln_final.weight")) {
    d.family = Family::kSd2;
    ASSIGN_OR_RETURN(TextEncoderSetup h,
                     DetectClip(c, "cond_stage_model.model.", ClipLayout::kOpenClip));
    h.skip = 1;
    h.final_norm = true;
    h.pad_id = 0;
    d.encoders = {h};
  } else if (c.Has("cond_stage_model.transformer.text_model.final_layer_norm.weight")) {
    d.family = Family::kSd1;
    ASSIGN_OR_RETURN(TextEncoderSetup l, DetectClip(c, "cond_stage_model.transformer.text_model.",
                                                    ClipLayout::kOpenAi));
    // A diffusers SD 2.x folder has OpenCLIP ViT-H in Hugging Face's names: GELU, 1024 wide,
    // usually 23 layers (the penultimate is its last), padded with id 0.
    const std::string act = c.MetadataValue("diffusers.text_encoder.hidden_act");
    if (act == "gelu" || (act.empty() && l.config.width == 1024)) {
      d.family = Family::kSd2;
      l.config.quick_gelu = false;
      l.skip = l.config.layers >= 24 ? 1 : 0;
      l.pad_id = 0;
    }
    d.encoders = {l};
  } else {
    return Unsupported(
        c.path(), ": not a Stable Diffusion checkpoint sluice knows: no text encoder ",
        "(cond_stage_model.transformer.text_model.* for SD 1.x, cond_stage_model.model.* ",
        "for SD 2.x, conditioner.embedders.* for SDXL; or a diffusers folder)");
  }
  ASSIGN_OR_RETURN(d.unet, DetectUNet(c, d.family));
  ASSIGN_OR_RETURN(d.vae, DetectVae(c, d.family));
  d.latent_multiple = 1 << (static_cast<int>(d.unet.channel_mult.size()) - 1);
  int ctx = 0;
  for (const TextEncoderSetup& e : d.encoders) ctx += e.config.width;
  if (ctx != d.unet.context_dim) {
    return Corrupt(c.path(), ": the text encoders give ", ctx, " channels of context; the UNet's ",
                   "cross-attention takes ", d.unet.context_dim);
  }
  return d;
}

}  // namespace sluice::diffusion
