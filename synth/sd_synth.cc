#include "synth/sd_synth.h"

#include <algorithm>
#include <cmath>

#include "core/base/random.h"
#include "core/base/str_cat.h"
#include "core/quant/fp16.h"
#include "diffusion/clip_text.h"
#include "diffusion/taesd.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"
#include "io/safetensors_writer.h"

namespace sluice {
namespace {

using diffusion::ClipLayout;
using diffusion::DiffusionConfig;
using diffusion::Family;
using diffusion::TextEncoderSetup;

TextEncoderSetup ClipL(const std::string& prefix, bool tiny) {
  TextEncoderSetup e;
  e.config.layout = ClipLayout::kOpenAi;
  e.config.prefix = prefix;
  e.config.width = tiny ? 64 : 768;
  e.config.layers = tiny ? 2 : 12;
  e.config.heads = e.config.width / 64;
  e.config.quick_gelu = true;
  return e;
}

TextEncoderSetup OpenClip(const std::string& prefix, int width, int layers, bool tiny) {
  TextEncoderSetup e;
  e.config.layout = ClipLayout::kOpenClip;
  e.config.prefix = prefix;
  e.config.width = tiny ? 64 : width;
  e.config.layers = tiny ? 2 : layers;
  e.config.heads = e.config.width / 64;
  e.config.quick_gelu = false;
  e.config.projection_dim = e.config.width;  // text_projection is in the published files
  e.pad_id = 0;
  return e;
}

double InitScale(const SdTensorSpec& t, bool* constant, double* value) {
  const std::string& n = t.name;
  *constant = false;
  if (t.shape.size() == 1) {  // a norm scale (1) or a bias (small, not 0: a zero-mean text
                              // embedding would make prompt-weight rescaling divide by ~0)
    if (n.ends_with(".weight")) {
      *constant = true;
      *value = 1.0;
      return 0;
    }
    return 0.02;
  }
  if (n.ends_with("token_embedding.weight")) return 0.02;
  if (n.ends_with("position_embedding.weight") || n.ends_with("positional_embedding")) return 0.01;
  if (n.ends_with("text_projection")) return 1.0 / std::sqrt(static_cast<double>(t.shape[0]));
  int64_t fan_in = 1;
  for (size_t i = 1; i < t.shape.size(); ++i) fan_in *= t.shape[i];
  return 1.0 / std::sqrt(static_cast<double>(fan_in));
}

}  // namespace

std::vector<std::string> SdPresetNames() { return {"sd15", "sd-turbo", "sdxl-turbo"}; }

Result<SdPreset> FindSdPreset(std::string_view name, bool tiny) {
  SdPreset p;
  p.name = std::string(name);
  DiffusionConfig& c = p.config;
  if (name == "sd15") {
    p.description =
        "Stable Diffusion 1.5: CLIP ViT-L/14, UNet 860M (8 heads, conv projections), KL-VAE";
    c.family = Family::kSd1;
    c.encoders = {ClipL("cond_stage_model.transformer.text_model.", tiny)};
    c.unet.context_dim = c.encoders[0].config.width;
    c.unet.num_heads = 8;
  } else if (name == "sd-turbo") {
    p.description =
        "SD-Turbo (SD 2.1): OpenCLIP ViT-H/14 penultimate, UNet 865M (64-channel heads, linear "
        "projections), KL-VAE; 1 step, no guidance";
    c.family = Family::kSd2;
    TextEncoderSetup h = OpenClip("cond_stage_model.model.", 1024, 24, tiny);
    h.skip = 1;
    c.encoders = {h};
    c.unet.context_dim = h.config.width;
    c.unet.num_heads = 0;
    c.unet.head_dim = 64;
    c.unet.linear_proj = true;
    p.default_steps = 1;
    p.default_cfg = 1.0f;
  } else if (name == "sdxl-turbo") {
    p.description =
        "SDXL-Turbo: CLIP ViT-L + OpenCLIP ViT-bigG (pooled), UNet 2.6B (depth 2/10 transformers, "
        "size conditioning), KL-VAE; 1 step, no guidance";
    c.family = Family::kSdxl;
    TextEncoderSetup l = ClipL("conditioner.embedders.0.transformer.text_model.", tiny);
    l.skip = 1;
    l.final_norm = false;
    TextEncoderSetup g = OpenClip("conditioner.embedders.1.model.", 1280, 32, tiny);
    g.skip = 1;
    g.final_norm = false;
    c.encoders = {l, g};
    c.unet.channel_mult = {1, 2, 4};
    c.unet.transformer_depth = tiny ? std::vector<int>{0, 1, 2} : std::vector<int>{0, 2, 10};
    c.unet.middle_depth = tiny ? 2 : 10;
    c.unet.context_dim = l.config.width + g.config.width;
    c.unet.num_heads = 0;
    c.unet.head_dim = 64;
    c.unet.linear_proj = true;
    c.unet.adm_in_channels = g.config.width + 6 * 256;
    c.vae.scale_factor = 0.13025f;
    p.default_steps = 1;
    p.default_cfg = 1.0f;
  } else {
    std::string names;
    for (const std::string& n : SdPresetNames()) names += (names.empty() ? "" : ", ") + n;
    return InvalidArgument("unknown diffusion preset '", name, "' (known: ", names, ")");
  }
  if (tiny) {
    p.name += "-tiny";
    c.unet.model_channels = 32;
    if (c.unet.head_dim > 0) c.unet.head_dim = 32;
    c.vae.ch = 32;
    p.default_size = 64;
  }
  c.latent_multiple = 1 << (static_cast<int>(c.unet.channel_mult.size()) - 1);
  return p;
}

Result<std::vector<SdTensorSpec>> SdTensorSpecs(const DiffusionConfig& c) {
  diffusion::WeightReader r = diffusion::WeightReader::Recorder();
  for (const TextEncoderSetup& e : c.encoders) {
    ASSIGN_OR_RETURN(auto m, diffusion::ClipTextModel::Load(r, e.config));
  }
  ASSIGN_OR_RETURN(auto u, diffusion::UNet::Load(r, c.unet));
  ASSIGN_OR_RETURN(auto v, diffusion::VaeDecoder::Load(r, c.vae));
  RETURN_IF_ERROR(diffusion::RequestVaeEncoderTensors(r, c.vae));
  std::vector<SdTensorSpec> out;
  for (const auto& t : r.requested()) out.push_back({t.name, t.shape});
  return out;
}

namespace {

// Writes `specs` as F16 safetensors with random weights (InitScale) and `metadata`.
Result<uint64_t> WriteRandomF16(const std::string& path, const std::vector<SdTensorSpec>& specs,
                                const std::vector<std::pair<std::string, std::string>>& metadata,
                                const SdSynthOptions& o) {
  ASSIGN_OR_RETURN(SafetensorsWriter w, SafetensorsWriter::Create(path));
  for (const auto& [k, v] : metadata) w.SetMetadata(k, v);
  w.SetMetadata("sluice.synth.seed", std::to_string(o.seed));
  uint64_t total = 0;
  for (const SdTensorSpec& t : specs) {
    RETURN_IF_ERROR(w.Declare(t.name, SafetensorsDtype::kF16, t.shape));
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    total += static_cast<uint64_t>(n) * 2;
  }
  RETURN_IF_ERROR(w.Begin());
  uint64_t done = 0;
  std::vector<uint16_t> buf;
  for (size_t i = 0; i < specs.size(); ++i) {
    const SdTensorSpec& t = specs[i];
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    bool constant = false;
    double value = 0;
    const double scale = InitScale(t, &constant, &value);
    SynthRng rng(o.seed * 1000003 + i);
    constexpr int64_t kChunk = 1 << 20;
    for (int64_t start = 0; start < n; start += kChunk) {
      const int64_t m = std::min(kChunk, n - start);
      buf.resize(static_cast<size_t>(m));
      for (int64_t j = 0; j < m; ++j) {
        buf[j] = Fp32ToFp16(static_cast<float>(constant ? value : scale * rng.Normal()));
      }
      if (o.cancel != nullptr && o.cancel->load()) return Cancelled("synth cancelled");
      RETURN_IF_ERROR(w.Write(buf.data(), static_cast<uint64_t>(m) * 2));
      done += static_cast<uint64_t>(m) * 2;
      if (o.progress) o.progress(done, total);
    }
  }
  RETURN_IF_ERROR(w.Finish());
  return w.file_bytes();
}

}  // namespace

Result<uint64_t> WriteSdCheckpoint(const std::string& path, const SdPreset& preset,
                                   const SdSynthOptions& o) {
  ASSIGN_OR_RETURN(std::vector<SdTensorSpec> specs, SdTensorSpecs(preset.config));
  return WriteRandomF16(path, specs,
                        {{"sluice.synthetic", "true"}, {"sluice.synth.preset", preset.name}}, o);
}

Result<uint64_t> WriteTaesdCheckpoint(const std::string& path, const SdSynthOptions& o) {
  diffusion::WeightReader r = diffusion::WeightReader::Recorder();
  RETURN_IF_ERROR(diffusion::RequestTinyEncoderTensors(r, 4));
  ASSIGN_OR_RETURN(auto d, diffusion::TinyDecoder::Load(r, "decoder.layers.", 0, 4));
  std::vector<SdTensorSpec> specs;
  for (const auto& t : r.requested()) specs.push_back({t.name, t.shape});
  return WriteRandomF16(path, specs,
                        {{"sluice.synthetic", "true"}, {"sluice.synth.preset", "taesd"}}, o);
}

}  // namespace sluice
