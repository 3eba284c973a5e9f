// `sluice bench --serve`: see cli/bench_serve_cmd.h and docs/bench.md.
#include "cli/bench_serve_cmd.h"

#include <gflags/gflags.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "bench/bench_memory.h"
#include "bench/bench_model.h"
#include "cli/bench_model_cmd.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "cli/routing_flags.h"
#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "core/base/str_cat.h"
#include "io/model_open.h"
#include "server/serve_bench.h"

DEFINE_string(serve, "",
              "bench: the serving benchmark at these numbers of concurrent streams (e.g. "
              "1,2,4,8): aggregate and per-stream tok/s, bytes read per token and the bound.");
DECLARE_int32(prompt_tokens);
DECLARE_int32(n_predict);
DECLARE_int64(seed);
DECLARE_bool(json);
DECLARE_string(device_bytes);
DECLARE_int32(device_qd);
DECLARE_string(model);
DECLARE_string(preset);

namespace sluice::cli {
namespace {

Result<std::vector<int>> ParseLevels(const std::string& list) {
  std::vector<int> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    const std::string item =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > 256) {
      return InvalidArgument("--serve '", list, "': '", item, "' is not a stream count 1..256");
    }
    out.push_back(static_cast<int>(v));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

struct LevelResult {
  server::ServeLevel level;
  double device_GBps = 0;  // mean of the probes before and after
  uint64_t peak_rss = 0;
  uint64_t budget = 0;
};

Result<LevelResult> RunLevel(const std::string& path, int streams, uint64_t device_bytes,
                             uint64_t seed) {
  ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(path));
  ASSIGN_OR_RETURN(RoutingSetup routing, RoutingFromFlags(*model));
  ASSIGN_OR_RETURN(EngineOptions eo, EngineOptionsFromFlags());
  // With --preset, --experts sized the synthetic archive; it is not experts per token there.
  if (FLAGS_model.empty() && !FLAGS_preset.empty()) eo.experts_per_token = 0;
  eo.routing_hook = routing.hook.get();
  eo.max_sequences = streams;
  // Several streams churn an LRU cache (each step's union of experts pushes out the hot set);
  // the frequency-aware policy is the serving default, for every level alike.
  if (CachePolicyFlagIsDefault()) eo.cache_policy = EvictionPolicyKind::kLfuDecay;
  if (BatchFlagIsDefault()) eo.batch_size = kDefaultServeBatch;  // as `sluice serve` runs
  eo.batch_size = std::max(eo.batch_size, streams);
  LevelResult r;
  ASSIGN_OR_RETURN(DeviceProbe before, ProbeDevice(*model, FLAGS_device_qd, device_bytes, seed));
  ResetPeakRss();
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(std::move(model), eo));
  r.budget = engine->memory_plan().budget_bytes;
  LOG(INFO) << "bench --serve: " << streams << " stream(s), " << FLAGS_prompt_tokens << " prompt + "
            << FLAGS_n_predict
            << " decoded tokens each; memory: " << DescribeMemoryPlan(engine->memory_plan());
  ASSIGN_OR_RETURN(r.level,
                   server::RunServeLevel(engine.get(), {.streams = streams,
                                                        .prompt_tokens = FLAGS_prompt_tokens,
                                                        .decode_tokens = FLAGS_n_predict,
                                                        .seed = seed}));
  r.peak_rss = PeakRssBytes();
  ASSIGN_OR_RETURN(DeviceProbe after,
                   ProbeDevice(engine->model(), FLAGS_device_qd, device_bytes, seed + 1));
  r.device_GBps = (before.GBps + after.GBps) / 2;
  return r;
}

}  // namespace

const std::vector<const char*>& ServeBenchFlags() {
  static const std::vector<const char*> flags = {"serve"};
  return flags;
}

int RunServeBenchCommand() {
  Result<std::vector<int>> levels = ParseLevels(FLAGS_serve);
  if (!levels.ok()) return Fail(levels.status().message());
  if (FLAGS_n_predict < 2) FLAGS_n_predict = 32;
  Result<uint64_t> device_bytes = ParseByteSize(FLAGS_device_bytes);
  if (!device_bytes.ok()) return Fail("--device-bytes: " + device_bytes.status().message());
  Result<std::string> path = BenchModelPath();
  if (!path.ok()) return Fail(path.status().ToString());
  const uint64_t seed = FLAGS_seed < 0 ? 1 : static_cast<uint64_t>(FLAGS_seed);
  std::vector<LevelResult> results;
  for (int streams : *levels) {
    Result<LevelResult> r = RunLevel(*path, streams, *device_bytes, seed);
    if (!r.ok()) return Fail(r.status().ToString());
    results.push_back(*r);
  }
  const double base_bpt = results.front().level.bytes_per_token;
  if (!FLAGS_json) {
    std::printf("serving benchmark: %s\n", path->c_str());
    std::printf(
        "each stream: %d random prompt tokens, then %d tokens sampled; every level on a fresh "
        "engine;\ndecode-only steps measured; bound = device GB/s / bytes read per token; "
        "GB = 1e9 bytes\n\n",
        FLAGS_prompt_tokens, FLAGS_n_predict);
    std::printf("%7s %9s %15s %9s %9s %10s %9s %7s %7s %6s %14s\n", "streams", "tok/s",
                "per stream", "slow/fast", "MB/token", "vs 1st", "bound", "ratio", "device", "hits",
                "peak RSS");
  }
  for (const LevelResult& r : results) {
    const server::ServeLevel& l = r.level;
    const double lo = *std::min_element(l.stream_tok_s.begin(), l.stream_tok_s.end());
    const double hi = *std::max_element(l.stream_tok_s.begin(), l.stream_tok_s.end());
    const double bound = l.bytes_per_token > 0 ? r.device_GBps * 1e9 / l.bytes_per_token : 0;
    const double ratio = bound > 0 ? l.aggregate_tok_s / bound : 0;
    const double vs_first = base_bpt > 0 ? l.bytes_per_token / base_bpt : 0;
    if (FLAGS_json) {
      std::printf(
          "{\"streams\": %d, \"aggregate_tok_s\": %.4f, \"stream_tok_s_min\": %.4f, "
          "\"stream_tok_s_max\": %.4f, \"bytes_per_token\": %.0f, \"bytes_per_token_vs_first\": "
          "%.4f, \"device_GBps\": %.4f, \"bound_tok_s\": %.4f, \"ratio_to_bound\": %.4f, "
          "\"hit_rate\": %.4f, \"decode_steps\": %lld, \"decoded_tokens\": %lld, "
          "\"peak_rss_bytes\": %llu, \"ram_budget_bytes\": %llu}\n",
          l.streams, l.aggregate_tok_s, lo, hi, l.bytes_per_token, vs_first, r.device_GBps, bound,
          ratio, l.hit_rate, static_cast<long long>(l.steps),
          static_cast<long long>(l.decoded_tokens), static_cast<unsigned long long>(r.peak_rss),
          static_cast<unsigned long long>(r.budget));
      continue;
    }
    std::printf(
        "%7d %9.3f %6.3f..%-6.3f %9.2f %9.1f %10.3f %9.3f %7.3f %7.3f %5.0f%% %14s\n", l.streams,
        l.aggregate_tok_s, lo, hi, hi > 0 ? lo / hi : 0, l.bytes_per_token / 1e6, vs_first, bound,
        ratio, r.device_GBps, 100 * l.hit_rate,
        (FormatBytes(r.peak_rss) + " / " + (r.budget ? FormatBytes(r.budget) : "-")).c_str());
  }
  return 0;
}

}  // namespace sluice::cli
