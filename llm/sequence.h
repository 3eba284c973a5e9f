// Sequence: one conversation's state in the engine, owned by whoever holds it: its KV cache, the
// tokens whose keys and values are in it, and the logits after the last of them. The engine's
// weights, expert cache and scratch are shared by every sequence; any number of sequences
// (within EngineOptions::max_sequences, which the memory plan reserves KV caches for) can use one
// engine, one step at a time.
//
// Truncate(n) is exact and free: a position's keys and values depend only on the tokens before
// it, so chat uses it to drop a cancelled or regenerated reply, or to keep a shared prefix.
// Hybrid models (delta-net layers) also carry a recurrent state, which summarises every token so
// far and cannot be cut back: after Truncate the engine replays the kept tokens before the next
// step (exact, at the cost of a prefill of them). A step that fails midway leaves the state
// marked the same way, so the conversation stays consistent.
//
// Thread-safety: none; a sequence is used by one thread at a time, through its engine.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/base/check.h"
#include "llm/delta_net_block.h"
#include "llm/kv_cache.h"

namespace sluice {

class Engine;

class Sequence {
 public:
  ~Sequence();
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;

  int64_t n_past() const { return static_cast<int64_t>(tokens_.size()); }
  // Small and unique among the engine's live sequences (the engine's own is 0): the routing
  // hook's stream (moe/routing_hook.h).
  int id() const { return id_; }
  // The tokens in the KV cache, in order.
  std::span<const int32_t> tokens() const { return tokens_; }
  // The logits after the last processed token: (n_vocab). Stale after Truncate until the next
  // Prefill/Decode.
  std::span<const float> logits() const { return logits_; }
  // Keeps the first n <= n_past() positions and forgets the rest.
  void Truncate(int64_t n) {
    CHECK(n >= 0 && n <= n_past()) << n << " of " << n_past();
    if (n == n_past()) return;
    tokens_.resize(n);
    if (!state_.empty()) state_stale_ = true;
  }
  void Reset() {
    tokens_.clear();
    state_.Reset();
    state_stale_ = false;
  }
  // Whether the next step first replays the tokens (hybrid models after Truncate).
  bool needs_replay() const { return state_stale_; }

 private:
  friend class Engine;
  explicit Sequence(Engine* engine) : engine_(engine) {}

  Engine* engine_;  // counts its live sequences
  int id_ = 0;
  KvCache kv_;                   // (attention layers, n_ctx) keys and values
  RecurrentState state_;         // delta-net layers' state (hybrid models), else empty
  bool state_stale_ = false;     // state_ does not summarise tokens_: replay before use
  std::vector<int32_t> tokens_;  // (n_past) capacity n_ctx
  std::vector<float> logits_;    // (n_vocab)
};

}  // namespace sluice
