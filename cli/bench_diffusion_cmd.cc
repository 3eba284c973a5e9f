#include "cli/bench_diffusion_cmd.h"

#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "bench/bench_memory.h"
#include "cli/command.h"
#include "cli/diffusion_setup.h"
#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "core/base/str_cat.h"
#include "core/threads/thread_pool.h"

DEFINE_string(budgets, "256M,512M,1G,0",
              "bench on a diffusion model: --ram budgets to run, comma-separated; 0 is fully "
              "resident (weights mapped).");
DECLARE_string(prompt);
DECLARE_string(negative_prompt);
DECLARE_int64(seed);
DECLARE_int32(threads);
DECLARE_int32(device_qd);
DECLARE_string(device_bytes);
DECLARE_bool(json);
DECLARE_bool(quiet);
DECLARE_string(out);
DECLARE_string(taesd);

namespace sluice::cli {
namespace {

using diffusion::DiffusionModel;
using diffusion::GenerateOptions;

struct BudgetRun {
  uint64_t budget = 0;  // 0: resident
  std::string refused;  // the minimum's message when the budget cannot work
  double image_s = 0, text_s = 0, sampling_s = 0, decode_s = 0;
  int steps = 0, vae_tiles = 1;
  uint64_t peak_rss = 0;
  uint64_t bytes_total = 0, bytes_sampling = 0;  // read from storage
  double read_busy_s = 0, io_wait_s = 0;
  uint64_t kept_bytes = 0, ring_bytes = 0;
  double step_s() const { return steps > 0 ? sampling_s / steps : 0; }
  double bytes_per_step() const {
    return steps > 0 ? static_cast<double>(bytes_sampling) / steps : 0;
  }
};

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

Result<double> MeasureDevice(const std::string& path, uint64_t file_bytes, uint64_t seed) {
  ASSIGN_OR_RETURN(uint64_t total, ParseByteSize(FLAGS_device_bytes));
  return MeasureDeviceGBps(path, file_bytes, total, FLAGS_device_qd, seed);
}

Status RunBudget(const std::string& path, uint64_t budget, ThreadPool* pool, BudgetRun* run) {
  run->budget = budget;
  ResetPeakRss();
  ASSIGN_OR_RETURN(std::unique_ptr<DiffusionModel> model,
                   DiffusionModel::Load(
                       path, diffusion::DiffusionLoadOptions{
                                 .prediction = budget > 0 ? std::optional<diffusion::Prediction>(
                                                                diffusion::Prediction::kEps)
                                                          : std::nullopt,
                                 .taesd_path = FLAGS_taesd}));
  GenerateOptions o;
  o.prompt = FLAGS_prompt.empty() ? "a photograph of an astronaut riding a horse" : FLAGS_prompt;
  o.negative_prompt = FLAGS_negative_prompt;
  o.seed = FLAGS_seed >= 0 ? static_cast<uint64_t>(FLAGS_seed) : 42;
  RETURN_IF_ERROR(ApplyModelDefaults(*model, path, DiffuseDefaultsFromFlags(), &o));
  if (budget > 0) {
    Result<RamPlan> plan = LoadWithinRam(
        path, diffusion::DiffusionLoadOptions{.taesd_path = FLAGS_taesd}, budget, &o, &model);
    if (!plan.ok()) {
      if (plan.status().code() != StatusCode::kResourceExhausted) return plan.status();
      run->refused = plan.status().message();
      return Status::Ok();
    }
    run->kept_bytes = model->stream()->plan().resident_bytes;
    run->ring_bytes = model->stream()->plan().ring_bytes;
  }
  if (o.vae_tile > 0) run->vae_tiles = diffusion::TileCount(o.height / 8, o.width / 8, o.vae_tile);
  diffusion::DiffusionStream* stream = model->stream();
  OrderedStreamCounters at_sampling, at_decoding;
  const OrderedStreamCounters start =
      stream != nullptr ? stream->counters() : OrderedStreamCounters{};
  diffusion::GenerateHooks hooks;
  hooks.on_stage = [&](const char* stage) {
    if (!FLAGS_quiet) {
      std::fprintf(stderr, "  %s: %s\n", budget > 0 ? FormatBytes(budget).c_str() : "resident",
                   stage);
    }
    if (stream == nullptr) return;
    if (std::string(stage) == "sampling") at_sampling = stream->counters();
    if (std::string(stage) == "decoding") at_decoding = stream->counters();
  };
  diffusion::GenerateTimings t;
  ASSIGN_OR_RETURN(diffusion::Image img, diffusion::Generate(*model, o, pool, hooks, &t));
  (void)img;
  run->text_s = t.text_seconds;
  run->sampling_s = t.sampling_seconds;
  run->decode_s = t.decode_seconds;
  run->image_s = t.text_seconds + t.sampling_seconds + t.decode_seconds;
  run->steps = t.steps;
  run->peak_rss = PeakRssBytes();
  if (stream != nullptr) {
    const OrderedStreamCounters end = stream->counters();
    run->bytes_total = end.bytes_read - start.bytes_read;
    run->bytes_sampling = at_decoding.bytes_read - at_sampling.bytes_read;
    run->read_busy_s = static_cast<double>(end.busy_ns - start.busy_ns) / 1e9;
    run->io_wait_s = static_cast<double>(end.io_wait_ns - start.io_wait_ns) / 1e9;
  }
  return Status::Ok();
}

std::string Svg(const std::string& title, const std::vector<BudgetRun>& runs, double resident_s) {
  const double W = 720, H = 400, left = 70, right = 30, top = 40, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  double max_s = resident_s;
  std::vector<const BudgetRun*> ok;
  for (const BudgetRun& r : runs) {
    if (r.refused.empty() && r.budget > 0) ok.push_back(&r);
    if (r.refused.empty()) max_s = std::max(max_s, r.image_s);
  }
  max_s = max_s > 0 ? max_s * 1.15 : 1;
  std::string svg = StrCat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", W, "\" height=\"",
                           H, "\" font-family=\"sans-serif\" font-size=\"12\">\n",
                           "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  std::string esc;
  for (char c : title) esc += c == '<' ? "&lt;" : c == '&' ? "&amp;" : std::string(1, c);
  svg += StrCat("<text x=\"", left, "\" y=\"22\" font-size=\"14\">", esc, "</text>\n");
  svg += StrCat("<rect x=\"", left, "\" y=\"", top, "\" width=\"", pw, "\" height=\"", ph,
                "\" fill=\"none\" stroke=\"#888\"/>\n");
  const size_t n = ok.size();
  auto x_of = [&](size_t i) {
    return left + pw * (n <= 1 ? 0.5 : static_cast<double>(i) / (n - 1));
  };
  auto y_of = [&](double s) { return top + ph * (1 - s / max_s); };
  for (int i = 0; i <= 4; ++i) {
    svg += StrCat("<text x=\"", left - 6, "\" y=\"", top + ph * (1 - i / 4.0) + 4,
                  "\" text-anchor=\"end\">", static_cast<int>(max_s * i / 4 + 0.5), "</text>\n");
  }
  std::string line;
  for (size_t i = 0; i < n; ++i) {
    line += StrCat(i ? " " : "", x_of(i), ",", y_of(ok[i]->image_s));
    svg += StrCat("<circle cx=\"", x_of(i), "\" cy=\"", y_of(ok[i]->image_s),
                  "\" r=\"3\" fill=\"#1f5fbf\"/>\n<text x=\"", x_of(i), "\" y=\"", top + ph + 18,
                  "\" text-anchor=\"middle\">", FormatBytes(ok[i]->budget), "</text>\n");
  }
  if (n > 1) {
    svg += StrCat("<polyline points=\"", line, "\" fill=\"none\" stroke=\"#1f5fbf\"/>\n");
  }
  if (resident_s > 0) {
    svg +=
        StrCat("<line x1=\"", left, "\" x2=\"", left + pw, "\" y1=\"", y_of(resident_s), "\" y2=\"",
               y_of(resident_s), "\" stroke=\"#d9730d\" stroke-dasharray=\"4 3\"/>\n", "<text x=\"",
               left + pw - 4, "\" y=\"", y_of(resident_s) - 4,
               "\" text-anchor=\"end\" fill=\"#d9730d\">fully resident</text>\n");
  }
  svg += StrCat("<text x=\"", left + pw / 2, "\" y=\"", H - 18,
                "\" text-anchor=\"middle\">--ram budget</text>\n<text x=\"14\" y=\"", top + ph / 2,
                "\" transform=\"rotate(-90 14 ", top + ph / 2,
                ")\" text-anchor=\"middle\">seconds per image</text>\n</svg>\n");
  return svg;
}

}  // namespace

const std::vector<const char*>& DiffusionBenchFlags() {
  static const std::vector<const char*> flags = {
      "budgets",      "prompt", "negative_prompt", "steps", "sampler", "schedule",
      "cfg_scale",    "width",  "height",          "seed",  "threads", "device_qd",
      "device_bytes", "json",   "taesd",           "out"};
  return flags;
}

int RunDiffusionBenchCommand(const std::string& path) {
  std::vector<uint64_t> budgets;
  for (size_t pos = 0; pos <= FLAGS_budgets.size();) {
    const size_t comma = std::min(FLAGS_budgets.find(',', pos), FLAGS_budgets.size());
    Result<uint64_t> b = ParseByteSize(FLAGS_budgets.substr(pos, comma - pos));
    if (!b.ok()) return Fail("--budgets: " + b.status().message());
    budgets.push_back(*b);
    pos = comma + 1;
  }
  auto ckpt = diffusion::Checkpoint::Open(path);
  if (!ckpt.ok()) return Fail(ckpt.status().ToString());
  // A diffusers folder: its largest file (the UNet's).
  const std::string device_file = (*ckpt)->largest_file();
  const uint64_t file_bytes = (*ckpt)->largest_file_bytes();
  const bool synthetic = (*ckpt)->MetadataValue("sluice.synthetic") == "true";
  ckpt->reset();
  const unsigned cores = std::thread::hardware_concurrency();
  auto pool =
      ThreadPool::Create(FLAGS_threads > 0 ? FLAGS_threads : static_cast<int>(cores ? cores : 1));
  if (!pool.ok()) return Fail(pool.status().message());
  if (!FLAGS_quiet)
    std::fprintf(stderr, "device: random 4 MiB O_DIRECT reads of %s\n", device_file.c_str());
  Result<double> dev_before = MeasureDevice(device_file, file_bytes, 1);
  if (!dev_before.ok()) return Fail(dev_before.status().ToString());
  std::vector<BudgetRun> runs;
  for (uint64_t b : budgets) {
    BudgetRun run;
    if (Status st = RunBudget(path, b, pool->get(), &run); !st.ok()) return Fail(st.ToString());
    runs.push_back(run);
  }
  Result<double> dev_after = MeasureDevice(device_file, file_bytes, 2);
  if (!dev_after.ok()) return Fail(dev_after.status().ToString());
  const double device = (*dev_before + *dev_after) / 2;
  double resident_s = 0, resident_step = 0;
  for (const BudgetRun& r : runs) {
    if (r.budget == 0 && r.refused.empty()) {
      resident_s = r.image_s;
      resident_step = r.step_s();
    }
  }
  // A streamed step's bound: the larger of the resident step (compute) and its bytes / device.
  auto bound = [&](const BudgetRun& r) {
    return std::max(resident_step, device > 0 ? r.bytes_per_step() / (device * 1e9) : 0.0);
  };
  const std::string name = ModelName(path);
  if (FLAGS_json) {
    std::string j =
        StrCat("{\"model\": ", JsonString(name), ", \"synthetic\": ", synthetic ? "true" : "false",
               ", \"device_GBps\": ", device, ", \"device_GBps_before\": ", *dev_before,
               ", \"device_GBps_after\": ", *dev_after,
               ", \"decoder\": ", FLAGS_taesd.empty() ? "\"vae\"" : "\"taesd\"", ", \"runs\": [");
    for (size_t i = 0; i < runs.size(); ++i) {
      const BudgetRun& r = runs[i];
      j += StrCat(i ? ", " : "", "{\"ram_bytes\": ", r.budget,
                  ", \"refused\": ", r.refused.empty() ? "null" : JsonString(r.refused));
      if (r.refused.empty()) {
        j += StrCat(
            ", \"image_s\": ", r.image_s, ", \"text_s\": ", r.text_s,
            ", \"sampling_s\": ", r.sampling_s, ", \"decode_s\": ", r.decode_s,
            ", \"steps\": ", r.steps, ", \"step_s\": ", r.step_s(),
            ", \"vae_tiles\": ", r.vae_tiles, ", \"peak_rss_bytes\": ", r.peak_rss,
            ", \"bytes_read\": ", r.bytes_total,
            ", \"bytes_per_step\": ", static_cast<uint64_t>(r.bytes_per_step()),
            ", \"read_GBps\": ", r.read_busy_s > 0 ? r.bytes_total / r.read_busy_s / 1e9 : 0.0,
            ", \"io_wait_s\": ", r.io_wait_s, ", \"kept_bytes\": ", r.kept_bytes,
            ", \"ring_bytes\": ", r.ring_bytes,
            ", \"time_vs_resident\": ", resident_s > 0 ? r.image_s / resident_s : 0.0,
            ", \"step_vs_bound\": ", bound(r) > 0 ? r.step_s() / bound(r) : 0.0);
      }
      j += "}";
    }
    std::printf("%s]}\n", j.c_str());
  } else {
    std::printf(
        "diffusion bench: %s%s; device %.2f GB/s (random 4 MiB O_DIRECT reads, QD %d: "
        "%.2f before, %.2f after)\n",
        name.c_str(), synthetic ? " (random weights)" : "", device, FLAGS_device_qd, *dev_before,
        *dev_after);
    std::printf("%-9s %8s %7s %8s %7s %6s %11s %10s %9s %9s %8s %7s\n", "--ram", "s/image", "text",
                "s/step", "decode", "tiles", "peak RSS", "read/step", "read GB/s", "io wait",
                "/resid.", "/bound");
    for (const BudgetRun& r : runs) {
      const std::string b = r.budget > 0 ? FormatBytes(r.budget) : "resident";
      if (!r.refused.empty()) {
        std::printf("%-9s refused: %s\n", b.c_str(), r.refused.c_str());
        continue;
      }
      std::printf("%-9s %8.2f %7.2f %8.2f %7.2f %6d %11s %10s %9.2f %9.2f %8.2f %7.2f\n", b.c_str(),
                  r.image_s, r.text_s, r.step_s(), r.decode_s, r.vae_tiles,
                  (FormatBytes(r.peak_rss) +
                   (r.budget > 0 ? StrCat(" ", static_cast<int>(100.0 * r.peak_rss / r.budget), "%")
                                 : std::string()))
                      .c_str(),
                  FormatBytes(static_cast<uint64_t>(r.bytes_per_step())).c_str(),
                  r.read_busy_s > 0 ? r.bytes_total / r.read_busy_s / 1e9 : 0.0, r.io_wait_s,
                  resident_s > 0 ? r.image_s / resident_s : 0.0,
                  bound(r) > 0 ? r.step_s() / bound(r) : 0.0);
    }
    std::printf(
        "(/resid.: time per image against the fully resident run; /bound: time per step "
        "against max(resident step, bytes read per step / device GB/s))\n");
  }
  const std::string svg_path = !FLAGS_out.empty() ? FLAGS_out : path + ".budgets.svg";
  std::ofstream out(svg_path);
  out << Svg(StrCat("sluice bench: ", name, synthetic ? " (random weights)" : ""), runs,
             resident_s);
  if (!out) return Fail("writing " + svg_path + " failed");
  if (!FLAGS_quiet) std::fprintf(stderr, "plot: %s\n", svg_path.c_str());
  return 0;
}

}  // namespace sluice::cli
