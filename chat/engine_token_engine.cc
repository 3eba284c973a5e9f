#include "chat/engine_token_engine.h"

namespace sluice {

EngineTokenEngine::EngineTokenEngine(Engine* engine, const SamplerOptions& sampling,
                                     Sequence* sequence)
    : engine_(engine),
      seq_(sequence != nullptr ? sequence : &engine->sequence()),
      sampler_(sampling) {
  CHECK(engine_ != nullptr);
}

int EngineTokenEngine::context_length() const { return static_cast<int>(engine_->n_ctx()); }

Status EngineTokenEngine::TruncateKv(int n) {
  CHECK_GE(n, 0);
  CHECK_LE(n, kv_length());
  seq_->Truncate(n);
  return Status::Ok();
}

Status EngineTokenEngine::Append(std::span<const int32_t> tokens) {
  if (tokens.size() == 1) return engine_->Decode(*seq_, tokens[0]);
  return engine_->Prefill(*seq_, tokens);
}

Result<int32_t> EngineTokenEngine::SampleNext() {
  return sampler_.Sample(seq_->logits(), seq_->tokens());
}

EngineCounters EngineTokenEngine::counters() const { return engine_->counters(); }

}  // namespace sluice
