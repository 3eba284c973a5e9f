// The routing flags (cli/routing_flags.h). List "routing" and "record_trace" in the `flags` of
// every command that calls RoutingFromFlags.
#include "cli/routing_flags.h"

#include <gflags/gflags.h>

DEFINE_string(routing, "",
              "Who chooses the experts: model (the model's router), synthetic[:key=value,...] "
              "(realistic reuse and skew, docs/routing-trace.md) or trace:FILE[,cycle] (replay a "
              "recorded trace). Empty: the model's default (synthetic for `sluice synth` models, "
              "else model).");
DEFINE_string(record_trace, "",
              "Record the routing the engine uses (every token, every MoE layer) to FILE "
              "(docs/routing-trace.md); share it, replay it with --routing trace:FILE.");

namespace sluice::cli {

Result<RoutingSetup> RoutingFromFlags(const ModelFile& model) {
  ASSIGN_OR_RETURN(RoutingSpec spec, ResolveRoutingSpec(FLAGS_routing, model.metadata()));
  ASSIGN_OR_RETURN(RoutingShape shape, RoutingShapeFromModel(model));
  std::string name = model.metadata().GetStringOr("general.name", model.path()).value();
  return MakeRouting(spec, shape, FLAGS_record_trace, "recorded by sluice from " + name);
}

}  // namespace sluice::cli
