#include "moe/routing_trace_hooks.h"

#include <utility>

namespace sluice {

Result<std::unique_ptr<TraceRecorderHook>> TraceRecorderHook::Create(const std::string& path,
                                                                     const RoutingShape& shape,
                                                                     const std::string& source) {
  RoutingTraceHeader header;
  header.shape = shape;
  header.source = source.substr(0, kMaxTraceSourceBytes);
  std::unique_ptr<TraceRecorderHook> hook(new TraceRecorderHook());
  hook->shape_ = shape;
  ASSIGN_OR_RETURN(hook->writer_, RoutingTraceWriter::Create(path, header));
  return hook;
}

void TraceRecorderHook::OnRoute(int layer, int64_t token_index, std::span<const float> router_probs,
                                Route* route) {
  (void)router_probs;
  if (!status_.ok()) return;
  const int m = shape_.MoeIndex(layer);
  if (m < 0) {
    status_ = Internal(writer_->path(), ": recording a route at layer ", layer,
                       ", which has no routed experts in ", shape_.ToString());
    return;
  }
  if (next_token_ < 0) next_token_ = token_index;
  if (token_index < next_token_) {
    status_ = Internal(writer_->path(), ": token ", token_index, " routed at layer ", layer,
                       " after it was written (tokens must arrive in order)");
    return;
  }
  Pending& p = pending_[token_index];
  if (p.routes.empty()) {
    p.routes.resize(shape_.n_moe_layer());
    p.filled.assign(shape_.n_moe_layer(), false);
  }
  if (p.filled[m]) {
    status_ = Internal(writer_->path(), ": token ", token_index, " routed twice at layer ", layer);
    return;
  }
  p.routes[m] = *route;
  p.filled[m] = true;
  ++p.n_filled;
  Flush();
}

void TraceRecorderHook::Flush() {
  while (!pending_.empty() && pending_.begin()->first == next_token_ &&
         pending_.begin()->second.n_filled == shape_.n_moe_layer()) {
    Status st = writer_->AppendToken(pending_.begin()->second.routes.data(), shape_.n_moe_layer());
    if (!st.ok()) {
      status_ = st;
      return;
    }
    pending_.erase(pending_.begin());
    ++next_token_;
  }
}

Status TraceRecorderHook::Finish() {
  if (!status_.ok()) return status_;
  if (!pending_.empty()) {
    const auto& [token, p] = *pending_.begin();
    int missing = 0;
    while (missing < shape_.n_moe_layer() && p.filled[missing]) ++missing;
    if (token != next_token_) {
      return Internal(writer_->path(), ": token ", next_token_, " was never routed (", token,
                      " was); ", pending_.size(), " tokens not written");
    }
    return Internal(writer_->path(), ": token ", token, " has no route at layer ",
                    shape_.moe_layers[missing], "; ", pending_.size(), " tokens not written");
  }
  status_ = writer_->Finish();
  return status_;
}

Result<std::unique_ptr<TraceReplayHook>> TraceReplayHook::Create(
    std::shared_ptr<const RoutingTrace> trace, const std::string& trace_path,
    const RoutingShape& model, EndMode end_mode, double predict_accuracy) {
  const RoutingShape& t = trace->shape();
  std::string why;
  if (t.n_layer != model.n_layer) {
    why = StrCat("n_layer ", t.n_layer, " vs ", model.n_layer);
  } else if (t.moe_layers != model.moe_layers) {
    why = "the layers with routed experts differ";
  } else if (t.n_expert != model.n_expert) {
    why = StrCat("n_expert ", t.n_expert, " vs ", model.n_expert);
  } else if (t.k > model.k) {
    why = StrCat("the trace uses ", t.k, " experts per token, the model at most ", model.k);
  }
  if (!why.empty()) {
    return InvalidArgument(trace_path, ": routing trace shape (", t.ToString(),
                           ") does not fit the model (", model.ToString(), "): ", why);
  }
  if (trace->n_token() == 0) return InvalidArgument(trace_path, ": routing trace has no token");
  if (!(predict_accuracy >= 0.0 && predict_accuracy <= 1.0)) {
    return InvalidArgument(trace_path, ": prediction accuracy ", predict_accuracy,
                           " is outside [0, 1]");
  }
  std::unique_ptr<TraceReplayHook> hook(new TraceReplayHook(predict_accuracy));
  hook->trace_ = std::move(trace);
  hook->path_ = trace_path;
  hook->model_ = model;
  hook->end_mode_ = end_mode;
  return hook;
}

Status TraceReplayHook::CheckLength(int64_t n_tokens) const {
  if (end_mode_ == EndMode::kError && n_tokens > trace_->n_token()) {
    return InvalidArgument(path_, ": the routing trace has ", trace_->n_token(),
                           " tokens, this run needs ", n_tokens,
                           " (use --routing trace:FILE,cycle to replay it in a loop)");
  }
  return Status::Ok();
}

int64_t TraceReplayHook::TraceToken(int64_t t) const {
  if (t < trace_->n_token()) return t;
  return end_mode_ == EndMode::kCycle ? t % trace_->n_token() : -1;
}

void TraceReplayHook::OnRoute(int layer, int64_t token_index, std::span<const float> router_probs,
                              Route* route) {
  (void)router_probs;
  const int m = model_.MoeIndex(layer);
  CHECK_GE(m, 0) << "trace replay called for layer " << layer << " without experts";
  const int64_t t = TraceToken(token_index);
  if (t < 0) {
    if (status_.ok()) {
      status_ = InvalidArgument(path_, ": routing trace ended: token ", token_index,
                                " asked for, the trace has ", trace_->n_token(),
                                "; the run stops here (use trace:FILE,cycle to replay it in a "
                                "loop)");
    }
    return;
  }
  *route = trace_->route(t, m);
  if (m == 0) ++tokens_replayed_;
}

bool TraceReplayHook::PredictRoute(int layer, int64_t token_index, Route* predicted) {
  const int m = model_.MoeIndex(layer);
  const int64_t t = TraceToken(token_index);
  if (m < 0 || t < 0) return false;
  predictor_.Predict(trace_->route(t, m), model_.n_expert, predicted);
  return true;
}

}  // namespace sluice
