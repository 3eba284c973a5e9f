// RoutingHook: lets something other than the model's router decide (or observe) which experts a
// token uses. The engine calls it once per (token, MoE layer), after the router has chosen.
// Uses: recording a routing trace (--record-trace), replaying one (--routing trace:FILE), and
// synthetic routing with realistic skew and reuse for random-weight models (--routing synthetic).
// The compute always runs on whatever experts the route names.
// A hook that replaces the router also stands in for the engine's next-layer predictor
// (PredictRoute), since the model's router cannot foresee routes it does not make.
//
// Thread-safety: called from the engine's thread only, in token order within a layer.
#pragma once

#include <cstdint>
#include <span>

#include "core/base/status.h"

namespace sluice {

// Upper bound on experts per token across supported models (Qwen3.5: 10 routed).
inline constexpr int kMaxExpertsPerToken = 16;

struct Route {
  int k = 0;                                // experts used by this token
  int ids[kMaxExpertsPerToken] = {};        // expert ids, distinct, in [0, n_expert)
  float weights[kMaxExpertsPerToken] = {};  // mixing weights of the expert outputs
};

class RoutingHook {
 public:
  virtual ~RoutingHook() = default;
  // layer: the layer index; token_index: the token's index in the whole run (0, 1, 2, ... across
  // prompt and generated tokens, counted by the engine); router_probs: the router's gating
  // probabilities over all experts of the layer (n_expert). May rewrite *route (ids, weights, k
  // with k <= the engine's k).
  virtual void OnRoute(int layer, int64_t token_index, std::span<const float> router_probs,
                       Route* route) = 0;

  // Called while decoding layer `layer - 1` of token `token_index`, before OnRoute(layer, ...),
  // so the engine can start reading the experts `layer` will probably use. A hook that decides
  // routes itself (synthetic, trace replay) fills *predicted with a stand-in for a real
  // predictor: the route it will give, each expert kept with a set accuracy, the others replaced
  // (moe/route_prediction.h). Returns false when it does not decide routes; the engine then
  // predicts with the model's own next-layer router. Must not change what OnRoute will return.
  virtual bool PredictRoute(int layer, int64_t token_index, Route* predicted) {
    (void)layer;
    (void)token_index;
    (void)predicted;
    return false;
  }

  // The sequence the following OnRoute and PredictRoute calls are for. Several conversations can
  // decode in one step (the server's batching); a hook whose routes depend on the tokens before
  // (synthetic routing's reuse of the previous token's experts) keeps that history per stream.
  // Stream ids are small (a sequence's index in its engine); 0 until told otherwise.
  virtual void SetStream(int stream) { (void)stream; }

  // Checked by the engine right after each OnRoute: an error stops the forward pass with it
  // (a replayed trace that ran out; a recorder that could not write).
  virtual Status status() const { return Status::Ok(); }
};

}  // namespace sluice
