// `sluice bench` on a model: see cli/bench_model_cmd.h and docs/bench.md.
#include "cli/bench_model_cmd.h"

#include <gflags/gflags.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "bench/bench_memory.h"
#include "bench/bench_model.h"
#include "bench/bench_report.h"
#include "cli/command.h"
#include "cli/demo_model.h"
#include "cli/engine_flags.h"
#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "core/base/progress.h"
#include "io/model_open.h"
#include "io/output_file.h"
#include "synth/synth.h"

DEFINE_int32(prompt_tokens, 64, "bench: prompt tokens processed before decoding (random ids).");
DEFINE_bool(warm, false,
            "bench: read every routed expert into the cache before the timed prompt (a model "
            "that fits in RAM, measured resident, as llama-bench measures a warm page cache); "
            "needs a budget that holds them all, e.g. --ram 0. The read time is reported apart.");
DEFINE_string(compare, "",
              "bench: also run a baseline in the same invocation. mmap: experts read through "
              "the page cache from a memory map (llama.cpp's default), facing --mmap-limit of "
              "RAM; prints the speed ratio.");
DEFINE_string(mmap_limit, "",
              "bench --compare mmap: RAM the baseline may use (heap + page cache); the rest of "
              "MemAvailable is mlocked away while it runs. Empty: the --ram budget.");
DEFINE_string(sweep_ram, "",
              "bench: comma-separated RAM budgets (e.g. 1G,2G,4G,8G): one run and one line per "
              "budget, and an SVG plot of tokens/s and hit rate (--out, or next to the model).");
DEFINE_string(mmap_reserve, "1G",
              "bench --compare mmap: memory left unlocked for the rest of the machine besides "
              "--mmap-limit (other programs must not run out while the balloon is inflated); the "
              "baseline may use it too, which can only flatter the baseline.");
DEFINE_string(preset_dir, ".",
              "bench --preset: directory of the synthetic archive; written there with `sluice "
              "synth` first when missing, reused when present.");
DEFINE_int32(rounds, 4,
             "bench: the decode is split into this many rounds with a device measurement "
             "(--device-bytes / 2) between rounds, so drift of a shared disk hits both alike.");
DEFINE_int32(device_qd, 16,
             "bench: reads in flight when measuring the device (its limit; independent of the "
             "engine's --queue-depth).");
DEFINE_string(device_bytes, "1G",
              "bench: bytes of random expert reads in each device measurement (before and after).");
DECLARE_string(model);
DECLARE_string(ram);
DECLARE_bool(json);
DECLARE_string(out);
DECLARE_string(routing);
DECLARE_string(record_trace);
DECLARE_string(preset);
DECLARE_int32(layers);
DECLARE_int32(experts);
DECLARE_string(quant);
DECLARE_int32(n_predict);
DECLARE_int64(seed);

namespace sluice::cli {

const std::vector<const char*>& ModelBenchFlags() {
  static const std::vector<const char*> flags = [] {
    std::vector<const char*> f = {"prompt_tokens", "n_predict",  "routing",      "record_trace",
                                  "compare",       "mmap_limit", "mmap_reserve", "sweep_ram",
                                  "preset",        "layers",     "quant",        "preset_dir",
                                  "device_bytes",  "device_qd",  "rounds",       "seed",
                                  "json",          "out",        "warm"};
    for (const char* name : EngineFlagNames()) f.push_back(name);
    return f;
  }();
  return flags;
}

namespace {

// The archive for --preset, written first when missing.
Result<std::string> PresetModel() {
  ASSIGN_OR_RETURN(SynthShape preset, FindSynthPreset(FLAGS_preset));
  SynthScale scale;
  scale.layers = FLAGS_layers;
  scale.experts = FLAGS_experts;
  if (!FLAGS_quant.empty()) {
    std::optional<GgmlType> type = ParseTypeName(FLAGS_quant);
    if (!type) return InvalidArgument("--quant '", FLAGS_quant, "': unknown type");
    scale.quant = *type;
  }
  ASSIGN_OR_RETURN(SynthShape shape, ScaleSynthShape(preset, scale));
  std::string name = shape.preset;
  if (shape.n_layer != shape.full_layers) name += StrCat("-", shape.n_layer, "L");
  if (shape.n_expert != shape.full_experts) name += StrCat("-", shape.n_expert, "E");
  if (shape.expert_type != preset.expert_type) name += StrCat("-", TypeName(shape.expert_type));
  const std::string path = (std::filesystem::path(FLAGS_preset_dir) / (name + ".sluice")).string();
  if (std::filesystem::exists(path)) {
    LOG(INFO) << "bench: reusing " << path;
    return path;
  }
  LOG(INFO) << "bench: writing the synthetic archive " << path << " (" << shape.ToString() << ")";
  SynthOptions o;
  o.shape = shape;
  o.seed = FLAGS_seed < 0 ? 1 : static_cast<uint64_t>(FLAGS_seed);
  Progress progress("synth", SynthFileBytes(shape));
  o.progress = [&](uint64_t done, uint64_t) { progress.Update(done); };
  ASSIGN_OR_RETURN(SynthResult r, WriteSynthModel(path, o));
  progress.Finish();
  return path;
}

Status FillModelFacts(const ModelFile& m, BenchReport* r) {
  const Metadata& md = m.metadata();
  r->model_name = md.GetStringOr("general.name", "").value();
  r->synthetic = md.GetBoolOr("sluice.synthetic", false).value();
  r->preset = md.GetStringOr("sluice.synth.preset", "").value();
  r->expert_bytes_total = m.expert_bytes_total();
  r->dense_bytes_total = m.dense_bytes_total();
  for (const std::string& f : m.file_paths()) r->model_bytes += std::filesystem::file_size(f);
  ASSIGN_OR_RETURN(RoutingShape shape, RoutingShapeFromModel(m));
  const ExpertTensors e = *m.expert_tensors(shape.moe_layers[0]);
  const uint64_t expert = e.gate.nbytes / shape.n_expert + e.up.nbytes / shape.n_expert +
                          e.down.nbytes / shape.n_expert;
  r->shape = StrCat(shape.n_moe_layer(), " MoE layers");
  if (r->synthetic) {
    r->shape += StrCat(" of ", md.GetUintOr("sluice.synth.full_layers", 0).value());
  }
  r->shape += StrCat(", ", shape.n_expert, " experts x ", FormatBytes(expert), " ",
                     TypeName(e.gate.type), ", k=", shape.k);
  return Status::Ok();
}

Result<std::vector<uint64_t>> ParseBudgets(const std::string& list) {
  std::vector<uint64_t> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    std::string item =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      ASSIGN_OR_RETURN(uint64_t b, ParseByteSize(item));
      out.push_back(b);
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (out.empty()) return InvalidArgument("--sweep-ram '", list, "': no budget");
  std::sort(out.begin(), out.end());
  return out;
}

Result<BenchRun> RunLogged(const std::string& path, const BenchRunOptions& o, const char* what) {
  LOG(INFO) << "bench: " << what << " at " << FormatBytes(o.engine.ram_budget_bytes) << ": "
            << o.prompt_tokens << " prompt + " << o.decode_tokens << " decoded tokens";
  return RunEngineBench(path, o);
}

Status RunMmapBaseline(const std::string& path, BenchRunOptions o, BenchReport* report) {
  uint64_t limit = o.engine.ram_budget_bytes;
  if (!FLAGS_mmap_limit.empty()) {
    ASSIGN_OR_RETURN(limit, ParseByteSize(FLAGS_mmap_limit));
  }
  ASSIGN_OR_RETURN(uint64_t reserve, ParseByteSize(FLAGS_mmap_reserve));
  RETURN_IF_ERROR(DropFromPageCache(path));
  ASSIGN_OR_RETURN(uint64_t available, MemAvailableBytes());
  const uint64_t balloon_bytes = available > limit + reserve ? available - limit - reserve : 0;
  LOG(INFO) << "bench: mmap baseline: locking " << FormatBytes(balloon_bytes) << " of "
            << FormatBytes(available) << " available, leaving " << FormatBytes(limit) << " + "
            << FormatBytes(reserve) << " reserve for the rest of the machine";
  // The balloon makes this process the largest on the machine: should memory run out anyway
  // (other programs growing), the OOM killer ends the benchmark rather than something else.
  if (std::FILE* f = std::fopen("/proc/self/oom_score_adj", "w")) {
    std::fputs("1000", f);
    std::fclose(f);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<MemoryBalloon> balloon, MemoryBalloon::Inflate(balloon_bytes));
  o.engine.expert_source = ExpertSourceKind::kMmap;
  o.record_trace.clear();
  Result<BenchRun> run = RunLogged(path, o, "mmap baseline");
  balloon.reset();  // released before anything else happens
  if (!run.ok()) return run.status();
  report->mmap = *run;
  // The balloon is this process's memory too; the baseline's own peak is what lies above it.
  report->mmap->peak_rss_bytes -= std::min(report->mmap->peak_rss_bytes, balloon_bytes);
  report->mmap_limit_bytes = limit;
  report->balloon_bytes = balloon_bytes;
  report->mmap_reserve_bytes = reserve;
  return Status::Ok();
}

Status RunAll(BenchReport* report) {
  // Everything the flags can get wrong is checked before minutes of measuring.
  if (!FLAGS_compare.empty() && FLAGS_compare != "mmap") {
    return InvalidArgument("--compare '", FLAGS_compare, "': the only baseline is mmap");
  }
  if (!FLAGS_record_trace.empty()) RETURN_IF_ERROR(CheckOutputPath(FLAGS_record_trace));
  ASSIGN_OR_RETURN(std::string path, BenchModelPath());
  report->model_path = path;
  ASSIGN_OR_RETURN(uint64_t device_bytes, ParseByteSize(FLAGS_device_bytes));
  BenchRunOptions o;
  ASSIGN_OR_RETURN(o.engine, EngineOptionsFromFlags());
  // With --preset, --experts sized the synthetic archive; it is not experts per token there.
  if (FLAGS_model.empty() && !FLAGS_preset.empty()) o.engine.experts_per_token = 0;
  o.prompt_tokens = std::max(1, FLAGS_prompt_tokens);
  o.decode_tokens = FLAGS_n_predict > 0 ? FLAGS_n_predict : 32;
  o.seed = FLAGS_seed < 0 ? 1 : static_cast<uint64_t>(FLAGS_seed);
  o.record_trace = FLAGS_record_trace;
  o.warm = FLAGS_warm;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(path));
    RETURN_IF_ERROR(FillModelFacts(*model, report));
    ASSIGN_OR_RETURN(o.routing, ResolveRoutingSpec(FLAGS_routing, model->metadata()));
    LOG(INFO) << "bench: measuring the device's random-read bandwidth (before)";
    ASSIGN_OR_RETURN(report->device_before,
                     ProbeDevice(*model, FLAGS_device_qd, device_bytes, o.seed));
    // Diagnostic: the device with only k reads in flight, what one layer's misses can offer.
    ASSIGN_OR_RETURN(RoutingShape shape, RoutingShapeFromModel(*model));
    const int k = o.engine.experts_per_token > 0 ? o.engine.experts_per_token : shape.k;
    ASSIGN_OR_RETURN(report->device_qd_k, ProbeDevice(*model, std::min(k, FLAGS_device_qd),
                                                      device_bytes / 2, o.seed + 7));
  }
  if (report->synthetic) {
    LOG(INFO) << "bench: " << path << " is a synthetic model: its weights are random";
  }
  if (!FLAGS_sweep_ram.empty()) {
    ASSIGN_OR_RETURN(std::vector<uint64_t> budgets, ParseBudgets(FLAGS_sweep_ram));
    for (uint64_t budget : budgets) {
      BenchRunOptions s = o;
      s.engine.ram_budget_bytes = budget;
      if (budget != budgets.front()) s.record_trace.clear();
      ASSIGN_OR_RETURN(BenchRun run, RunLogged(path, s, "sweep"));
      report->sweep.push_back(run);
    }
    report->run = report->sweep.front();
    if (!FLAGS_ram.empty()) {
      for (const BenchRun& r : report->sweep) {
        if (r.ram_budget_bytes == o.engine.ram_budget_bytes) report->run = r;
      }
    }
  } else {
    BenchRunOptions main = o;
    main.rounds = std::max(1, FLAGS_rounds);
    main.between_rounds = [&](const ModelFile& model) -> Status {
      ASSIGN_OR_RETURN(DeviceProbe p, ProbeDevice(model, FLAGS_device_qd, device_bytes / 2,
                                                  o.seed + 100 + report->device_rounds.size()));
      report->device_rounds.push_back(p);
      return Status::Ok();
    };
    ASSIGN_OR_RETURN(report->run, RunLogged(path, main, "streaming engine"));
  }
  if (FLAGS_compare == "mmap") {
    BenchRunOptions m = o;
    m.engine.ram_budget_bytes = report->run.ram_budget_bytes;
    RETURN_IF_ERROR(RunMmapBaseline(path, m, report));
  }
  {
    ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(path));
    LOG(INFO) << "bench: measuring the device's random-read bandwidth (after)";
    ASSIGN_OR_RETURN(report->device_after,
                     ProbeDevice(*model, FLAGS_device_qd, device_bytes, o.seed + 1));
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> BenchModelPath() {
  if (!FLAGS_model.empty()) return FLAGS_model;
  if (!FLAGS_preset.empty()) return PresetModel();
  ASSIGN_OR_RETURN(DemoModel demo, EnsureDemoModel());
  return demo.path;
}

int RunModelBenchCommand() {
  BenchReport report;
  Status st = RunAll(&report);
  if (!st.ok()) return Fail(st.ToString());
  if (FLAGS_json) {
    std::fputs(BenchReportJson(report).c_str(), stdout);
  } else {
    std::fputs(BenchReportText(report).c_str(), stdout);
  }
  if (!report.sweep.empty()) {
    std::string svg_path = !FLAGS_out.empty() ? FLAGS_out : report.model_path + ".sweep.svg";
    std::ofstream out(svg_path);
    out << SweepSvg(report);
    if (!out) return Fail("writing " + svg_path + " failed");
    std::fprintf(stderr, "plot: %s\n", svg_path.c_str());
  }
  return 0;
}

}  // namespace sluice::cli
