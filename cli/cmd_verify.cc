// `sluice verify FILE`: checks every checksum of a sluice archive — the header/directory xxh3 (on
// open), every dense tensor's and every expert block's — with a progress bar, lists each failure
// (file, tensor or expert, offset, expected and found hash) and exits non-zero if any failed.
// A GGUF has no checksums: verify says so and only reports whether it opens.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/model_check.h"
#include "core/base/byte_size.h"
#include "core/base/progress.h"
#include "io/archive_reader.h"
#include "io/model_open.h"

namespace sluice::cli {
namespace {

// Failures are listed in full up to this many, then counted.
constexpr size_t kMaxListed = 50;

int RunVerify(const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail("verify takes one FILE (see `sluice verify --help`)");
  const std::string& path = args[0];
  Result<ModelFormat> format = DetectModelFormat(path);
  if (!format.ok()) return Fail(format.status().ToString());
  if (Status st = CheckModelStructure(path); !st.ok()) return Fail(st.ToString());
  if (*format == ModelFormat::kGguf) {
    std::printf(
        "%s: a GGUF; its structure is valid, but GGUF carries no checksums to verify "
        "(convert it to an archive for per-expert checksums)\n",
        path.c_str());
    return 0;
  }
  Result<std::unique_ptr<ArchiveReader>> opened = ArchiveReader::Open(path);
  if (!opened.ok()) return Fail(opened.status().ToString());
  const ArchiveReader& a = **opened;
  uint64_t total_bytes = a.header().dense_bytes;
  uint64_t n_checks = a.dense_entries().size();
  for (const ExpertLayerEntry& e : a.expert_layer_entries()) {
    total_bytes += e.block_bytes * e.n_expert;
    n_checks += e.n_expert;
  }
  std::vector<std::string> failures;
  uint64_t failed = 0, done_bytes = 0;
  auto record = [&](const Status& st) {
    if (st.ok()) return;
    ++failed;
    if (failures.size() < kMaxListed) failures.push_back(st.message());
  };
  {
    Progress progress("verifying " + path, total_bytes);
    for (size_t i = 0; i < a.dense_entries().size(); ++i) {
      record(a.VerifyDenseTensor(i));
      done_bytes += a.dense_entries()[i].nbytes;
      progress.Update(done_bytes);
    }
    for (const ExpertLayerEntry& e : a.expert_layer_entries()) {
      for (uint32_t x = 0; x < e.n_expert; ++x) {
        record(a.VerifyExpertBlock(static_cast<int>(e.layer), static_cast<int>(x)));
        done_bytes += e.block_bytes;
        progress.Update(done_bytes);
      }
    }
    progress.Finish();
  }
  if (failed == 0) {
    std::printf("%s: OK: header/directory, %zu dense tensors and %" PRIu64
                " expert blocks (%s) match their xxh3 checksums\n",
                path.c_str(), a.dense_entries().size(), n_checks - a.dense_entries().size(),
                FormatBytes(total_bytes).c_str());
    return 0;
  }
  for (const std::string& f : failures) std::fprintf(stderr, "  FAILED: %s\n", f.c_str());
  if (failed > failures.size()) {
    std::fprintf(stderr, "  ... and %" PRIu64 " more\n", failed - failures.size());
  }
  return Fail(StrCat(path, ": ", failed, " of ", n_checks,
                     " checksums do not match; the archive is corrupt (re-convert it)"));
}

const CommandRegistration kVerify({
    .name = "verify",
    .summary = "check every checksum of an archive (header, dense tensors, expert blocks)",
    .usage = "sluice verify FILE",
    .description =
        "Reads the whole archive once and compares every dense tensor and expert block with\n"
        "its xxh3-64 from the directory (the header and directory have their own checksum,\n"
        "checked on open). Lists every failure with the tensor or expert, its offset and both\n"
        "hashes, and exits with status 1 if any. Pages read are dropped from the page cache as\n"
        "it goes. A GGUF has no checksums; verify only checks that it opens.",
    .flags = {},
    .run = RunVerify,
});

}  // namespace
}  // namespace sluice::cli
