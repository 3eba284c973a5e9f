// `sluice convert IN.gguf OUT.sluice`: repacks a GGUF (or any shard of a split GGUF) into a sluice
// archive with every routed expert in one contiguous, checksummed block (io/gguf_convert.h).
// Shows a progress bar; refuses up front when the disk lacks space; Ctrl-C stops it and deletes
// the partial file, so OUT either is complete or does not exist.
#include <atomic>
#include <cstdio>

#include "cli/command.h"
#include "cli/interrupt.h"
#include "cli/model_check.h"
#include "core/base/byte_size.h"
#include "core/base/progress.h"
#include "io/gguf_convert.h"
#include "io/model_open.h"

namespace sluice::cli {
namespace {

int RunConvert(const std::vector<std::string>& args) {
  if (args.size() != 2) return Fail("usage: sluice convert IN.gguf OUT.sluice");
  const std::string& in = args[0];
  const std::string& out = args[1];
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
    .summary = "repack a GGUF into a sluice archive (one checksummed block per expert)",
    .usage = "sluice convert IN.gguf OUT.sluice",
    .description =
        "Copies the metadata and every tensor unchanged (no re-quantization) and lays each routed\n"
        "expert out as one contiguous 4 KiB-aligned block gate|up|down with an xxh3 checksum, so\n"
        "the engine reads an expert with a single O_DIRECT read and verifies it. IN may be any\n"
        "shard of a split GGUF (NAME-00001-of-0000N.gguf). Free space is checked before writing;\n"
        "OUT is written under a temporary name and renamed only when complete, and Ctrl-C or an\n"
        "error removes the partial file. An existing OUT is replaced only on success.",
    .flags = {},
    .run = RunConvert,
});

}  // namespace
}  // namespace sluice::cli
