#include "moe/routing_spec.h"

#include <cstdlib>
#include <string>
#include <utility>

namespace sluice {

std::string RoutingSpec::ToString() const {
  switch (kind) {
    case Kind::kModel:
      return "model";
    case Kind::kSynthetic:
      return "synthetic:" + synthetic.ToString();
    case Kind::kTrace:
      return StrCat("trace:", trace_path, cycle ? ",cycle" : "",
                    predict != kDefaultPredictAccuracy ? StrCat(",predict=", predict) : "");
  }
  return "?";
}

Result<RoutingSpec> ParseRoutingSpec(std::string_view text) {
  RoutingSpec spec;
  if (text == "model" || text == "router") return spec;
  if (text == "synthetic" || text.starts_with("synthetic:")) {
    spec.kind = RoutingSpec::Kind::kSynthetic;
    std::string_view params = text.size() > 9 ? text.substr(10) : std::string_view();
    ASSIGN_OR_RETURN(spec.synthetic, SyntheticRoutingParams::Parse(params));
    return spec;
  }
  if (text.starts_with("trace:")) {
    spec.kind = RoutingSpec::Kind::kTrace;
    std::string_view path = text.substr(6);
    // Options trail the path: ",cycle" and ",predict=P" in any order.
    for (;;) {
      if (path.ends_with(",cycle")) {
        spec.cycle = true;
        path.remove_suffix(6);
        continue;
      }
      const size_t p = path.rfind(",predict=");
      if (p == std::string_view::npos || path.find(',', p + 1) != std::string_view::npos) break;
      const std::string value(path.substr(p + 9));
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
        return InvalidArgument("--routing trace: predict=", value, ": expected a number in [0, 1]");
      }
      spec.predict = v;
      path = path.substr(0, p);
    }
    if (path.empty()) return InvalidArgument("--routing trace: needs a file (trace:FILE)");
    spec.trace_path = std::string(path);
    return spec;
  }
  return InvalidArgument("--routing '", text,
                         "': expected model, synthetic[:key=value,...] or "
                         "trace:FILE[,cycle][,predict=P]");
}

Result<RoutingSpec> ResolveRoutingSpec(std::string_view flag_value, const Metadata& metadata) {
  if (!flag_value.empty()) return ParseRoutingSpec(flag_value);
  ASSIGN_OR_RETURN(std::string fallback, metadata.GetStringOr(kMetaDefaultRouting, "model"));
  Result<RoutingSpec> spec = ParseRoutingSpec(fallback);
  if (!spec.ok()) {
    return InvalidArgument(metadata.source(), ": metadata ", kMetaDefaultRouting, ": ",
                           spec.status().message());
  }
  return spec;
}

Result<RoutingShape> RoutingShapeFromModel(const ModelFile& model) {
  const Metadata& md = model.metadata();
  ASSIGN_OR_RETURN(std::string arch, md.GetString("general.architecture"));
  ASSIGN_OR_RETURN(uint64_t n_layer, md.GetUint(arch + ".block_count"));
  ASSIGN_OR_RETURN(uint64_t k, md.GetUint(arch + ".expert_used_count"));
  // Trailing multi-token-prediction layers are not run (llm/model_config.h).
  ASSIGN_OR_RETURN(uint64_t n_nextn, md.GetUintOr(arch + ".nextn_predict_layers", 0));
  if (n_nextn >= n_layer) {
    return Corrupt(md.source(), ": ", arch, ".nextn_predict_layers = ", n_nextn, " of ", n_layer,
                   " layers");
  }
  RoutingShape shape;
  shape.n_layer = static_cast<int>(n_layer - n_nextn);
  shape.k = static_cast<int>(k);
  for (int layer = 0; layer < shape.n_layer; ++layer) {
    std::optional<ExpertTensors> experts = model.expert_tensors(layer);
    if (!experts) continue;
    int n_expert = static_cast<int>(experts->gate.ne[2]);
    if (shape.n_expert != 0 && shape.n_expert != n_expert) {
      return Unsupported(model.path(), ": layer ", layer, " has ", n_expert,
                         " experts, earlier layers ", shape.n_expert,
                         " (routing traces need one expert count)");
    }
    shape.n_expert = n_expert;
    shape.moe_layers.push_back(layer);
  }
  Status valid = shape.Validate();
  if (!valid.ok()) return InvalidArgument(model.path(), ": ", valid.message());
  return shape;
}

Status RoutingSetup::status() const {
  if (replay != nullptr && !replay->status().ok()) return replay->status();
  if (recorder != nullptr && !recorder->status().ok()) return recorder->status();
  return Status::Ok();
}

Status RoutingSetup::Finish() {
  RETURN_IF_ERROR(status());
  if (recorder == nullptr) return Status::Ok();
  Status st = recorder->Finish();
  recorder = nullptr;
  return st;
}

Result<RoutingSetup> MakeRouting(const RoutingSpec& spec, const RoutingShape& shape,
                                 const std::string& record_path, const std::string& source) {
  RETURN_IF_ERROR(shape.Validate());
  RoutingSetup setup;
  setup.spec = spec;
  auto chain = std::make_unique<RoutingHookChain>();
  switch (spec.kind) {
    case RoutingSpec::Kind::kModel:
      setup.description = "model (the model's own router)";
      break;
    case RoutingSpec::Kind::kSynthetic: {
      chain->Add(std::make_unique<SyntheticRoutingHook>(spec.synthetic, shape));
      const SyntheticRoutingParams& p = spec.synthetic;
      setup.description =
          StrCat("synthetic (reuse ", p.reuse, ", hot set ", p.hot_fraction * 100,
                 "% of experts carrying ", p.hot_share * 100, "%, recall ", p.recall, " over ",
                 p.recall_window, " tokens, next-layer prediction ", p.predict * 100,
                 "% right, seed ", p.seed, ")");
      break;
    }
    case RoutingSpec::Kind::kTrace: {
      ASSIGN_OR_RETURN(RoutingTrace trace, RoutingTrace::Read(spec.trace_path));
      auto shared = std::make_shared<const RoutingTrace>(std::move(trace));
      ASSIGN_OR_RETURN(auto replay,
                       TraceReplayHook::Create(shared, spec.trace_path, shape,
                                               spec.cycle ? TraceReplayHook::EndMode::kCycle
                                                          : TraceReplayHook::EndMode::kError,
                                               spec.predict));
      setup.replay = replay.get();
      setup.description = StrCat("trace ", spec.trace_path, " (", shared->n_token(), " tokens",
                                 spec.cycle ? ", cycled" : "", ", next-layer prediction ",
                                 spec.predict * 100, "% right)");
      chain->Add(std::move(replay));
      break;
    }
  }
  if (!record_path.empty()) {
    ASSIGN_OR_RETURN(auto recorder, TraceRecorderHook::Create(record_path, shape, source));
    setup.recorder = recorder.get();
    setup.description += ", recorded to " + record_path;
    chain->Add(std::move(recorder));
  }
  if (!chain->empty()) setup.hook = std::move(chain);
  return setup;
}

}  // namespace sluice
