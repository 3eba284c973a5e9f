#include "diffusion/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/base/str_cat.h"
#include "diffusion/denoiser.h"
#include "diffusion/ops.h"
#include "diffusion/prompt.h"

namespace sluice::diffusion {
namespace {

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

Result<std::unique_ptr<DiffusionModel>> DiffusionModel::Load(const std::string& path,
                                                             std::optional<Prediction> prediction) {
  return Load(path, DiffusionLoadOptions{.prediction = prediction});
}

Result<std::unique_ptr<DiffusionModel>> DiffusionModel::Load(const std::string& path,
                                                             const DiffusionLoadOptions& options) {
  const std::optional<Prediction>& prediction = options.prediction;
  std::unique_ptr<DiffusionModel> m(new DiffusionModel());
  ASSIGN_OR_RETURN(m->ckpt_, Checkpoint::Open(path));
  ASSIGN_OR_RETURN(m->config_, DetectDiffusionConfig(*m->ckpt_));
  if (prediction.has_value()) m->config_.prediction = *prediction;
  if (const std::string& merges = m->ckpt_->tokenizer_merges(); !merges.empty()) {
    std::ifstream in(merges);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) return IoError(merges, ": cannot be read");
    ASSIGN_OR_RETURN(m->tokenizer_, ClipTokenizer::FromMerges(text.str(), merges));
  } else {
    ASSIGN_OR_RETURN(m->tokenizer_, ClipTokenizer::Builtin());
  }
  m->reader_ = std::make_unique<WeightReader>(*m->ckpt_);
  if (options.weight_budget > 0) {
    ASSIGN_OR_RETURN(m->region_, PlacedRegion::Create(m->ckpt_->file_bytes()));
    m->reader_->PlaceMatrices(m->region_->data());
  }
  for (const TextEncoderSetup& e : m->config_.encoders) {
    ASSIGN_OR_RETURN(std::unique_ptr<ClipTextModel> enc,
                     ClipTextModel::Load(*m->reader_, e.config));
    m->encoders_.push_back(std::move(enc));
  }
  ASSIGN_OR_RETURN(m->unet_, UNet::Load(*m->reader_, m->config_.unet));
  ASSIGN_OR_RETURN(m->vae_, VaeDecoder::Load(*m->reader_, m->config_.vae));
  m->owned_bytes_ = m->reader_->owned_bytes();
  if (!options.taesd_path.empty()) {
    ASSIGN_OR_RETURN(m->taesd_, TinyDecoder::Open(options.taesd_path));
    if (m->taesd_->z_channels() != m->config_.unet.in_channels) {
      return InvalidArgument(options.taesd_path, ": a TAESD for ", m->taesd_->z_channels(),
                             "-channel latents; ", path, " makes ", m->config_.unet.in_channels,
                             "-channel latents");
    }
  }
  if (options.weight_budget > 0) {
    ASSIGN_OR_RETURN(std::unique_ptr<PrefixBlockTable> table,
                     PrefixBlockTable::Create(*m->ckpt_, m->reader_->blocks()));
    ASSIGN_OR_RETURN(StreamPlan plan, PlanStream(*table, m->unet_->pass(), options.weight_budget));
    ASSIGN_OR_RETURN(m->stream_, DiffusionStream::Create(std::move(table), plan, m->region_->data(),
                                                         options.io));
  }
  // Vectors were copied out of the mapping; its pages need not stay in our RSS.
  m->ckpt_->DropPages();
  if (!prediction.has_value() && m->config_.family == Family::kSd2) {
    ASSIGN_OR_RETURN(m->config_.prediction, DetectSd2Prediction(*m->unet_, m->stream_.get()));
  }
  return m;
}

namespace {

uint64_t UNetActivationBytes(const DiffusionConfig& config, int width, int height, bool guided) {
  const uint64_t lh = static_cast<uint64_t>(height) / 8, lw = static_cast<uint64_t>(width) / 8;
  const uint64_t batch = guided ? 2 : 1;
  // Six (pixels, C) scratch buffers, the skips (~6.5 of them), current, next and concat (~4),
  // at the top level's C; a feed-forward chunk and two im2col chunks.
  const uint64_t n0 = batch * lh * lw * static_cast<uint64_t>(config.unet.model_channels) * 4;
  return 17 * n0 + 2 * (8ull << 20) + 1024ull * 8 * config.unet.model_channels * 4;
}

uint64_t VaeActivationBytes(const DiffusionConfig& config, int lh, int lw) {
  // At full size, the first ResnetBlock of the last level (2 ch -> ch): its input (2 units of
  // (pixels, ch)), the shortcut's output and conv1's (1 each), plus an im2col chunk.
  return 4 * (static_cast<uint64_t>(lh) * 8) * (static_cast<uint64_t>(lw) * 8) *
             static_cast<uint64_t>(config.vae.ch) * 4 +
         (8ull << 20);
}

}  // namespace

uint64_t ActivationBytes(const DiffusionConfig& config, int width, int height, bool guided,
                         int vae_tile, bool taesd) {
  int th = height / 8, tw = width / 8;
  if (vae_tile > 0) {
    th = std::min(th, vae_tile);
    tw = std::min(tw, vae_tile);
  }
  // Tiling keeps the whole image's output and weights: 2 x (pixels, 4) floats.
  const uint64_t tiles = vae_tile > 0 ? 2ull * width * height * 4 * 4 : 0;
  const uint64_t decoder =
      taesd ? TinyDecoder::ActivationBytes(th, tw) : VaeActivationBytes(config, th, tw);
  return std::max(UNetActivationBytes(config, width, height, guided), decoder + tiles);
}

Result<Prediction> DetectSd2Prediction(const UNet& unet, DiffusionStream* stream) {
  // AUTOMATIC1111's test, which stable-diffusion.cpp repeats: at t = 999 on a flat input
  // (latent 0.5, context 0.5), a v model's output lies far below its input, an eps model's not.
  const UNetConfig& c = unet.config();
  const int h = 8, w = 8;
  std::vector<float> x(static_cast<size_t>(h) * w * c.in_channels, 0.5f), out(x.size());
  std::vector<float> ctx(static_cast<size_t>(2) * c.context_dim, 0.5f);
  const double t = 999;
  if (stream != nullptr) stream->Announce(unet.pass());
  Status st =
      unet.Forward(x.data(), 1, h, w, &t, ctx.data(), 2, nullptr, out.data(), nullptr, stream);
  if (!st.ok()) {
    if (stream != nullptr) stream->Abandon();
    return st;
  }
  double mean = 0;
  for (size_t i = 0; i < out.size(); ++i) mean += (out[i] - x[i]) / out.size();
  return mean < -1 ? Prediction::kV : Prediction::kEps;
}

Result<Conditioning> EncodePrompt(const DiffusionModel& model, const std::string& prompt, bool zero,
                                  int width, int height, ThreadPool* pool, bool* truncated,
                                  int* prompt_tokens) {
  const DiffusionConfig& cfg = model.config();
  constexpr int n = ClipTokenizer::kContextLength;
  Conditioning c;
  c.context.assign(static_cast<size_t>(n) * cfg.unet.context_dim, 0.0f);
  std::vector<float> pooled;
  int offset = 0;
  for (size_t i = 0; i < cfg.encoders.size(); ++i) {
    const TextEncoderSetup& e = cfg.encoders[i];
    const int width_i = e.config.width;
    const bool want_pooled = e.config.projection_dim > 0;
    if (!zero) {
      const ClipTokens tokens = TokenizePrompt(model.tokenizer(), prompt, e.pad_id);
      if (truncated != nullptr) *truncated |= tokens.truncated;
      if (prompt_tokens != nullptr) *prompt_tokens = tokens.prompt_tokens;
      std::vector<int32_t> ids = tokens.ids;
      for (int32_t& id : ids) id = std::min(id, e.config.vocab - 1);  // scaled-down vocabularies
      ASSIGN_OR_RETURN(ClipTextModel::Output out,
                       model.encoders()[i]->Encode(ids, e.skip, e.final_norm, want_pooled, pool,
                                                   model.stream()));
      ApplyTokenWeights(tokens, width_i, out.hidden.data());
      for (int t = 0; t < n; ++t) {
        std::copy(
            out.hidden.begin() + static_cast<std::ptrdiff_t>(t) * width_i,
            out.hidden.begin() + static_cast<std::ptrdiff_t>(t + 1) * width_i,
            c.context.begin() + static_cast<std::ptrdiff_t>(t) * cfg.unet.context_dim + offset);
      }
      if (want_pooled) pooled = out.pooled;
    } else if (want_pooled) {
      pooled.assign(e.config.projection_dim, 0.0f);
    }
    offset += width_i;
  }
  if (cfg.unet.adm_in_channels > 0) {
    // SDXL: y = [pooled, emb(h), emb(w) original; emb(0), emb(0) crop; emb(h), emb(w) target].
    const int per = (cfg.unet.adm_in_channels - static_cast<int>(pooled.size())) / 6;
    c.y = pooled;
    const double sizes[6] = {static_cast<double>(height), static_cast<double>(width), 0, 0,
                             static_cast<double>(height), static_cast<double>(width)};
    std::vector<float> emb(per);
    for (double s : sizes) {
      TimestepEmbedding(s, per, emb.data());
      c.y.insert(c.y.end(), emb.begin(), emb.end());
    }
    c.y.resize(cfg.unet.adm_in_channels, 0.0f);
  }
  return c;
}

Result<Image> Generate(const DiffusionModel& model, const GenerateOptions& o, ThreadPool* pool,
                       const GenerateHooks& hooks, GenerateTimings* timings) {
  const DiffusionConfig& cfg = model.config();
  const int multiple = 8 * cfg.latent_multiple;
  if (o.width < multiple || o.height < multiple || o.width % multiple != 0 ||
      o.height % multiple != 0 || o.width > 4096 || o.height > 4096) {
    return InvalidArgument("image size ", o.width, "x", o.height, ": width and height must be ",
                           "multiples of ", multiple, " from ", multiple, " to 4096 for this ",
                           FamilyName(cfg.family), " model");
  }
  if (o.steps < 1 || o.steps > 1000) return InvalidArgument("steps ", o.steps, " outside 1..1000");
  if (o.vae_tile != 0 && (o.vae_tile < 8 || o.vae_tile > 512)) {
    return InvalidArgument("VAE tile ", o.vae_tile, " latent pixels outside 8..512");
  }
  if (!(o.cfg_scale >= 0 && o.cfg_scale <= 100)) {
    return InvalidArgument("cfg scale ", o.cfg_scale, " outside 0..100");
  }
  GenerateTimings t;
  const bool guided = o.cfg_scale != 1.0f && o.cfg_scale != 0.0f;
  const bool zero_uncond = cfg.family == Family::kSdxl && o.negative_prompt.empty();
  DiffusionStream* stream = model.stream();
  // Streaming: the whole generation's order of blocks, so reads run ahead of the compute across
  // the text encoders, every step and the decoder; what a stopped generation leaves is forgotten.
  struct AbandonOnExit {
    DiffusionStream* s;
    ~AbandonOnExit() {
      if (s != nullptr) s->Abandon();
    }
  } abandon{stream};
  if (stream != nullptr) {
    for (int pass = 0; pass < (guided ? 2 : 1); ++pass) {
      if (pass == 1 && zero_uncond) break;
      for (size_t i = 0; i < cfg.encoders.size(); ++i) {
        const TextEncoderSetup& e = cfg.encoders[i];
        stream->Announce(model.encoders()[i]->pass(e.skip, e.config.projection_dim > 0));
      }
    }
    for (int step = 0; step < o.steps; ++step) stream->Announce(model.unet().pass());
    const int tiles = o.vae_tile > 0 ? TileCount(o.height / 8, o.width / 8, o.vae_tile) : 1;
    // TAESD's weights are mapped, not streamed.
    if (model.tiny_decoder() == nullptr) {
      for (int tile = 0; tile < tiles; ++tile) stream->Announce(model.vae().pass());
    }
  }
  auto start = std::chrono::steady_clock::now();
  if (hooks.on_stage) hooks.on_stage("text");
  ASSIGN_OR_RETURN(Conditioning cond, EncodePrompt(model, o.prompt, false, o.width, o.height, pool,
                                                   &t.prompt_truncated, &t.prompt_tokens));
  Conditioning uncond;
  if (guided) {
    ASSIGN_OR_RETURN(uncond, EncodePrompt(model, o.negative_prompt, zero_uncond, o.width, o.height,
                                          pool, nullptr, nullptr));
  }
  // The token embeddings' rows were read through the mapping.
  model.checkpoint().DropPages();
  t.text_seconds = Since(start);

  start = std::chrono::steady_clock::now();
  if (hooks.on_stage) hooks.on_stage("sampling");
  const int lh = o.height / 8, lw = o.width / 8, zc = cfg.unet.in_channels;
  NoiseGenerator rng(o.rng, o.seed);
  // Noise in PyTorch's NCHW order, laid out as our (pixels, channels).
  auto noise = [&] {
    const std::vector<float> nchw = rng.Randn(static_cast<int64_t>(zc) * lh * lw);
    std::vector<float> nhwc(nchw.size());
    for (int c = 0; c < zc; ++c)
      for (int p = 0; p < lh * lw; ++p)
        nhwc[static_cast<size_t>(p) * zc + c] = nchw[static_cast<size_t>(c) * lh * lw + p];
    return nhwc;
  };
  const NoiseSchedule schedule;
  const std::vector<double> sigmas = ScheduleSigmas(schedule, o.schedule, o.steps);
  std::vector<float> x = noise();
  for (float& v : x) v = static_cast<float>(v * sigmas[0]);
  GuidedDenoiser d;
  d.unet = &model.unet();
  d.schedule = &schedule;
  d.prediction = cfg.prediction;
  d.cfg_scale = o.cfg_scale;
  d.cond = &cond;
  d.uncond = guided ? &uncond : nullptr;
  d.n_ctx = ClipTokenizer::kContextLength;
  d.h = lh;
  d.w = lw;
  d.pool = pool;
  d.cancel = hooks.cancel;
  d.blocks = stream;
  Denoiser denoise = [&](const std::vector<float>& xx, double s, std::vector<float>& out) {
    return d(xx, s, out);
  };
  Status sampled = Sample(o.sampler, sigmas, denoise, noise, x, hooks.on_step);
  RETURN_IF_ERROR(d.error);  // a read or checksum error stops sampling as a cancel would
  RETURN_IF_ERROR(sampled);
  if (d.evaluations != o.steps) {
    return Internal("the sampler evaluated the UNet ", d.evaluations, " times in ", o.steps,
                    " steps");
  }
  t.sampling_seconds = Since(start);
  t.steps = o.steps;
  t.unet_evaluations = d.evaluations;

  if (hooks.cancel != nullptr && hooks.cancel->load())
    return Cancelled("cancelled before decoding");
  start = std::chrono::steady_clock::now();
  if (hooks.on_stage) hooks.on_stage("decoding");
  std::vector<float> pixels(static_cast<size_t>(o.width) * o.height * 3);
  if (const TinyDecoder* taesd = model.tiny_decoder(); taesd != nullptr) {
    RETURN_IF_ERROR(o.vae_tile > 0
                        ? taesd->DecodeTiled(x.data(), lh, lw, o.vae_tile, pixels.data(), pool)
                        : taesd->Decode(x.data(), lh, lw, pixels.data(), pool));
  } else if (o.vae_tile > 0) {
    RETURN_IF_ERROR(
        model.vae().DecodeTiled(x.data(), lh, lw, o.vae_tile, pixels.data(), pool, stream));
  } else {
    RETURN_IF_ERROR(model.vae().Decode(x.data(), lh, lw, pixels.data(), pool, stream));
  }
  Image img;
  img.width = o.width;
  img.height = o.height;
  img.rgb.resize(pixels.size());
  for (size_t i = 0; i < pixels.size(); ++i) {
    const float v = std::clamp((pixels[i] + 1.0f) * 0.5f, 0.0f, 1.0f);
    img.rgb[i] = static_cast<uint8_t>(std::lround(v * 255.0f));
  }
  t.decode_seconds = Since(start);
  if (timings != nullptr) *timings = t;
  return img;
}

std::string ParametersText(const GenerateOptions& o, const std::string& model_name,
                           const std::string& version) {
  std::string s = o.prompt + "\n";
  if (!o.negative_prompt.empty()) s += "Negative prompt: " + o.negative_prompt + "\n";
  char cfg[32];
  std::snprintf(cfg, sizeof(cfg), "%g", o.cfg_scale);
  const char* sampler = o.sampler == SamplerKind::kEuler            ? "Euler"
                        : o.sampler == SamplerKind::kEulerAncestral ? "Euler a"
                        : o.sampler == SamplerKind::kDpmpp2m        ? "DPM++ 2M"
                                                                    : "LCM";
  s += StrCat("Steps: ", o.steps, ", Sampler: ", sampler,
              o.schedule == ScheduleKind::kKarras ? ", Schedule type: Karras" : "",
              ", CFG scale: ", cfg, ", Seed: ", o.seed, ", Size: ", o.width, "x", o.height,
              ", Model: ", model_name, ", RNG: ", o.rng == RngKind::kCuda ? "NV" : "CPU",
              ", Version: sluice ", version);
  return s;
}

}  // namespace sluice::diffusion
