#include "cli/demo_model.h"

#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <vector>

#include "cli/self_exec.h"
#include "core/base/log.h"

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDemoFileName = "demo.sluice";

// The repository root when the running binary sits below it (build/cli/sluice), else empty.
fs::path RepoRootOfBinary() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path();
       dir = dir.parent_path()) {
    if (fs::exists(dir / "demo.sh", ec) && fs::exists(dir / "CMakeLists.txt", ec)) return dir;
  }
  return {};
}

// Runs `sluice synth --preset demo --out path`; its progress goes to our stderr.
Status RunSynth(const std::string& path) {
  std::vector<std::string> args = {"synth", "--preset", kDemoPreset, "--out", path};
  ASSIGN_OR_RETURN(int code, RunSelf(args));
  if (code == 0) return Status::Ok();
  return Internal("writing the demo model failed: `", CommandLine(args), "` exited with ", code);
}

}  // namespace

std::string DemoModelPath() {
  const char* env = std::getenv("SLUICE_DEMO_DIR");
  if (env != nullptr && env[0] != '\0') return (fs::path(env) / kDemoFileName).string();
  fs::path root = RepoRootOfBinary();
  if (!root.empty()) return (root / "demo" / kDemoFileName).string();
  return (fs::path("demo") / kDemoFileName).string();
}

Result<DemoModel> EnsureDemoModel() {
  DemoModel demo;
  demo.path = DemoModelPath();
  std::error_code ec;
  if (fs::exists(demo.path, ec)) return demo;
  fs::path dir = fs::path(demo.path).parent_path();
  if (!dir.empty()) {
    fs::create_directories(dir, ec);
    if (ec) return IoError("creating ", dir.string(), " for the demo model: ", ec.message());
  }
  LOG(INFO) << "no demo model at " << demo.path << ": writing one (`sluice synth --preset "
            << kDemoPreset << "`)";
  // Written under a temporary name and renamed, so an interrupted write never leaves a file
  // that looks like a finished demo model. The name keeps the .sluice suffix for synth.
  std::string partial = (dir / "demo.partial.sluice").string();
  fs::remove(partial, ec);
  RETURN_IF_ERROR(RunSynth(partial));
  fs::rename(partial, demo.path, ec);
  if (ec) return IoError("renaming ", partial, " to ", demo.path, ": ", ec.message());
  demo.created = true;
  return demo;
}

Result<DemoModel> EnsureDiffusionDemoModel() {
  DemoModel demo;
  demo.path = (fs::path(DemoModelPath()).parent_path() / "sd-turbo.safetensors").string();
  std::error_code ec;
  if (fs::exists(demo.path, ec)) return demo;
  fs::path dir = fs::path(demo.path).parent_path();
  if (!dir.empty()) {
    fs::create_directories(dir, ec);
    if (ec) return IoError("creating ", dir.string(), " for the demo model: ", ec.message());
  }
  constexpr uint64_t kNeed = 2'700'000'000ull;  // sd-turbo in F16, with a margin
  const fs::space_info space = fs::space(dir.empty() ? fs::path(".") : dir, ec);
  if (!ec && space.available < kNeed) {
    return ResourceExhausted("the diffusion demo model needs about 2.7 GB in ", dir.string(), "; ",
                             space.available / 1000000, " MB are free (or pass -m MODEL)");
  }
  LOG(INFO) << "no diffusion demo model at " << demo.path
            << ": writing one (`sluice synth --preset sd-turbo`)";
  std::vector<std::string> args = {"synth", "--preset", "sd-turbo", "--out", demo.path};
  ASSIGN_OR_RETURN(int code, RunSelf(args));
  if (code != 0) {
    return Internal("writing the diffusion demo model failed: `", CommandLine(args),
                    "` exited with ", code);
  }
  demo.created = true;
  return demo;
}

}  // namespace sluice::cli
