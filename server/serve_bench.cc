#include "server/serve_bench.h"

#include <algorithm>
#include <random>

#include "core/base/clock.h"
#include "server/batch_scheduler.h"

namespace sluice::server {

Result<ServeLevel> RunServeLevel(Engine* engine, const ServeLevelOptions& o) {
  if (o.streams < 1 || o.prompt_tokens < 1 || o.decode_tokens < 2) {
    return InvalidArgument("serve bench: ", o.streams, " streams, ", o.prompt_tokens,
                           " prompt and ", o.decode_tokens,
                           " decoded tokens (need >= 1, >= 1, >= 2)");
  }
  if (o.prompt_tokens + o.decode_tokens >= engine->n_ctx()) {
    return InvalidArgument("serve bench: ", o.prompt_tokens, " + ", o.decode_tokens,
                           " tokens do not fit the context of ", engine->n_ctx());
  }
  // Tokens are decoded by ids only; no text is needed, so the tokenizer is a stand-in.
  ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                   Tokenizer::FromMetadata(engine->model().metadata()));
  ASSIGN_OR_RETURN(std::unique_ptr<BatchScheduler> scheduler,
                   BatchScheduler::Create(engine, tokenizer.get(),
                                          {.max_sequences = o.streams, .max_queued = o.streams}));
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> token(0, engine->config().n_vocab - 1);
  const uint64_t start = NowNs();
  std::vector<std::shared_ptr<Generation>> gens;
  for (int s = 0; s < o.streams; ++s) {
    GenerationRequest r;
    for (int i = 0; i < o.prompt_tokens; ++i) r.prompt.push_back(token(rng));
    r.sampling = SamplerOptions{.temperature = 0.8f, .seed = o.seed * 1000 + s};
    r.max_tokens = o.decode_tokens;  // no stop tokens: every stream decodes them all
    ASSIGN_OR_RETURN(std::shared_ptr<Generation> g, scheduler->Submit(std::move(r)));
    gens.push_back(std::move(g));
  }
  ServeLevel level;
  level.streams = o.streams;
  for (auto& g : gens) {
    for (;;) {
      Generation::Update u = g->Wait(1000);
      if (!u.done) continue;
      if (u.reason == FinishReason::kError) return u.error;
      const GenerationStats& st = u.stats;
      level.generated_tokens += st.generated_tokens;
      level.stream_tok_s.push_back(st.decode_ns > 0 ? (st.generated_tokens - 1) * 1e9 / st.decode_ns
                                                    : 0.0);
      break;
    }
  }
  level.wall_seconds = (NowNs() - start) / 1e9;
  const SchedulerMetrics m = scheduler->metrics();
  level.decoded_tokens = m.decode_step_tokens;
  level.steps = m.decode_steps;
  level.seconds = m.decode_step_ns / 1e9;
  level.aggregate_tok_s = level.seconds > 0 ? level.decoded_tokens / level.seconds : 0;
  level.bytes_read = m.decode_step_bytes_read;
  level.bytes_per_token =
      level.decoded_tokens > 0 ? static_cast<double>(level.bytes_read) / level.decoded_tokens : 0;
  const double lookups = static_cast<double>(m.decode_step_hits + m.decode_step_misses);
  level.hit_rate = lookups > 0 ? m.decode_step_hits / lookups : 1.0;
  return level;
}

}  // namespace sluice::server
