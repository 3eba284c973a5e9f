// `sluice bench`: measurements with their limits beside them.
//   --io-only: expert reads through the cache vs the device's raw O_DIRECT bandwidth at the same
//              block size and queue depth (bench/io_bench.h), without a model.
//   (default):  the model benchmark, tok/s against storage bandwidth (issue 6): its own files,
//               cli/bench_model_cmd.{h,cc}, moe/bench_*.h; this file only dispatches to it.
#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/io_bench.h"
#include "cli/bench_diffusion_cmd.h"
#include "cli/bench_model_cmd.h"
#include "cli/bench_serve_cmd.h"
#include "cli/command.h"
#include "cli/diffusion_setup.h"
#include "core/base/byte_size.h"

DEFINE_bool(io_only, false,
            "bench: measure only expert I/O (cache path vs raw O_DIRECT reads of the device) on a "
            "scratch archive of random experts; no model needed.");
DEFINE_string(dir, ".",
              "bench --io-only: directory for the scratch archive (on the disk to measure; it is "
              "removed afterwards).");
DEFINE_string(size, "4G",
              "bench --io-only: scratch archive size (e.g. 4G); checked against free space.");
DECLARE_bool(json);
DECLARE_bool(quiet);
DECLARE_string(io);
DECLARE_string(serve);
DECLARE_string(model);

namespace sluice::cli {
namespace {

std::string Json(const IoBenchPoint& p) {
  char buf[400];
  std::snprintf(buf, sizeof(buf),
                "{\"expert_bytes\": %llu, \"queue_depth\": %d, \"cache_GBps\": %.3f, "
                "\"raw_GBps\": %.3f, \"ratio\": %.3f, \"raw_pread_GBps\": %.3f, "
                "\"raw_uring_GBps\": %.3f, \"read_bytes\": %llu, \"reads\": %llu, "
                "\"cache_hit_rate\": %.3f}",
                static_cast<unsigned long long>(p.expert_bytes), p.queue_depth, p.cache_GBps,
                p.raw_GBps, p.ratio, p.raw_pread_GBps, p.raw_uring_GBps,
                static_cast<unsigned long long>(p.read_bytes),
                static_cast<unsigned long long>(p.reads), p.cache_hit_rate);
  return buf;
}

int RunIoOnlyBench() {
  Result<uint64_t> size = ParseByteSize(FLAGS_size);
  if (!size.ok()) return Fail("--size: " + size.status().message());
  Result<IoBackendKind> io = ParseIoBackendKind(FLAGS_io);
  if (!io.ok()) return Fail(io.status().message());
  IoBenchOptions options{.dir = FLAGS_dir, .archive_bytes = *size, .io = *io};
  const size_t n_points = options.expert_bytes.size() * options.queue_depths.size();
  size_t done = 0;
  // Progress on stderr; the table (or JSON) on stdout once the raw reference is chosen.
  auto on_point = [&](const IoBenchPoint& p) {
    if (FLAGS_quiet) return;
    std::fprintf(stderr,
                 "io bench %zu/%zu: %.2f MB QD %d: cache %.3f GB/s, raw pread %.3f, raw "
                 "uring %.3f\n",
                 ++done, n_points, p.expert_bytes / 1e6, p.queue_depth, p.cache_GBps,
                 p.raw_pread_GBps, p.raw_uring_GBps);
  };
  Result<IoBenchResult> result = RunIoBench(options, on_point);
  if (!result.ok()) return Fail(result.status().ToString());
  if (FLAGS_json) {
    for (const IoBenchPoint& p : result->points) std::printf("%s\n", Json(p).c_str());
    return 0;
  }
  std::printf("expert I/O bench: %s scratch archive of random experts in %s (removed after)\n",
              FormatBytes(result->archive_bytes).c_str(), options.dir.c_str());
  std::printf(
      "cache: random experts through the expert cache, 100%% misses, xxh3 checked; QD reads at "
      "the device\n       and one more expert queued; %s (QD per row)\n",
      result->cache_backend.c_str());
  std::printf(
      "raw:   the same block size at random offsets, no cache: QD O_DIRECT pread threads, "
      "and QD O_DIRECT\n       io_uring reads from one thread; raw = %s (faster over the "
      "run)%s\n",
      result->raw_method.c_str(), result->raw_direct ? "" : " [buffered: O_DIRECT refused]");
  std::printf("%d interleaved rounds per point (ABC CBA); GB = 1e9 bytes\n\n", options.rounds);
  std::printf("%12s %4s %11s %9s %7s %11s %11s\n", "expert", "QD", "cache GB/s", "raw GB/s",
              "ratio", "raw pread", "raw uring");
  std::vector<double> big;
  for (const IoBenchPoint& p : result->points) {
    std::printf("%9.2f MB %4d %11.3f %9.3f %7.3f %11.3f %11.3f\n", p.expert_bytes / 1e6,
                p.queue_depth, p.cache_GBps, p.raw_GBps, p.ratio, p.raw_pread_GBps,
                p.raw_uring_GBps);
    if (p.expert_bytes >= 4'000'000) big.push_back(p.ratio);
  }
  if (!big.empty()) {
    std::sort(big.begin(), big.end());
    const size_t m = big.size();
    const double median = m % 2 ? big[m / 2] : (big[m / 2 - 1] + big[m / 2]) / 2;
    std::printf(
        "\nexperts >= 4 MB: cache/raw ratio min %.3f, median %.3f, max %.3f "
        "(goal >= 0.90)\n",
        big.front(), median, big.back());
  }
  return 0;
}

int RunBench(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("bench takes no positional arguments (see `sluice bench --help`)");
  if (FLAGS_io_only) return RunIoOnlyBench();
  if (!FLAGS_serve.empty()) return RunServeBenchCommand();
  if (!FLAGS_model.empty() && IsDiffusionCheckpoint(FLAGS_model)) {
    return RunDiffusionBenchCommand(FLAGS_model);
  }
  return RunModelBenchCommand();
}

std::vector<const char*> BenchFlags() {
  std::vector<const char*> flags = {"io_only", "dir", "size"};
  for (const char* f : ServeBenchFlags()) flags.push_back(f);
  for (const char* f : DiffusionBenchFlags()) {
    if (std::find(flags.begin(), flags.end(), std::string(f)) == flags.end()) flags.push_back(f);
  }
  for (const char* f : ModelBenchFlags()) {
    if (std::find(flags.begin(), flags.end(), std::string(f)) == flags.end()) flags.push_back(f);
  }
  return flags;
}

const CommandRegistration kBench({
    .name = "bench",
    .summary = "tokens/s against storage bandwidth (a model), or expert I/O alone (--io-only)",
    .usage =
        "sluice bench [-m MODEL | --preset NAME [--layers N]] [--ram 4G] [-n 32]\n"
        "                    [--routing R] [--compare mmap] [--sweep-ram 1G,2G,...] [--json]\n"
        "       sluice bench --serve 1,2,4,8 [-m MODEL | --preset NAME] [--ram 4G] [-n 32] "
        "[--json]\n"
        "       sluice bench -m SD_CHECKPOINT [--budgets 256M,512M,1G,0] [--steps N] [-W -H] "
        "[--json]\n"
        "       sluice bench --io-only [--dir DIR] [--size 4G] [--io auto|uring|pread] [--json]",
    .description =
        "Model benchmark (docs/bench.md): measures the device's random-read bandwidth at the\n"
        "model's expert read size, runs --prompt-tokens of prompt and -n decoded tokens at the\n"
        "--ram budget, measures the device again, and prints tokens/s (prefill, decode), time to\n"
        "first token, bytes read per token, expert hit rate, achieved read GB/s, the bound\n"
        "tokens/s = device GB/s / bytes per token and the ratios, peak RSS against the budget and\n"
        "the I/O-wait share. --json prints the same as one JSON object (a stable schema).\n"
        "The model: -m, or --preset (a `sluice synth` archive in --preset-dir, written when\n"
        "missing), or the demo model. Synthetic models use synthetic routing unless --routing\n"
        "says otherwise, and the output says their weights are random.\n"
        "--compare mmap runs the same model with experts from a memory map (the page cache\n"
        "decides), with all RAM but --mmap-limit mlocked away. --sweep-ram runs one budget per\n"
        "entry and plots tokens/s and hit rate (SVG, --out or MODEL.sweep.svg).\n\n"
        "--serve 1,2,4,8 runs the serving benchmark: at each number of concurrent streams (a\n"
        "fresh engine each, as `sluice serve` runs them: one step decodes a token of every\n"
        "stream, an expert read once for all), --prompt-tokens random prompt and -n sampled\n"
        "tokens per stream; prints aggregate and per-stream tok/s, bytes read per token and its\n"
        "ratio to the first level, the bound (device GB/s, measured before and after each\n"
        "level, / bytes per token) and aggregate / bound, hit rate, peak RSS against --ram.\n\n"
        "With a Stable Diffusion checkpoint (-m), the diffusion benchmark: one image (the\n"
        "model's default steps and size, or --steps, -W, -H) at each --budgets entry (0: fully\n"
        "resident), between two measurements of the device (random 4 MiB reads of the file);\n"
        "prints seconds per image and per step, text / decode seconds, VAE tiles, peak RSS\n"
        "against the budget, bytes read per step, read GB/s, time waiting on reads, and the\n"
        "ratios to the resident run and to max(resident step, bytes per step / device GB/s).\n"
        "A budget that cannot work is listed with its minimum. --json: one object; the plot of\n"
        "time against budget goes to --out or MODEL.budgets.svg.\n\n"
        "--io-only writes a scratch archive of random experts (--size, checked against free\n"
        "space, removed afterwards) in --dir, then for expert sizes 2, 7 and 19 MB and queue\n"
        "depths 1..32 measures random expert reads through the expert cache at a 100% miss rate\n"
        "and, interleaved in the same run, plain O_DIRECT reads of the same block size and queue\n"
        "depth without the cache (pread threads and io_uring; the better is the device's limit).\n"
        "Prints both and their ratio; --json prints one object per line with expert_bytes,\n"
        "queue_depth, cache_GBps, raw_GBps and ratio (and raw_pread_GBps, raw_uring_GBps).",
    .flags = BenchFlags(),
    .short_flags = {{"-W", "--width"}, {"-H", "--height"}},
    .run = RunBench,
});

}  // namespace
}  // namespace sluice::cli
