// --routing and --record-trace for the commands that run a model (bench, run, chat): the flags
// are defined once here, and RoutingFromFlags turns them into the engine's RoutingHook
// (moe/routing_spec.h), defaulting to the model's sluice.default_routing (synthetic models) or
// its own router.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(path));
//   ASSIGN_OR_RETURN(RoutingSetup routing, RoutingFromFlags(*model));
//   options.routing_hook = routing.hook.get();          // may be null: the model's router
//   ... Engine::Create(std::move(model), options) ... run ...
//   RETURN_IF_ERROR(routing.Finish());                   // trace errors; writes --record-trace
//
// Thread-safety: main thread (reads flags).
#pragma once

#include "core/base/status.h"
#include "io/model_file.h"
#include "moe/routing_spec.h"

namespace sluice::cli {

Result<RoutingSetup> RoutingFromFlags(const ModelFile& model);

}  // namespace sluice::cli
