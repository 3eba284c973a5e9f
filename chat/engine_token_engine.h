// EngineTokenEngine: the real engine (llm/engine.h) seen through the TokenEngine interface that a
// ChatSession drives (chat/chat_session.h), with the sampler that picks each next token.
//
// Cutting the KV cache back (TruncateKv) is Engine::Truncate: exact and free, since a position's
// keys and values depend only on the tokens before it.
//
// Non-goals: owning the engine. Thread-safety: one thread, like the engine.
#pragma once

#include <cstdint>
#include <span>

#include "chat/chat_session.h"
#include "chat/sampler.h"
#include "llm/engine.h"

namespace sluice {

class EngineTokenEngine : public TokenEngine {
 public:
  // `engine` and `sequence` must outlive this object. sequence: the conversation's own
  // (Engine::NewSequence), or null for the engine's.
  EngineTokenEngine(Engine* engine, const SamplerOptions& sampling, Sequence* sequence = nullptr);

  int context_length() const override;
  std::span<const int32_t> kv_tokens() const override { return seq_->tokens(); }
  Status TruncateKv(int n) override;
  Status Append(std::span<const int32_t> tokens) override;
  Result<int32_t> SampleNext() override;
  EngineCounters counters() const override;
  const SamplerOptions& sampler_options() const { return sampler_.options(); }

 private:
  Engine* engine_;
  Sequence* seq_;
  Sampler sampler_;
};

}  // namespace sluice
