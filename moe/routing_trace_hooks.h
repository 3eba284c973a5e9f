// RoutingHooks around routing traces (moe/routing_trace.h):
//   TraceRecorderHook  `--record-trace FILE`: records the routes the engine uses, unchanged.
//   TraceReplayHook    `--routing trace:FILE[,cycle]`: replaces the router's choice by the trace's.
//   RoutingHookChain   runs several hooks in order (replay or synthetic first, recorder last, so
//                      the recording holds what the engine really used).
//
// RoutingHook::OnRoute cannot return an error, so both trace hooks keep a sticky Status that the
// caller checks after a run (status()); the recorder's Finish() returns it too. The replay hook's
// CheckLength() lets a caller that knows how many tokens it will run fail before it starts.
//
// Non-goals: re-ordering, filtering or merging traces. Thread-safety: as RoutingHook (engine
// thread only).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "moe/route_prediction.h"
#include "moe/routing_hook.h"
#include "moe/routing_trace.h"

namespace sluice {

class TraceRecorderHook : public RoutingHook {
 public:
  // Creates PATH.tmp now (so a bad path fails before the model runs); `source` is stored in the
  // trace header (e.g. the model's name).
  static Result<std::unique_ptr<TraceRecorderHook>> Create(const std::string& path,
                                                           const RoutingShape& shape,
                                                           const std::string& source);
  // Buffers the route until its token has a route at every MoE layer (batched prompt processing
  // calls layer by layer over the whole batch), then appends the token to the file.
  void OnRoute(int layer, int64_t token_index, std::span<const float> router_probs,
               Route* route) override;
  // Writes the file under its final name. Errors: a sticky error from OnRoute (write failure, a
  // layer without experts, a (token, layer) routed twice or after its token was written) or
  // tokens left incomplete (the message names the first and the missing layer).
  Status Finish();
  Status status() const override { return status_; }
  int64_t tokens_recorded() const { return writer_ ? writer_->tokens_written() : 0; }

 private:
  struct Pending {
    std::vector<Route> routes;  // (n_moe_layer)
    std::vector<bool> filled;   // (n_moe_layer)
    int n_filled = 0;
  };
  void Flush();

  RoutingShape shape_;
  std::unique_ptr<RoutingTraceWriter> writer_;
  std::map<int64_t, Pending> pending_;  // by token index; bounded by the prompt batch size
  int64_t next_token_ = -1;             // the next token to append; -1 before the first route
  Status status_;
};

class TraceReplayHook : public RoutingHook {
 public:
  enum class EndMode {
    kError,  // a token past the end of the trace is an error
    kCycle,  // token t replays trace token t mod n_token
  };
  // Errors (InvalidArgument) when the trace's shape differs from the model's: n_layer, the MoE
  // layer list, n_expert, or a trace k above the model's k (a smaller k replays fewer experts
  // per token, which is allowed). The message names the trace file and both shapes.
  static Result<std::unique_ptr<TraceReplayHook>> Create(
      std::shared_ptr<const RoutingTrace> trace, const std::string& trace_path,
      const RoutingShape& model, EndMode end_mode,
      double predict_accuracy = kDefaultPredictAccuracy);
  // OutOfRange-style error (InvalidArgument) when running `n_tokens` tokens (indices 0..n-1)
  // would pass the end of the trace in kError mode.
  Status CheckLength(int64_t n_tokens) const;
  // Token t takes the trace's route for token t (mod n_token when cycling). Past the end in
  // kError mode status() becomes an error, which stops the run at that token.
  void OnRoute(int layer, int64_t token_index, std::span<const float> router_probs,
               Route* route) override;
  // The trace's route for that token corrupted to predict_accuracy (moe/route_prediction.h);
  // false past the end of the trace in kError mode.
  bool PredictRoute(int layer, int64_t token_index, Route* predicted) override;
  Status status() const override { return status_; }
  int64_t tokens_replayed() const { return tokens_replayed_; }

 private:
  TraceReplayHook(double predict_accuracy) : predictor_(predict_accuracy, 1) {}
  // Trace token for run token t, or -1 past the end in kError mode.
  int64_t TraceToken(int64_t t) const;
  RoutePredictionSim predictor_;
  std::shared_ptr<const RoutingTrace> trace_;
  std::string path_;
  RoutingShape model_;
  EndMode end_mode_ = EndMode::kError;
  int64_t tokens_replayed_ = 0;  // routes replayed at the first MoE layer
  Status status_;
};

// Runs hooks in the order added; owns them.
class RoutingHookChain : public RoutingHook {
 public:
  void Add(std::unique_ptr<RoutingHook> hook) { hooks_.push_back(std::move(hook)); }
  bool empty() const { return hooks_.empty(); }
  void OnRoute(int layer, int64_t token_index, std::span<const float> router_probs,
               Route* route) override {
    for (auto& h : hooks_) h->OnRoute(layer, token_index, router_probs, route);
  }
  void SetStream(int stream) override {
    for (auto& h : hooks_) h->SetStream(stream);
  }
  // The first hook that predicts (the one that decides routes) wins.
  bool PredictRoute(int layer, int64_t token_index, Route* predicted) override {
    for (auto& h : hooks_) {
      if (h->PredictRoute(layer, token_index, predicted)) return true;
    }
    return false;
  }
  // The first error of any hook.
  Status status() const override {
    for (const auto& h : hooks_) RETURN_IF_ERROR(h->status());
    return Status::Ok();
  }

 private:
  std::vector<std::unique_ptr<RoutingHook>> hooks_;
};

}  // namespace sluice
