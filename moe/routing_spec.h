// Choosing who routes: the model's router, synthetic routing, or a recorded trace; and recording.
// Turns the user's `--routing` and `--record-trace` values into a RoutingHook for the engine.
//
//   --routing model                      the model's own router (default for real models)
//   --routing synthetic[:k=v,...]        SyntheticRouting with those params (default for models
//                                        whose metadata says sluice.default_routing = synthetic...)
//   --routing trace:FILE[,cycle][,predict=P]  replay FILE; past its end: error, or loop with
//                                        ,cycle; predict: accuracy of the simulated next-layer
//                                        predictor (moe/route_prediction.h)
//   --record-trace FILE                  record what the engine used (after any of the above)
//
// Non-goals: flag parsing (cli/), the engine's own wiring. Thread-safety: plain functions.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "core/base/status.h"
#include "io/metadata.h"
#include "io/model_file.h"
#include "moe/routing_trace.h"
#include "moe/routing_trace_hooks.h"
#include "moe/synthetic_routing.h"

namespace sluice {

// Metadata keys `sluice synth` writes (synth/synth.h) and the engine/bench read.
inline constexpr char kMetaSynthetic[] = "sluice.synthetic";             // bool: weights are random
inline constexpr char kMetaDefaultRouting[] = "sluice.default_routing";  // a --routing value
inline constexpr char kMetaSynthPreset[] = "sluice.synth.preset";        // preset name

struct RoutingSpec {
  enum class Kind { kModel, kSynthetic, kTrace };
  Kind kind = Kind::kModel;
  SyntheticRoutingParams synthetic;          // kSynthetic
  std::string trace_path;                    // kTrace
  bool cycle = false;                        // kTrace: loop past the end
  double predict = kDefaultPredictAccuracy;  // kTrace: simulated next-layer predictor accuracy
                                             // (synthetic: synthetic.predict)

  // The canonical text ("model", "synthetic:seed=1,reuse=0.25,...",
  // "trace:FILE,cycle,predict=0.9"; predict only when not the default).
  std::string ToString() const;
};

// Parses a --routing value. InvalidArgument naming the value for anything else.
Result<RoutingSpec> ParseRoutingSpec(std::string_view text);

// The routing to use: `flag_value` when not empty, else the model's sluice.default_routing, else
// the model's router.
Result<RoutingSpec> ResolveRoutingSpec(std::string_view flag_value, const Metadata& metadata);

// The routing shape of a model: n_layer and k from "<arch>.block_count" and
// "<arch>.expert_used_count", the MoE layers and n_expert from its expert tensors.
Result<RoutingShape> RoutingShapeFromModel(const ModelFile& model);

// What MakeRouting built. `hook` is null when nothing needs a hook (model routing, no record).
struct RoutingSetup {
  std::unique_ptr<RoutingHook> hook;
  TraceRecorderHook* recorder = nullptr;  // owned by hook; set with a record path
  TraceReplayHook* replay = nullptr;      // owned by hook; set for trace routing
  RoutingSpec spec;
  std::string description;  // one line for logs and the bench: "synthetic (reuse 0.25, ...)"

  // The sticky errors of the trace hooks (replay past the end, recording failures).
  Status status() const;
  // Finishes the recording, if any (call once after the run).
  Status Finish();
};

// `record_path` empty: no recording. `source` goes into a recorded trace's header.
Result<RoutingSetup> MakeRouting(const RoutingSpec& spec, const RoutingShape& shape,
                                 const std::string& record_path, const std::string& source);

}  // namespace sluice
