#include "cli/diffusion_setup.h"

#include <gflags/gflags.h>
#include <malloc.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <random>

#include "bench/io_bench.h"
#include "core/base/byte_size.h"
#include "core/base/str_cat.h"

DECLARE_int32(steps);
DECLARE_double(cfg_scale);
DECLARE_string(sampler);
DECLARE_string(schedule);
DECLARE_int32(width);
DECLARE_int32(height);

namespace sluice::cli {
namespace {

// By the file name, or a synthetic model's preset.
bool IsTurbo(const diffusion::DiffusionModel& m, const std::string& path) {
  std::string name = ModelName(path) + m.checkpoint().MetadataValue("sluice.synth.preset");
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name.find("turbo") != std::string::npos;
}

}  // namespace

std::string ModelName(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return std::filesystem::path(p).filename().string();
}

bool IsDiffusionCheckpoint(const std::string& path) {
  auto ckpt = diffusion::Checkpoint::Open(path);
  return ckpt.ok() && diffusion::DetectDiffusionConfig(**ckpt).ok();
}

Result<double> MeasureDeviceGBps(const std::string& path, uint64_t file_bytes, uint64_t total_bytes,
                                 int queue_depth, uint64_t seed) {
  constexpr uint64_t kRead = 4ull << 20;
  if (file_bytes < 2 * kRead) return 0.0;
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> offsets(256);
  for (uint64_t& o : offsets) o = rng() % ((file_bytes - kRead) / 4096) * 4096;
  ASSIGN_OR_RETURN(RawReadResult r, MeasureRawReads({.path = path,
                                                     .offsets = offsets,
                                                     .read_bytes = kRead,
                                                     .queue_depth = queue_depth,
                                                     .total_bytes = total_bytes}));
  return r.GBps;
}

void ReturnFreedMemory() {
  mallopt(M_MMAP_THRESHOLD, 1 << 20);  // fixed: no dynamic raise
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
}

DiffuseDefaults DiffuseDefaultsFromFlags() {
  return {.steps = FLAGS_steps,
          .cfg_scale = FLAGS_cfg_scale,
          .sampler = FLAGS_sampler,
          .schedule = FLAGS_schedule,
          .width = FLAGS_width,
          .height = FLAGS_height};
}

Status ApplyModelDefaults(const diffusion::DiffusionModel& model, const std::string& path,
                          const DiffuseDefaults& f, diffusion::GenerateOptions* o) {
  using namespace diffusion;
  const bool turbo = IsTurbo(model, path);
  o->steps = f.steps > 0 ? f.steps : (turbo ? 1 : 20);
  o->cfg_scale = f.cfg_scale >= 0 ? static_cast<float>(f.cfg_scale) : (turbo ? 1.0f : 7.0f);
  ASSIGN_OR_RETURN(
      o->sampler, ParseSamplerKind(!f.sampler.empty() ? f.sampler : (turbo ? "euler" : "euler_a")));
  ASSIGN_OR_RETURN(
      o->schedule,
      ParseScheduleKind(!f.schedule.empty() ? f.schedule : (turbo ? "trailing" : "discrete")));
  const int size = model.config().family == Family::kSdxl && !turbo ? 1024 : 512;
  o->width = f.width > 0 ? f.width : size;
  o->height = f.height > 0 ? f.height : size;
  return Status::Ok();
}

Result<RamPlan> LoadWithinRam(const std::string& path, const diffusion::DiffusionLoadOptions& load,
                              uint64_t ram, diffusion::GenerateOptions* o,
                              std::unique_ptr<diffusion::DiffusionModel>* model) {
  using namespace diffusion;
  ReturnFreedMemory();
  const DiffusionConfig cfg = (*model)->config();
  const bool guided = o->cfg_scale != 1.0f && o->cfg_scale != 0.0f;
  RamPlan p;
  p.ram = ram;
  const TinyDecoder* taesd = (*model)->tiny_decoder();
  // TAESD's weights are mapped whole (a few MB): counted with the vectors.
  p.vectors = (*model)->owned_bytes() + (taesd != nullptr ? taesd->weight_bytes() : 0);
  p.program = kProgramBytes;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<DiffusionModel> all,
                     DiffusionModel::Load(path, DiffusionLoadOptions{.prediction = Prediction::kEps,
                                                                     .weight_budget = 1ull << 50}));
    p.whole = all->stream()->plan();
  }
  const int lh = o->height / 8, lw = o->width / 8;
  const char* decoder = taesd != nullptr ? "TAESD" : "VAE";
  auto fixed_for = [&](int tile) {
    return ActivationBytes(cfg, o->width, o->height, guided, tile, taesd != nullptr) + p.vectors +
           p.program;
  };
  if (o->vae_tile == 0) {
    // The cheapest decode that leaves the weights a quarter above their minimum: whole, or tiles
    // (cost: latent pixels decoded, overlaps counted); streaming a bit more per step costs little
    // (the reads hide under the compute), a tiled decode up to 2.25x the whole one.
    int best = -1;
    uint64_t best_cost = 0;
    for (int t : {0, 56, 48, 40, 32, 24, 16}) {
      if (t > 0 && t >= lh && t >= lw) continue;
      if (fixed_for(t) + p.whole.min_budget / 4 * 5 > ram) continue;
      const uint64_t cost =
          t == 0 ? static_cast<uint64_t>(lh) * lw
                 : static_cast<uint64_t>(TileCount(lh, lw, t)) * std::min(t, lh) * std::min(t, lw);
      if (best < 0 || cost < best_cost) {
        best = t;
        best_cost = cost;
      }
    }
    o->vae_tile = best >= 0 ? best : 16;
    if (o->vae_tile > 0) {
      p.tiling = StrCat(
          "the ", decoder, " decodes in ", TileCount(lh, lw, o->vae_tile), " overlapping tiles of ",
          o->vae_tile * 8, " px to fit --ram (the seams are blended; a whole decode would need ",
          FormatBytes(ActivationBytes(cfg, o->width, o->height, guided, 0, taesd != nullptr)),
          " of activations)");
    }
  }
  p.activations = ActivationBytes(cfg, o->width, o->height, guided, o->vae_tile, taesd != nullptr);
  const uint64_t fixed = fixed_for(o->vae_tile);
  if (ram < fixed + p.whole.min_budget) {
    // What TAESD would need instead (its activations in 16-latent tiles and ~10 MB of weights).
    const uint64_t taesd_min = ActivationBytes(cfg, o->width, o->height, guided, 16, true) +
                               p.vectors + (10ull << 20) + p.program + p.whole.min_budget;
    const std::string hint =
        taesd == nullptr && taesd_min < ram
            ? StrCat("; the tiny decoder fits: --taesd FILE (madebyollin/taesd",
                     cfg.family == Family::kSdxl ? "xl" : "", ") needs about ",
                     FormatBytes(taesd_min))
            : std::string();
    return ResourceExhausted(
        "--ram ", FormatBytes(ram), " is below the minimum of ",
        FormatBytes(fixed + p.whole.min_budget), " for ", o->width, "x", o->height,
        guided ? " with guidance" : "", ": activations ", FormatBytes(p.activations),
        o->vae_tile > 0 ? StrCat(" (", decoder, " in tiles of ", o->vae_tile * 8, " px)")
                        : std::string(),
        ", converted vectors ", FormatBytes(p.vectors), ", program ", FormatBytes(p.program),
        ", weights at least ", FormatBytes(p.whole.min_budget),
        " (three times the largest streamed block, beside the UNet blocks kept)", hint);
  }
  p.weights = ram - fixed;
  model->reset();  // before the streamed load: never both at once
  DiffusionLoadOptions streamed = load;
  streamed.weight_budget = p.weights;
  streamed.io = {.kind = IoBackendKind::kAuto};
  ASSIGN_OR_RETURN(*model, DiffusionModel::Load(path, streamed));
  const StreamPlan& plan = (*model)->stream()->plan();
  p.text = StrCat("memory plan for --ram ", FormatBytes(ram), ": weights ", FormatBytes(p.weights),
                  " (UNet blocks kept ", FormatBytes(plan.resident_bytes), " of ",
                  FormatBytes(p.whole.total_bytes), " in all; streaming ring ",
                  FormatBytes(plan.ring_bytes), "; ", FormatBytes(plan.streamed_bytes_per_pass),
                  " read per step), activations ", FormatBytes(p.activations),
                  taesd != nullptr ? ", converted vectors and TAESD " : ", converted vectors ",
                  FormatBytes(p.vectors), ", program ", FormatBytes(p.program), "; reads over ",
                  (*model)->stream()->io_description());
  return p;
}

}  // namespace sluice::cli
