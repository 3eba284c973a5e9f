// `sluice convert IN.gguf OUT.sluice`: repacks a GGUF (or any shard of a split GGUF) into a sluice
// archive with every routed expert in one contiguous, checksummed block (io/gguf_convert.h).
// Shows a progress bar; refuses up front when the disk lacks space; Ctrl-C stops it and deletes
// the partial file, so OUT either is complete or does not exist.
#include <gflags/gflags.h>

#include <atomic>
#include <cstdio>

#include "cli/command.h"
#include "cli/diffusion_setup.h"
#include "cli/interrupt.h"
#include "cli/model_check.h"
#include "core/base/byte_size.h"
#include "core/base/progress.h"
#include "diffusion/archive_convert.h"
#include "io/gguf_convert.h"
#include "io/model_open.h"

DECLARE_string(quant);

namespace sluice::cli {
namespace {

// A Stable Diffusion checkpoint into a diffusion archive (diffusion/archive_convert.h).
int ConvertDiffusion(const std::string& in, const std::string& out) {
  diffusion::ArchiveConvertOptions options;
  if (!FLAGS_quant.empty()) {
    std::optional<GgmlType> t = ParseTypeName(FLAGS_quant);
    if (!t.has_value()) return Fail("--quant '" + FLAGS_quant + "': not a GGML type name");
    options.type = *t;
  }
  std::atomic<bool> cancel{false};
  InstallInterruptHandler(/*also_terminate=*/true);
  ScopedCancelTarget cancel_target(&cancel);
  options.cancel = &cancel;
  std::unique_ptr<Progress> bar;
  options.on_progress = [&bar](uint64_t done, uint64_t total) {
    if (!bar) bar = std::make_unique<Progress>("convert", total);
    bar->Update(done);
  };
  Result<diffusion::ArchiveConvertStats> stats =
      diffusion::ConvertDiffusionCheckpoint(in, out, options);
  if (bar) bar->Finish();
  if (!stats.ok()) {
    if (stats.status().code() == StatusCode::kCancelled) {
      std::fprintf(stderr, "sluice: convert cancelled; %s was not written\n", out.c_str());
      return 130;
    }
    return Fail(stats.status().ToString());
  }
  std::printf(
      "%s: diffusion archive, %llu tensors (%llu in %s, the rest F16/F32), %llu streaming "
      "blocks with checksums, %llu dropped (not numbers); %s from %s\n",
      out.c_str(), static_cast<unsigned long long>(stats->tensors),
      static_cast<unsigned long long>(stats->quantized), TypeName(options.type),
      static_cast<unsigned long long>(stats->blocks),
      static_cast<unsigned long long>(stats->dropped), FormatBytes(stats->file_bytes).c_str(),
      FormatBytes(stats->source_bytes).c_str());
  return 0;
}

int RunConvert(const std::vector<std::string>& args) {
  if (args.size() != 2) return Fail("usage: sluice convert IN OUT");
  const std::string& in = args[0];
  const std::string& out = args[1];
  if (IsDiffusionCheckpoint(in)) return ConvertDiffusion(in, out);
  Result<ModelFormat> format = DetectModelFormat(in);
  if (!format.ok()) return Fail(format.status().ToString());
  if (*format != ModelFormat::kGguf) {
    return Fail(StrCat(in, " is already a sluice archive; convert takes a GGUF"));
  }
  if (Status st = CheckModelStructure(in); !st.ok()) return Fail(st.ToString());

  // Ctrl-C sets the flag; the conversion checks it between experts and cleans up.
  std::atomic<bool> cancel{false};
  InstallInterruptHandler(/*also_terminate=*/true);
  ScopedCancelTarget cancel_target(&cancel);

  std::unique_ptr<Progress> bar;
  ConvertOptions options;
  options.cancel = &cancel;
  options.on_progress = [&bar](uint64_t done, uint64_t total) {
    if (!bar) bar = std::make_unique<Progress>("convert", total);
    bar->Update(done);
  };
  Result<ConvertStats> stats = ConvertGgufToArchive(in, out, options);
  if (bar) bar->Finish();
  if (!stats.ok()) {
    if (stats.status().code() == StatusCode::kCancelled) {
      std::fprintf(stderr, "sluice: convert cancelled; %s was not written\n", out.c_str());
      return 130;  // the shell's convention for a process stopped by SIGINT
    }
    return Fail(stats.status().ToString());
  }
  std::printf("%s: %llu dense tensors, %llu experts in %llu layers, %s\n", out.c_str(),
              static_cast<unsigned long long>(stats->dense_tensors),
              static_cast<unsigned long long>(stats->experts),
              static_cast<unsigned long long>(stats->expert_layers),
              FormatBytes(stats->file_bytes).c_str());
  return 0;
}

const CommandRegistration kConvert({
    .name = "convert",
    .summary = "repack a GGUF into a sluice archive, or an SD checkpoint into a diffusion archive",
    .usage = "sluice convert IN.gguf OUT.sluice\n"
             "       sluice convert SD_CHECKPOINT OUT.gguf [--quant q8_0|q4_K|f16]",
    .description =
        "Copies the metadata and every tensor unchanged (no re-quantization) and lays each routed\n"
        "expert out as one contiguous 4 KiB-aligned block gate|up|down with an xxh3 checksum, so\n"
        "the engine reads an expert with a single O_DIRECT read and verifies it. IN may be any\n"
        "shard of a split GGUF (NAME-00001-of-0000N.gguf). Free space is checked before writing;\n"
        "OUT is written under a temporary name and renamed only when complete, and Ctrl-C or an\n"
        "error removes the partial file. An existing OUT is replaced only on success.\n\n"
        "A Stable Diffusion checkpoint (safetensors or GGUF, what `sluice diffuse` opens) becomes "
        "a\n"
        "diffusion archive: a GGUF with the checkpoint's tensor names (stable-diffusion.cpp reads\n"
        "it too), tensors in the order the networks use them, every tensor 4 KiB aligned so each\n"
        "streaming block is one O_DIRECT read, each block's xxh3 checked after every read, Linear\n"
        "weights in --quant where their rows allow (convolutions stay F16, vectors F32).",
    .flags = {"quant"},
    .run = RunConvert,
});

}  // namespace
}  // namespace sluice::cli
