// `sluice demo`: the README's first command. With no model it writes a synthetic 400B-class
// archive sized to the free disk (Qwen3.5-397B-A17B expert shapes, fewer layers and experts, RANDOM
// weights), then streams a short generation from it at a RAM budget well below its size, then
// prints the benchmark summary against the storage bandwidth measured in the same run. Each step
// is this binary run as a child (`sluice synth`, `sluice run`, `sluice bench`), so the demo shows
// exactly what those commands do.
#include <gflags/gflags.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/demo_model.h"
#include "cli/self_exec.h"
#include "core/base/byte_size.h"
#include "core/base/str_cat.h"
#include "io/model_open.h"
#include "synth/synth_presets.h"

DECLARE_string(model);
DECLARE_string(ram);
DECLARE_int32(n_predict);
DECLARE_string(prompt);
DECLARE_string(routing);

DEFINE_string(demo_size, "",
              "demo: bytes of the synthetic archive to write when none exists (e.g. 3G). Empty: "
              "a tenth of the free disk, between 1 GiB and 2 GiB.");

namespace sluice::cli {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDemoPresetBig = "qwen3.5-397b-a17b";
constexpr int kDemoExpertsPerLayer = 64;  // of 512: keeps the real 6.75 MiB expert size
constexpr const char* kDemoPrompt = "Explain in one paragraph why rivers meander.";

Result<uint64_t> FreeBytes(const fs::path& dir) {
  struct statvfs st;
  if (statvfs(dir.c_str(), &st) != 0) {
    return IoError("statvfs ", dir.string(), ": ", ErrnoString(errno));
  }
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

// Writes the demo archive when missing; returns its path.
Result<std::string> EnsureBigDemo() {
  fs::path dir = fs::path(DemoModelPath()).parent_path();
  if (dir.empty()) dir = ".";
  fs::path path = dir / "demo-qwen3.5-397b.sluice";
  std::error_code ec;
  if (fs::exists(path, ec)) return path.string();
  fs::create_directories(dir, ec);
  if (ec) return IoError("creating ", dir.string(), ": ", ec.message());
  ASSIGN_OR_RETURN(uint64_t free_bytes, FreeBytes(dir));
  uint64_t target = std::clamp<uint64_t>(free_bytes / 10, 1ull << 30, 2ull << 30);
  if (!FLAGS_demo_size.empty()) {
    ASSIGN_OR_RETURN(target, ParseByteSize(FLAGS_demo_size));
  }
  if (target + (1ull << 30) > free_bytes) {
    return ResourceExhausted("the demo archive needs ", FormatBytes(target),
                             " plus 1 GiB spare on ", dir.string(), ", which has ",
                             FormatBytes(free_bytes), " free (set --demo-size or SLUICE_DEMO_DIR)");
  }
  ASSIGN_OR_RETURN(SynthShape preset, FindSynthPreset(kDemoPresetBig));
  SynthScale scale;
  scale.layers = 1;
  scale.experts = kDemoExpertsPerLayer;
  ASSIGN_OR_RETURN(SynthShape one_layer, ScaleSynthShape(preset, scale));
  uint64_t per_layer = one_layer.all_expert_bytes();
  int layers = static_cast<int>(std::clamp<uint64_t>(target / per_layer, 1, preset.n_layer));
  std::printf(
      "sluice demo: writing a synthetic %s-shaped archive: %d layers x %d experts of %s "
      "(RANDOM weights) to %s\n",
      kDemoPresetBig, layers, kDemoExpertsPerLayer, FormatBytes(one_layer.expert_bytes()).c_str(),
      path.c_str());
  std::fflush(stdout);
  std::vector<std::string> args = {"synth",
                                   "--preset",
                                   kDemoPresetBig,
                                   "--layers",
                                   std::to_string(layers),
                                   "--experts",
                                   std::to_string(kDemoExpertsPerLayer),
                                   "--out",
                                   path.string()};
  ASSIGN_OR_RETURN(int code, RunSelf(args));
  if (code != 0) return Internal("`", CommandLine(args), "` exited with ", code);
  return path.string();
}

// A budget well below the model: the dense part, 1/8 of the experts, and 512 MiB for the KV
// cache, scratch and the process itself.
Result<std::string> DefaultBudget(const std::string& model_path) {
  ASSIGN_OR_RETURN(auto model, OpenModelFile(model_path));
  uint64_t budget = model->dense_bytes_total() + model->expert_bytes_total() / 8 + (512ull << 20);
  std::printf("sluice demo: RAM budget %s for a %s model (%s dense + %s of experts on disk)\n",
              FormatBytes(budget).c_str(),
              FormatBytes(model->dense_bytes_total() + model->expert_bytes_total()).c_str(),
              FormatBytes(model->dense_bytes_total()).c_str(),
              FormatBytes(model->expert_bytes_total()).c_str());
  return std::to_string(budget);
}

int RunDemo(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail(StrCat("demo takes no arguments (got '", args[0], "')"));
  std::string model = FLAGS_model;
  if (model.empty()) {
    Result<std::string> demo = EnsureBigDemo();
    if (!demo.ok()) return Fail(demo.status().message());
    model = *demo;
    std::printf(
        "sluice demo: model %s\n"
        "sluice demo: its weights are RANDOM: the text below is gibberish by design. The expert\n"
        "             sizes, the routing pattern and so the storage I/O are those of the real "
        "model.\n",
        model.c_str());
  }
  std::string ram = FLAGS_ram;
  if (ram.empty()) {
    Result<std::string> budget = DefaultBudget(model);
    if (!budget.ok()) return Fail(budget.status().message());
    ram = *budget;
  }
  std::fflush(stdout);
  std::string n = std::to_string(FLAGS_n_predict > 0 ? FLAGS_n_predict : 32);
  std::vector<std::string> common = {"--model", model, "--ram", ram};
  if (!FLAGS_routing.empty()) common.push_back("--routing=" + FLAGS_routing);

  std::printf("\n== sluice run: a short generation, streamed ==\n");
  std::fflush(stdout);
  std::vector<std::string> run = {"run", "--prompt",
                                  FLAGS_prompt.empty() ? kDemoPrompt : FLAGS_prompt, "-n", n};
  run.insert(run.end(), common.begin(), common.end());
  Result<int> code = RunSelf(run);
  if (!code.ok()) return Fail(code.status().message());
  if (*code != 0) return Fail(StrCat("`", CommandLine(run), "` exited with ", *code));

  std::printf("\n== sluice bench: tokens/s against the storage bandwidth of this run ==\n");
  std::fflush(stdout);
  std::vector<std::string> bench = {"bench", "--prompt-tokens", "16", "-n", "16"};
  bench.insert(bench.end(), common.begin(), common.end());
  code = RunSelf(bench);
  if (!code.ok()) return Fail(code.status().message());
  if (*code != 0) return Fail(StrCat("`", CommandLine(bench), "` exited with ", *code));
  std::printf(
      "\nNext: `build/cli/sluice chat` (the small demo model) or `build/cli/sluice chat -m "
      "your-model.gguf --ram 12G`; `build/cli/sluice --help` lists every command.\n");
  return 0;
}

const CommandRegistration kDemo({
    .name = "demo",
    .summary = "the README's demo: synthetic 400B-class archive, a streamed generation, the bench",
    .usage = "sluice demo [-m MODEL] [--ram BYTES] [-n N] [-p PROMPT] [--demo-size BYTES]",
    .description =
        "With no -m, writes (once) a synthetic archive with Qwen3.5-397B-A17B's expert shapes\n"
        "(6.75 MiB q4_K experts, 10 routed + 1 shared per token; 64 of the 512 experts per layer "
        "and as\n"
        "many layers as fit a tenth of the free disk, 1-2 GiB) under demo/ or $SLUICE_DEMO_DIR. "
        "Its\n"
        "weights are random. Then runs `sluice run` (a streamed generation) and `sluice bench`\n"
        "(tokens/s, hit rate, read bandwidth against the device's, peak RSS against the budget) at "
        "a\n"
        "RAM budget of the dense part plus 1/8 of the experts, unless --ram says otherwise.",
    .flags = {"model", "ram", "n_predict", "prompt", "routing", "demo_size"},
    .run = RunDemo,
});

}  // namespace
}  // namespace sluice::cli
