#include "bench/bench_model.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "bench/bench_memory.h"
#include "bench/io_bench.h"
#include "chat/sampler.h"
#include "core/base/clock.h"
#include "core/base/random.h"
#include "io/block_read_plan.h"
#include "io/model_open.h"
#include "llm/engine.h"
#include "llm/memory_plan.h"
#include "moe/expert_cache.h"

namespace sluice {
namespace {}  // namespace

Result<DeviceProbe> ProbeDevice(const ModelFile& model, int queue_depth, uint64_t total_bytes,
                                uint64_t seed) {
  // The reads the expert cache issues for random experts: one per archive expert block; for a
  // GGUF, the gate matrix's read (its three matrices are read separately, each about this size).
  ASSIGN_OR_RETURN(RoutingShape shape, RoutingShapeFromModel(model));
  const std::vector<int>& layers = shape.moe_layers;
  SynthRng rng(seed);
  RawReadOptions raw;
  raw.path = model.file_paths()[0];
  raw.queue_depth = queue_depth;
  raw.total_bytes = total_bytes;
  for (int i = 0; i < 4096; ++i) {
    const int layer = layers[rng.Below(static_cast<uint32_t>(layers.size()))];
    const int expert = static_cast<int>(rng.Below(static_cast<uint32_t>(shape.n_expert)));
    ASSIGN_OR_RETURN(BlockReadPlan plan,
                     PlanBlockRead(ExpertBlock(model.LocateExpert(layer, expert))));
    const BlockRead& read = plan.reads[0];
    if (read.file_index != 0) continue;
    if (raw.read_bytes == 0) raw.read_bytes = read.length;
    if (read.length != raw.read_bytes) continue;  // one size per probe (all equal in archives)
    raw.offsets.push_back(read.offset);
  }
  ASSIGN_OR_RETURN(RawReadResult r, MeasureRawReads(raw));
  DeviceProbe p;
  p.GBps = r.GBps;
  p.read_bytes = raw.read_bytes;
  p.queue_depth = queue_depth;
  p.reads = r.reads;
  p.direct = r.direct;
  return p;
}

Result<BenchRun> RunEngineBench(const std::string& model_path, const BenchRunOptions& o) {
  ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(model_path));
  ASSIGN_OR_RETURN(RoutingShape shape, RoutingShapeFromModel(*model));
  std::string source = model->metadata().GetStringOr("general.name", model_path).value();
  ASSIGN_OR_RETURN(RoutingSetup routing, MakeRouting(o.routing, shape, o.record_trace,
                                                     "recorded by sluice bench on " + source));
  if (routing.replay != nullptr) {
    RETURN_IF_ERROR(routing.replay->CheckLength(o.prompt_tokens + o.decode_tokens));
  }
  EngineOptions eo = o.engine;
  eo.routing_hook = routing.hook.get();
  BenchRun run;
  run.expert_source = ExpertSourceName(eo.expert_source);
  run.routing = routing.description;
  run.ram_budget_bytes = eo.ram_budget_bytes;
  run.prompt_tokens = o.prompt_tokens;
  run.decode_tokens = o.decode_tokens;

  ResetPeakRss();
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Create(std::move(model), eo));
  run.memory_plan = DescribeMemoryPlan(engine->memory_plan());
  run.expert_cache_bytes = engine->memory_plan().expert_cache_bytes;
  run.dense_bytes = engine->memory_plan().dense_bytes;

  // Random prompt ids: the content does not matter to synthetic routing, and for a real model's
  // router random ids route about as diversely as text does.
  SynthRng rng(o.seed);
  std::vector<int32_t> prompt(o.prompt_tokens);
  for (int32_t& id : prompt) id = static_cast<int32_t>(rng.Below(engine->config().n_vocab));
  Sampler sampler({.temperature = 1.0f,
                   .top_k = 0,
                   .top_p = 1.0f,
                   .min_p = 0.0f,
                   .repeat_penalty = 1.0f,
                   .repeat_last_n = 64,
                   .seed = o.seed});

  if (o.warm) {
    const Clock::time_point warm_start = Clock::now();
    RETURN_IF_ERROR(engine->PreloadExperts());
    run.warm_s = Seconds(Clock::now() - warm_start);
    engine->ResetCounters();
  }
  const Clock::time_point start = Clock::now();
  RETURN_IF_ERROR(engine->Prefill(prompt));
  int32_t id = sampler.Sample(engine->logits(), engine->history());
  run.ttft_s = Seconds(Clock::now() - start);
  const EngineCounters prefill = engine->counters();
  run.prefill_tok_s = o.prompt_tokens / (prefill.prefill_ns / 1e9);
  run.prefill_bytes_read = prefill.cache.bytes_read;

  engine->ResetCounters();
  const bool cached = engine->expert_cache() != nullptr;
  auto bytes_read_now = [&] {
    return cached ? engine->counters().cache.bytes_read : ProcessReadBytes();
  };
  const uint64_t bytes0 = bytes_read_now();
  const int rounds = std::clamp(o.rounds, 1, std::max(1, o.decode_tokens));
  // The callback's own memory (a device probe's read buffers: queue depth x expert size) is the
  // bench's, not the engine's: keep the peak so far, run it, then restart the peak from there.
  uint64_t peak = 0;
  auto between = [&]() -> Status {
    if (!o.between_rounds) return Status::Ok();
    peak = std::max(peak, PeakRssBytes());
    Status st = o.between_rounds(engine->model());
    ResetPeakRss();
    return st;
  };
  RETURN_IF_ERROR(between());
  int decoded = 0;
  for (int r = 0; r < rounds; ++r) {
    BenchRound round;
    round.tokens = o.decode_tokens * (r + 1) / rounds - decoded;
    const uint64_t round_bytes0 = bytes_read_now();
    const Clock::time_point round_start = Clock::now();
    for (int i = 0; i < round.tokens; ++i) {
      RETURN_IF_ERROR(engine->Decode(id));
      id = sampler.Sample(engine->logits(), engine->history());
    }
    round.seconds = Seconds(Clock::now() - round_start);
    round.bytes_read = bytes_read_now() - round_bytes0;
    decoded += round.tokens;
    run.decode_seconds += round.seconds;
    run.rounds.push_back(round);
    RETURN_IF_ERROR(between());
  }
  const EngineCounters c = engine->counters();
  run.decode_tok_s = o.decode_tokens / run.decode_seconds;
  run.decode_bytes_read = bytes_read_now() - bytes0;
  run.bytes_read_per_token = static_cast<double>(run.decode_bytes_read) / o.decode_tokens;
  run.read_GBps = run.decode_bytes_read / run.decode_seconds / 1e9;
  if (cached) {
    const uint64_t lookups = c.cache.hits + c.cache.misses;
    run.hit_rate = lookups > 0 ? static_cast<double>(c.cache.hits) / lookups : 0;
    // The cache's wait counts only blocking on reads; the rest of the time in Acquire is
    // verifying the expert's checksum (on this thread, by its first user).
    run.io_wait_fraction = c.cache.io_wait_ns / 1e9 / run.decode_seconds;
    run.verify_fraction =
        (c.moe.expert_wait_ns - std::min(c.moe.expert_wait_ns, c.cache.io_wait_ns)) / 1e9 /
        run.decode_seconds;
    run.device_busy_fraction = c.cache.busy_ns / 1e9 / run.decode_seconds;
    run.attention_fraction = c.attention_ns / 1e9 / run.decode_seconds;
    run.dense_ffn_fraction = c.dense_ffn_ns / 1e9 / run.decode_seconds;
    run.expert_compute_fraction = c.moe.expert_compute_ns / 1e9 / run.decode_seconds;
    // Counters were reset before decoding: these are the decode's own.
    run.prefetch_next = eo.prefetch_next;
    if (c.moe.predicted_experts > 0) {
      run.prediction_accuracy = static_cast<double>(c.moe.predicted_used) / c.moe.predicted_experts;
    }
    run.speculative_per_token = static_cast<double>(c.moe.speculative_reads) / o.decode_tokens;
    if (c.moe.speculative_reads > 0) {
      run.speculative_used = static_cast<double>(c.moe.speculative_used) / c.moe.speculative_reads;
    }
    // Every load reads one whole expert block (same size in every layer), so the bytes of the
    // loads never used are their share of all loads.
    const uint64_t loads = c.cache.misses + c.cache.prefetch_wasted;
    if (loads > 0) {
      run.wasted_bytes_per_token =
          run.bytes_read_per_token * static_cast<double>(c.cache.prefetch_wasted) / loads;
    }
  } else {
    run.io_wait_fraction = -1;
  }
  run.peak_rss_bytes = std::max(peak, PeakRssBytes());
  RETURN_IF_ERROR(routing.Finish());
  return run;
}

}  // namespace sluice
