// `sluice diffuse`: text to image with a Stable Diffusion checkpoint (diffusion/pipeline.h), flag
// names as stable-diffusion.cpp has them. A progress line per step on stderr (s/it); Ctrl-C stops
// at the next step and writes nothing; at the end one summary line per image and one of totals.
#include <gflags/gflags.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "bench/bench_memory.h"
#include "cli/command.h"
#include "cli/demo_model.h"
#include "cli/diffusion_setup.h"
#include "cli/interrupt.h"
#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "core/base/str_cat.h"
#include "core/threads/thread_pool.h"
#include "diffusion/pipeline.h"
#include "diffusion/png.h"
#include "io/output_file.h"

DEFINE_string(negative_prompt, "", "diffuse: what the image should not show (-n).");
DEFINE_int32(steps, 0, "diffuse: sampling steps. 0: the model's default (20; 1 for turbo models).");
DEFINE_string(sampler, "",
              "diffuse: euler, euler_a, dpm++2m or lcm. Empty: euler_a (euler for 1-step turbo).");
DEFINE_string(schedule, "",
              "diffuse: sigma schedule: discrete, karras or trailing. Empty: discrete (trailing "
              "for turbo models).");
DEFINE_double(cfg_scale, -1,
              "diffuse: classifier-free guidance scale; 1 (or 0) turns guidance off. -1: 7, or 1 "
              "for turbo models.");
DEFINE_string(rng, "cuda",
              "diffuse: initial noise generator: cuda (torch.randn on a GPU, the popular UIs' "
              "default) or cpu (torch.randn on the CPU).");
DEFINE_int32(width, 0, "diffuse: image width in pixels (-W). 0: the model's default (512).");
DEFINE_int32(height, 0, "diffuse: image height in pixels (-H). 0: the model's default (512).");
DEFINE_int32(batch_count, 1,
             "diffuse: images to make, with seeds seed, seed+1, ...; OUT.png, OUT_1.png, ...");
DEFINE_string(prediction, "",
              "diffuse: eps or v (768-v SD 2.x models). Empty: eps (what the checkpoint's "
              "family uses unless it is a v model).");
DEFINE_bool(vae_tiling, false,
            "diffuse: decode in overlapping tiles of 32 latent pixels (256 px) blended at the "
            "seams, as stable-diffusion.cpp's --vae-tiling: a fraction of the memory, not the same "
            "bits as a whole decode. With --ram, tiling turns on by itself when a whole decode "
            "would not fit (the log says so).");
DEFINE_string(
    taesd, "",
    "diffuse, bench, serve: decode with this TAESD file (madebyollin/taesd for SD 1.x/2.x, "
    "taesdxl for SDXL; diffusers or stable-diffusion.cpp naming, or taesd_decoder) "
    "instead of the model's VAE: ~10x less decoder compute and memory, slightly softer "
    "images.");
DECLARE_string(model);
DECLARE_string(ram);
DECLARE_string(prompt);
DECLARE_string(out);
DECLARE_int64(seed);
DECLARE_int32(threads);
DECLARE_bool(quiet);

namespace sluice::cli {
namespace {

using namespace sluice::diffusion;  // NOLINT: one command's file

// Turbo models (adversarially distilled: 1 step, no guidance) have the same tensors as their
// base; the file name or a synthetic model's preset tells.
std::string OutputName(const std::string& out, int i) {
  if (i == 0) return out;
  std::filesystem::path p(out);
  return (p.parent_path() / (p.stem().string() + "_" + std::to_string(i) + p.extension().string()))
      .string();
}

int RunDiffuse(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("diffuse takes no positional arguments (got '" + args[0] + "')");
  if (FLAGS_out.empty()) return Fail("diffuse needs -o OUT.png");
  if (Status s = CheckOutputPath(FLAGS_out); !s.ok()) return Fail(s.message());
  if (FLAGS_batch_count < 1 || FLAGS_batch_count > 1000) {
    return Fail("--batch-count " + std::to_string(FLAGS_batch_count) + ": expected 1..1000");
  }
  if (FLAGS_steps < 0 || FLAGS_steps > 1000) return Fail("--steps: expected 1..1000 (0: default)");
  if (FLAGS_width < 0 || FLAGS_height < 0) return Fail("-W/-H must be positive");
  GenerateOptions o;
  Result<RngKind> rng = ParseRngKind(FLAGS_rng);
  if (!rng.ok()) return Fail(rng.status().message());
  o.rng = *rng;
  std::optional<Prediction> prediction;
  if (FLAGS_prediction == "eps") {
    prediction = Prediction::kEps;
  } else if (FLAGS_prediction == "v") {
    prediction = Prediction::kV;
  } else if (!FLAGS_prediction.empty()) {
    return Fail("--prediction '" + FLAGS_prediction + "': expected eps or v");
  }

  std::string path = FLAGS_model;
  bool demo = false;
  if (path.empty()) {
    Result<DemoModel> d = EnsureDiffusionDemoModel();
    if (!d.ok()) return Fail(d.status().ToString());
    path = d->path;
    demo = true;
    LOG(INFO) << "no -m given: using the synthetic SD-Turbo-shaped model " << path
              << " (random weights: the image is noise by design; the compute is real)";
  }
  const auto load_start = std::chrono::steady_clock::now();
  ResetPeakRss();
  uint64_t ram = 0;
  if (!FLAGS_ram.empty()) {
    Result<uint64_t> r = ParseByteSize(FLAGS_ram);
    if (!r.ok()) return Fail("--ram: " + r.status().message());
    ram = *r;
  }
  // With --ram this first load only learns the configuration: it skips the SD 2.x prediction
  // test (a UNet pass over the mapped weights would page them all in); the streamed load runs it.
  Result<std::unique_ptr<DiffusionModel>> model = DiffusionModel::Load(
      path, DiffusionLoadOptions{.prediction = ram > 0 ? std::optional<Prediction>(
                                                             prediction.value_or(Prediction::kEps))
                                                       : prediction,
                                 .taesd_path = FLAGS_taesd});
  if (!model.ok()) return Fail(model.status().ToString());
  const DiffusionConfig cfg = (*model)->config();  // a copy: --ram loads the model again
  const bool synthetic = (*model)->checkpoint().MetadataValue("sluice.synthetic") == "true";
  if (synthetic && !demo) {
    LOG(INFO) << path << " is a synthetic model: its weights are random, the image will be noise";
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count();
  LOG(INFO) << FamilyName(cfg.family) << " model " << path << " loaded in "
            << StrCat(static_cast<int>(load_s * 1000)) << " ms ("
            << FormatBytes((*model)->checkpoint().file_bytes()) << " mapped, "
            << FormatBytes((*model)->owned_bytes()) << " converted; "
            << (cfg.prediction == Prediction::kV ? "v" : "eps") << "-prediction)";
  if (const TinyDecoder* taesd = (*model)->tiny_decoder(); taesd != nullptr) {
    LOG(INFO) << "decoding with TAESD " << taesd->path() << " ("
              << FormatBytes(taesd->weight_bytes()) << ") instead of the model's VAE";
  }

  o.prompt = FLAGS_prompt;
  o.negative_prompt = FLAGS_negative_prompt;
  if (Status st = ApplyModelDefaults(**model, path, DiffuseDefaultsFromFlags(), &o); !st.ok()) {
    return Fail(st.message());
  }
  uint64_t seed = FLAGS_seed >= 0
                      ? static_cast<uint64_t>(FLAGS_seed)
                      : ((uint64_t{std::random_device{}()} << 32) | std::random_device{}()) >> 1;
  if (FLAGS_seed < 0) {
    LOG(INFO) << "seed " << seed << " (--seed to repeat it)";
  }

  if (FLAGS_vae_tiling) o.vae_tile = 32;
  double device_GBps = 0;
  if (ram > 0) {
    Result<RamPlan> plan = LoadWithinRam(
        path, DiffusionLoadOptions{.prediction = prediction, .taesd_path = FLAGS_taesd}, ram, &o,
        &*model);
    if (!plan.ok()) return Fail(plan.status().ToString());
    if (!plan->tiling.empty()) {
      LOG(INFO) << plan->tiling;
    }
    LOG(INFO) << plan->text;
    // The device, now, for the summary's comparison (256 MiB of random 4 MiB reads).
    Result<double> dev =
        MeasureDeviceGBps((*model)->checkpoint().largest_file(),
                          (*model)->checkpoint().largest_file_bytes(), 256ull << 20, 16, seed);
    if (!dev.ok()) return Fail(dev.status().ToString());
    device_GBps = *dev;
    LOG(INFO) << "device: " << StrCat(static_cast<int>(device_GBps * 100) / 100.0)
              << " GB/s (random 4 MiB O_DIRECT reads of the model file, QD 16)";
  }

  const unsigned cores = std::thread::hardware_concurrency();
  auto pool =
      ThreadPool::Create(FLAGS_threads > 0 ? FLAGS_threads : static_cast<int>(cores ? cores : 1));
  if (!pool.ok()) return Fail(pool.status().message());
  InstallInterruptHandler(/*also_terminate=*/true);
  std::atomic<bool> cancel{false};
  ScopedCancelTarget target(&cancel);
  const std::string model_name = std::filesystem::path(ModelName(path)).stem().string();
  double total_s = 0;
  for (int i = 0; i < FLAGS_batch_count; ++i) {
    o.seed = seed + static_cast<uint64_t>(i);
    GenerateHooks hooks;
    hooks.cancel = &cancel;
    auto step_start = std::chrono::steady_clock::now();
    hooks.on_stage = [&](const char* stage) {
      if (!FLAGS_quiet)
        std::fprintf(stderr, "diffuse %d/%d: %s\n", i + 1, FLAGS_batch_count, stage);
      step_start = std::chrono::steady_clock::now();
    };
    hooks.on_step = [&](int done, int steps) {
      if (FLAGS_quiet) return;
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count();
      std::fprintf(stderr, "\r  step %d/%d  %.2f s/it", done, steps, s / done);
      if (done == steps) std::fprintf(stderr, "\n");
      std::fflush(stderr);
    };
    GenerateTimings t;
    const OrderedStreamCounters before =
        (*model)->stream() != nullptr ? (*model)->stream()->counters() : OrderedStreamCounters{};
    Result<Image> img = Generate(**model, o, pool->get(), hooks, &t);
    if (!img.ok()) {
      if (img.status().code() == StatusCode::kCancelled) {
        std::fprintf(stderr, "\nsluice: stopped; %s not written\n",
                     OutputName(FLAGS_out, i).c_str());
        return 130;
      }
      return Fail(img.status().ToString());
    }
    if (t.prompt_truncated) {
      LOG(WARNING) << "the prompt has " << t.prompt_tokens << " tokens; the text encoder takes 75: "
                   << "the rest was dropped";
    }
    const std::string out = OutputName(FLAGS_out, i);
    std::vector<std::pair<std::string, std::string>> text = {
        {"parameters", ParametersText(o, model_name, SLUICE_VERSION)}};
    if (Status s = WritePng(out, img->width, img->height, img->rgb, text); !s.ok())
      return Fail(s.ToString());
    const double s_total = t.text_seconds + t.sampling_seconds + t.decode_seconds;
    total_s += s_total;
    if (!FLAGS_quiet) {
      std::fprintf(
          stderr,
          "wrote %s: %dx%d, seed %llu, %d steps of %s: text %.2f s, sampling %.2f s (%.2f s/step, "
          "%d UNet passes), decode %.2f s; total %.2f s\n",
          out.c_str(), img->width, img->height, static_cast<unsigned long long>(o.seed), t.steps,
          SamplerKindName(o.sampler), t.text_seconds, t.sampling_seconds,
          t.sampling_seconds / t.steps, t.unet_evaluations, t.decode_seconds, s_total);
      if ((*model)->stream() != nullptr) {
        const OrderedStreamCounters c = (*model)->stream()->counters();
        const uint64_t bytes = c.bytes_read - before.bytes_read;
        const double busy = static_cast<double>(c.busy_ns - before.busy_ns) / 1e9;
        const double wait = static_cast<double>(c.io_wait_ns - before.io_wait_ns) / 1e9;
        const double gbps = busy > 0 ? bytes / busy / 1e9 : 0.0;
        std::fprintf(stderr,
                     "  streamed %s from storage (%.2f GB/s while reading, %.0f%% of the device's "
                     "%.2f; %.2f s of reads); compute waited %.2f s for reads (%.0f%% of the "
                     "image); %llu of %llu block uses were kept blocks\n",
                     FormatBytes(bytes).c_str(), gbps,
                     device_GBps > 0 ? 100.0 * gbps / device_GBps : 0.0, device_GBps, busy, wait,
                     s_total > 0 ? 100.0 * wait / s_total : 0.0,
                     static_cast<unsigned long long>(c.resident_uses - before.resident_uses),
                     static_cast<unsigned long long>(c.uses - before.uses));
      }
    }
  }
  if (!FLAGS_quiet) {
    if (ram > 0) {
      std::fprintf(stderr, "%s%d image(s) in %.2f s; peak RSS %s of --ram %s (%.0f%%)\n",
                   synthetic ? "synthetic model (random weights: noise images); " : "",
                   FLAGS_batch_count, total_s, FormatBytes(PeakRssBytes()).c_str(),
                   FormatBytes(ram).c_str(), 100.0 * PeakRssBytes() / ram);
    } else {
      std::fprintf(stderr, "%s%d image(s) in %.2f s; peak RSS %s (weights resident: %s mapped)\n",
                   synthetic ? "synthetic model (random weights: noise images); " : "",
                   FLAGS_batch_count, total_s, FormatBytes(PeakRssBytes()).c_str(),
                   FormatBytes((*model)->checkpoint().file_bytes()).c_str());
    }
  }
  return 0;
}

const CommandRegistration kDiffuse({
    .name = "diffuse",
    .summary = "text to image with Stable Diffusion 1.x, 2.x / SD-Turbo or SDXL(-Turbo)",
    .usage = "sluice diffuse [-m MODEL] -p PROMPT [-n NEGATIVE] [--steps N] [--sampler NAME]\n"
             "               [--cfg-scale S] [--seed N] [--rng cuda|cpu] [-W 512 -H 512]\n"
             "               [--batch-count N] [--ram 512M] [--vae-tiling] [--taesd TAESD]\n"
             "               -o out.png",
    .description =
        "Makes an image from a prompt with a Stable Diffusion checkpoint: a single file\n"
        "(safetensors as published, or GGUF as stable-diffusion.cpp converts them; F32, F16,\n"
        "BF16 or quantized) or a diffusers folder (unet/, vae/, text_encoder/[, text_encoder_2/]\n"
        "safetensors; tokenizer/merges.txt). The family (SD 1.x, SD 2.x / SD-Turbo, SDXL /\n"
        "SDXL-Turbo) is detected from the tensors. Prompt emphasis as the popular UIs parse it: "
        "(word:1.3),\n"
        "(word), [word]. A prompt longer than 75 tokens is truncated with a warning.\n"
        "Defaults follow the model: 20 steps of euler_a at CFG 7 on the discrete schedule; for\n"
        "models whose file name says turbo, 1 step of euler, no guidance, trailing schedule.\n"
        "The same seed with --rng cuda gives the initial noise of a GPU PyTorch run (what\n"
        "AUTOMATIC1111 and ComfyUI use); --rng cpu that of torch.randn on the CPU.\n"
        "The PNG carries the parameters in a 'parameters' text chunk as AUTOMATIC1111 writes\n"
        "it. Ctrl-C stops at the next step and writes nothing. With no -m a synthetic\n"
        "SD-Turbo-shaped model is written to demo/ (random weights: the image is noise; ~2.6 GB).\n"
        "Without --ram the weights are mapped (resident once read). With --ram the weights\n"
        "stream from storage within the budget: the plan keeps the largest UNet blocks, reads\n"
        "the rest ahead of the compute along the generation's fixed order, and prints what it\n"
        "holds; a budget below the minimum is refused naming it. Images are the same bits\n"
        "either way. A whole VAE decode at 512x512 needs ~0.65 GB of activations: under --ram\n"
        "it decodes in tiles when that would not fit (as --vae-tiling does), which changes the\n"
        "image slightly near the seams. --taesd FILE decodes with the tiny autoencoder instead\n"
        "(a few MB of weights, ~10x less compute; the refusal of a too-small --ram says when it\n"
        "would fit).",
    .flags = {"model", "prompt", "negative_prompt", "steps", "sampler", "schedule", "cfg_scale",
              "seed", "rng", "width", "height", "batch_count", "prediction", "ram", "vae_tiling",
              "taesd", "threads", "out"},
    .short_flags = {{"-n", "--negative_prompt"}, {"-W", "--width"}, {"-H", "--height"}},
    .run = RunDiffuse,
});

}  // namespace
}  // namespace sluice::cli
