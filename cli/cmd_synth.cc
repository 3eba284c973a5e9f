// `sluice synth`: write a synthetic model (real expert shapes, random weights) as an archive or a
// GGUF. The work is in synth/synth.h; this file turns flags into SynthOptions and shows progress.
#include <gflags/gflags.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "cli/interrupt.h"
#include "core/base/byte_size.h"
#include "core/base/progress.h"
#include "diffusion/archive_convert.h"
#include "synth/sd_synth.h"
#include "synth/synth.h"
#include "synth/synth_presets.h"

DEFINE_string(preset, "",
              "synth: the model shape: qwen3.5-397b-a17b, qwen3-235b-a22b, qwen3-30b-a3b, "
              "mixtral-8x22b, deepseek-v3, demo.");
DEFINE_int32(layers, 0, "synth: keep only the first N layers (0: all of the preset's).");
DEFINE_int32(experts, 0,
             "synth, and bench --preset: routed experts per layer of the synthetic model (0: all "
             "of the preset's). run, chat, logits, bench -m: experts used per token (0: the "
             "model's).");
DEFINE_string(quant, "",
              "synth: quantized type of the routed experts (q4_K, q8_0, q4_0, q6_K, iq4_xs, ...; "
              "the grid types iq1_s, iq1_m, iq2_xxs, iq2_xs, iq2_s, iq3_xxs, iq3_s of low-bit "
              "files as random valid blocks). Empty: the preset's (q4_K). convert (a Stable "
              "Diffusion checkpoint): the type of its "
              "Linear weights (f16, q8_0, q4_K, ...; convolutions stay F16). Empty: f16.");
DEFINE_string(quant_down, "",
              "synth: the type of the routed experts' down matrices when it differs from --quant, "
              "as low-bit \"UD\" files mix them (e.g. --quant iq1_s --quant-down iq2_xxs).");
DEFINE_string(dense_quant, "",
              "synth: the type of the dense tensors (attention, shared expert, embeddings, "
              "output; tensors whose rows do not fit it stay q8_0). Empty: q8_0.");
DEFINE_string(format, "archive",
              "synth: output format, archive (.sluice) or gguf; diffusion presets: safetensors "
              "(default) or gguf (stable-diffusion.cpp's names, as `sluice convert` writes).");
DEFINE_bool(tiny, false,
            "synth, diffusion presets: every block and tensor name of the family at tiny widths "
            "and depths (tests; a few MB).");
DECLARE_string(out);
DECLARE_int64(seed);
DECLARE_int32(threads);
DECLARE_bool(quiet);

namespace sluice::cli {
namespace {

// A diffusion preset (sd_synth.h): a single-file safetensors checkpoint.
int RunSdSynth(const std::string& out) {
  const bool gguf = FLAGS_format == "gguf";
  if (FLAGS_format != "archive" && FLAGS_format != "safetensors" && !gguf) {
    return Fail("--format " + FLAGS_format +
                ": diffusion presets are written as safetensors (the default) or gguf");
  }
  if (FLAGS_layers != 0 || FLAGS_experts != 0 || !FLAGS_quant.empty() ||
      !FLAGS_quant_down.empty() || !FLAGS_dense_quant.empty()) {
    return Fail(
        "--layers, --experts and --quant* apply to MoE presets; diffusion presets take --tiny");
  }
  const bool taesd = FLAGS_preset == "taesd";
  if (taesd && FLAGS_tiny) return Fail("--tiny applies to sd15, sd-turbo and sdxl-turbo");
  if (taesd && gguf) return Fail("--preset taesd is written as safetensors (drop --format gguf)");
  SdPreset taesd_preset;
  taesd_preset.name = "taesd";
  taesd_preset.description = "TAESD, the tiny autoencoder (diffusers naming)";
  Result<SdPreset> preset = taesd ? taesd_preset : FindSdPreset(FLAGS_preset, FLAGS_tiny);
  if (!preset.ok()) return Fail(preset.status().message());
  const std::string final_path =
      !out.empty() ? out : preset->name + (gguf ? ".gguf" : ".safetensors");
  // GGUF: the safetensors file first, beside the output, then `sluice convert`'s diffusion
  // archive of it (stable-diffusion.cpp's names, F16, 4 KiB-aligned checksummed blocks).
  const std::string path = gguf ? final_path + ".synth.safetensors" : final_path;
  struct RemoveOnExit {
    std::string path;
    ~RemoveOnExit() {
      if (!path.empty()) std::remove(path.c_str());
    }
  } temporary{gguf ? path : std::string()};
  if (gguf) {
    Result<std::vector<SdTensorSpec>> specs = SdTensorSpecs(preset->config);
    if (!specs.ok()) return Fail(specs.status().ToString());
    uint64_t bytes = 0;
    for (const SdTensorSpec& t : *specs) {
      uint64_t n = 2;
      for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
      bytes += n;
    }
    struct statvfs fs;
    const std::string dir = std::filesystem::absolute(final_path).parent_path().string();
    if (statvfs(dir.c_str(), &fs) == 0 &&
        static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize < bytes * 2 + (64ull << 20)) {
      return Fail("not enough free space in " + dir + " for " + final_path + ": about " +
                  FormatBytes(bytes * 2) + " needed (the safetensors file, then the GGUF), " +
                  FormatBytes(static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize) + " free");
    }
  }
  if (!FLAGS_quiet) {
    std::fprintf(stderr,
                 "sluice synth: %s\n  %s\n  writing %s (%s, F16; weights are random: "
                 "images are noise)\n",
                 preset->name.c_str(), preset->description.c_str(), final_path.c_str(),
                 gguf ? "GGUF as stable-diffusion.cpp reads it" : "safetensors");
  }
  std::atomic<bool> cancel{false};
  InstallInterruptHandler(/*also_terminate=*/true);
  ScopedCancelTarget cancel_target(&cancel);
  SdSynthOptions o;
  o.seed = FLAGS_seed < 0 ? 1 : static_cast<uint64_t>(FLAGS_seed);
  o.cancel = &cancel;
  std::unique_ptr<Progress> progress;
  o.progress = [&](uint64_t done, uint64_t total) {
    if (progress == nullptr) progress = std::make_unique<Progress>("synth", total);
    progress->Update(done);
  };
  Result<uint64_t> bytes =
      taesd ? WriteTaesdCheckpoint(path, o) : WriteSdCheckpoint(path, *preset, o);
  if (progress != nullptr) progress->Finish();
  if (!bytes.ok()) return Fail(bytes.status().ToString());
  if (gguf) {
    progress.reset();
    diffusion::ArchiveConvertOptions c;
    c.cancel = &cancel;
    c.on_progress = [&](uint64_t done, uint64_t total) {
      if (progress == nullptr) progress = std::make_unique<Progress>("gguf", total);
      progress->Update(done);
    };
    Result<diffusion::ArchiveConvertStats> st =
        diffusion::ConvertDiffusionCheckpoint(path, final_path, c);
    if (progress != nullptr) progress->Finish();
    if (!st.ok()) return Fail(st.status().ToString());
    bytes = st->file_bytes;
  }
  if (!FLAGS_quiet)
    std::fprintf(stderr, "wrote %s: %s\n", final_path.c_str(), FormatBytes(*bytes).c_str());
  return 0;
}

int RunSynth(const std::vector<std::string>& args) {
  if (FLAGS_preset.empty()) return Fail("synth needs --preset (see `sluice synth --help`)");
  if (args.size() > 1) return Fail("synth takes at most one positional argument (the output)");
  for (const std::string& name : SdPresetNames()) {
    if (FLAGS_preset == name) return RunSdSynth(!args.empty() ? args[0] : FLAGS_out);
  }
  if (FLAGS_preset == "taesd") return RunSdSynth(!args.empty() ? args[0] : FLAGS_out);
  if (FLAGS_tiny)
    return Fail("--tiny applies to the diffusion presets (sd15, sd-turbo, sdxl-turbo)");
  Result<SynthShape> preset = FindSynthPreset(FLAGS_preset);
  if (!preset.ok()) return Fail(preset.status().message());
  SynthScale scale;
  scale.layers = FLAGS_layers;
  scale.experts = FLAGS_experts;
  if (!FLAGS_quant.empty()) {
    std::optional<GgmlType> type = ParseTypeName(FLAGS_quant);
    if (!type) return Fail("--quant '" + FLAGS_quant + "': unknown type");
    scale.quant = *type;
  }
  for (auto [flag, name, out] :
       {std::tuple{&FLAGS_quant_down, "--quant-down", &scale.quant_down},
        std::tuple{&FLAGS_dense_quant, "--dense-quant", &scale.dense_quant}}) {
    if (flag->empty()) continue;
    std::optional<GgmlType> type = ParseTypeName(*flag);
    if (!type) return Fail(std::string(name) + " '" + *flag + "': unknown type");
    *out = *type;
  }
  Result<SynthShape> shape = ScaleSynthShape(*preset, scale);
  if (!shape.ok()) return Fail(shape.status().message());
  Result<SynthFormat> format = ParseSynthFormat(FLAGS_format);
  if (!format.ok()) return Fail(format.status().message());

  std::string path = !args.empty() ? args[0] : FLAGS_out;
  if (path.empty()) {
    path = shape->preset + (*format == SynthFormat::kGguf ? ".gguf" : ".sluice");
  }
  SynthOptions options;
  options.shape = *shape;
  options.format = *format;
  options.seed = FLAGS_seed < 0 ? 1 : static_cast<uint64_t>(FLAGS_seed);
  unsigned cores = std::thread::hardware_concurrency();
  options.threads = FLAGS_threads > 0 ? FLAGS_threads : static_cast<int>(cores ? cores : 2);

  if (!FLAGS_quiet) {
    std::fprintf(stderr,
                 "sluice synth: %s\n  %s\n  writing %s (%s, about %s; weights are random)\n",
                 shape->ToString().c_str(), shape->description.c_str(), path.c_str(),
                 *format == SynthFormat::kGguf ? "GGUF" : "archive",
                 FormatBytes(SynthFileBytes(*shape)).c_str());
  }
  std::atomic<bool> cancel{false};
  InstallInterruptHandler(/*also_terminate=*/true);
  ScopedCancelTarget cancel_target(&cancel);
  options.cancel = &cancel;
  Progress progress("synth", SynthFileBytes(*shape));
  options.progress = [&](uint64_t done, uint64_t) { progress.Update(done); };
  Result<SynthResult> result = WriteSynthModel(path, options);
  progress.Finish();
  if (!result.ok()) return Fail(result.status().ToString());
  if (FLAGS_quiet) return 0;
  std::fprintf(stderr, "wrote %s: %s (experts %s, dense %s) in %.1f s, %.2f GB/s\n",
               result->path.c_str(), FormatBytes(result->file_bytes).c_str(),
               FormatBytes(result->expert_bytes).c_str(), FormatBytes(result->dense_bytes).c_str(),
               result->seconds, result->file_bytes / 1e9 / result->seconds);
  return 0;
}

const CommandRegistration kSynth({
    .name = "synth",
    .summary = "write a synthetic model: a real model's expert shapes, random weights",
    .usage = "sluice synth --preset NAME [--layers N] [--experts N] [--quant TYPE]\n"
             "                    [--quant-down TYPE] [--dense-quant TYPE]\n"
             "                    [--format archive|gguf] [--seed N] [--out PATH | PATH]\n"
             "       sluice synth --preset sd15|sd-turbo|sdxl-turbo [--tiny] [--format gguf]\n"
             "                    [--out PATH | PATH]\n"
             "       sluice synth --preset taesd [--out PATH | PATH]",
    .description =
        "Writes a model with the exact routed-expert shapes and quantized format of a real MoE\n"
        "model and random, numerically sane weights, so that streaming can be measured on the\n"
        "real I/O pattern without downloading the model. --layers and --experts scale the\n"
        "preset down to the disk at hand while keeping each expert's real byte size (keeping all\n"
        "experts and cutting layers keeps the per-layer cache pressure of the full model). Free\n"
        "space is checked first; the error says which --layers would fit.\n"
        "The metadata marks the model as synthetic: chat, run and bench use synthetic routing\n"
        "(realistic reuse and skew, docs/routing-trace.md) unless --routing says otherwise.\n"
        "--format gguf writes the same bytes as a standard GGUF (qwen3moe, qwen2moe or llama)\n"
        "for other engines. --seed: weight seed (-1, the default, means 1). Output: PATH, --out,\n"
        "or PRESET.sluice / PRESET.gguf in the current directory.\n"
        "Presets: qwen3.5-397b-a17b (60 layers, 512 experts 4096x1024, 10 routed + shared),\n"
        "qwen3-235b-a22b (94, 128 x 4096x1536, 8), qwen3-30b-a3b (48, 128 x 2048x768, 8),\n"
        "mixtral-8x22b (56, 8 x 6144x16384, 2), deepseek-v3 (61, 256 x 7168x2048, 8 + shared),\n"
        "demo (8, 64 x 1024x512, 4; ~0.5 GB).\n"
        "Diffusion presets write a single-file safetensors checkpoint (F16) with every tensor\n"
        "name and shape of the family, which `sluice diffuse` and other engines load: sd15\n"
        "(Stable Diffusion 1.5, ~2.1 GB), sd-turbo (SD 2.1's architecture, ~2.6 GB), sdxl-turbo\n"
        "(SDXL's, ~6.9 GB); --tiny keeps every block and name at tiny widths (a few MB); taesd\n"
        "(the tiny decoder `sluice diffuse --taesd` takes, as diffusers and stable-diffusion.cpp\n"
        "name it, ~4.7 MB). --format gguf writes the diffusion archive `sluice convert` makes\n"
        "(stable-diffusion.cpp's names, F16; the safetensors file is written first beside it and\n"
        "removed). Output: PATH, --out, or PRESET.safetensors / PRESET.gguf.",
    .flags = {"preset", "layers", "experts", "quant", "quant_down", "dense_quant", "format", "tiny",
              "seed", "out", "threads"},
    .run = RunSynth,
});

}  // namespace
}  // namespace sluice::cli
