// ReadAhead: the next-layer read-ahead of decoding, in one place. While a layer finishes and the
// next one runs attention, the device would idle: this reads a few of the experts the NEXT layer
// will probably use, guessed with that layer's router applied to this layer's state (or the
// routing hook's prediction), and settles the guess once the next layer has routed (counting how
// good it was and dropping the wrong ones from the cache, so they do not crowd out used experts).
//
// The life of one guess:
//   Guess(next_layer, ...)     reads up to `max_reads` of the predicted experts that are missing
//   ... the next layer's attention runs while they are read ...
//   Settle(next_layer, route)  counts predicted_used / speculative_used, Drops the wrong ones
// A guess for a token that never reaches Settle (the run ended) is dropped by the next Settle.
// docs/benchmarks.md measures what it buys; FIELD-NOTES has the accuracies other engines saw.
//
// Thread-safety: none; the MoE block's thread.
#pragma once

#include <cstdint>

#include "core/ops/linear.h"
#include "core/threads/thread_pool.h"
#include "moe/expert_source.h"
#include "moe/moe_layer.h"
#include "moe/router.h"
#include "moe/routing_hook.h"

namespace sluice {

struct MoeCounters;

class ReadAhead {
 public:
  // router: how the model routes (k = experts per token); max_reads: missing predicted experts
  // read per layer at most (0: off). `source`, `hook` (may be null) and `counters` must outlive
  // this object.
  ReadAhead(const RouterParams& router, int max_reads, ExpertSource* source, RoutingHook* hook,
            MoeCounters* counters)
      : router_(router), max_reads_(max_reads), source_(source), hook_(hook), counters_(counters) {}

  // Whether guesses are worth making: on, a source that reads, and a cache that holds this
  // layer's experts, the next layer's and as many again (a smaller one would evict its own reads
  // before their use).
  bool enabled() const;

  // Predicts `layer`'s route for token `token` from `xb` (1, n_embd), normalised as the previous
  // layer's MoE input, and starts reads for the first missing ones. router_logits: (n_expert)
  // scratch.
  // weights: that layer's router (and its biases).
  void Guess(int layer, const MoeLayerWeights& weights, const float* xb, int64_t token,
             float* router_logits, int n_expert, ThreadPool* pool);
  // `layer` routed token `token` to `actual`: scores the guess made for it and drops the wrong
  // reads. Nothing to do when no guess was made for that layer.
  void Settle(int layer, int64_t token, const Route& actual);

 private:
  const RouterParams router_;
  const int max_reads_;
  ExpertSource* source_;
  RoutingHook* hook_;
  MoeCounters* counters_;

  Route guess_;                          // the last prediction...
  int reads_[kMaxExpertsPerToken] = {};  // ...the experts of it read ahead...
  int n_reads_ = 0;
  int layer_ = -1;      // ...its layer (-1: none pending)
  int64_t token_ = -1;  // ...and token
};

}  // namespace sluice
