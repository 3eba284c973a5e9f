// EngineTokenEngine: the real engine (moe/engine.h) seen through the TokenEngine interface that a
// ChatSession drives (moe/chat_session.h), with the sampler that picks each next token.
//
// Cutting the KV cache back (TruncateKv) re-prefills the kept tokens after Engine::Reset(): the
// engine keeps no way to drop positions yet. The session only cuts back when the conversation's
// rendering differs from what was generated (Qwen3 dropping old <think> blocks, a reply whose
// text re-tokenizes differently), and the result is identical to a truncation, only slower.
//
// Non-goals: owning the engine. Thread-safety: one thread, like the engine.
#pragma once

#include <cstdint>
#include <span>

#include "moe/chat_session.h"
#include "moe/engine.h"
#include "moe/sampler.h"

namespace sluice {

class EngineTokenEngine : public TokenEngine {
 public:
  // `engine` must outlive this object.
  EngineTokenEngine(Engine* engine, const SamplerOptions& sampling);

  int context_length() const override;
  int kv_length() const override;
  Status TruncateKv(int n) override;
  Status Append(std::span<const int32_t> tokens) override;
  Result<int32_t> SampleNext() override;
  EngineCounterSnapshot counters() const override;

  // Tokens re-prefilled by TruncateKv so far (the cost of cutting back; /stats shows it).
  int64_t reprefilled_tokens() const { return reprefilled_tokens_; }

 private:
  Engine* engine_;
  Sampler sampler_;
  int64_t reprefilled_tokens_ = 0;
};

}  // namespace sluice
