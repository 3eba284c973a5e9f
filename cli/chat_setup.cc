#include "cli/chat_setup.h"

#include <gflags/gflags.h>

#include <algorithm>
#include <filesystem>
#include <random>

#include "cli/demo_model.h"
#include "cli/engine_flags.h"
#include "cli/routing_flags.h"
#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "io/model_open.h"

DECLARE_string(model);
DECLARE_double(temp);
DECLARE_int32(top_k);
DECLARE_double(top_p);
DECLARE_double(min_p);
DECLARE_double(repeat_penalty);
DECLARE_int64(seed);
DECLARE_string(system);
DECLARE_string(chat_template);
DECLARE_bool(no_think);
DECLARE_string(chat_template_file);
DECLARE_bool(show_reasoning);
DECLARE_int32(n_predict);

namespace sluice::cli {
namespace {

// The demo model's text is random, so a reply without -n stops here rather than running on
// through thousands of tokens of gibberish.
constexpr int kDemoReplyTokens = 128;

Result<SamplerOptions> SamplerOptionsFromFlags() {
  SamplerOptions options{.temperature = static_cast<float>(FLAGS_temp),
                         .top_k = FLAGS_top_k,
                         .top_p = static_cast<float>(FLAGS_top_p),
                         .min_p = static_cast<float>(FLAGS_min_p),
                         .repeat_penalty = static_cast<float>(FLAGS_repeat_penalty)};
  if (FLAGS_seed >= 0) {
    options.seed = static_cast<uint64_t>(FLAGS_seed);
  } else {
    options.seed = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
    LOG(DEBUG) << "sampling seed " << options.seed << " (--seed to repeat it)";
  }
  RETURN_IF_ERROR(ValidateSamplerOptions(options));
  return options;
}

// The model to open: -m, or the demo model (written first when missing).
Status ResolveModel(GenerationSetup* setup) {
  if (!FLAGS_model.empty()) {
    setup->model_path = FLAGS_model;
    setup->model_name = std::filesystem::path(FLAGS_model).filename().string();
    return Status::Ok();
  }
  ASSIGN_OR_RETURN(DemoModel demo, EnsureDemoModel());
  setup->model_path = demo.path;
  setup->model_name = "the synthetic demo model";
  setup->demo = true;
  LOG(INFO) << "no -m given: using the synthetic demo model " << demo.path
            << " (random weights: the text is gibberish by design; the expert I/O is real)";
  return Status::Ok();
}

}  // namespace

Status GenerationSetup::Finish() { return routing != nullptr ? routing->Finish() : Status::Ok(); }

std::string GenerationSetup::DescribeMemory() const {
  std::string text = "memory: " + DescribeMemoryPlan(engine->memory_plan());
  return text;
}

Result<GenerationSetup> SetUpGeneration(const GenerationSetupOptions& options) {
  GenerationSetup setup;
  // Flags first: a typo should not wait for a model to load.
  ASSIGN_OR_RETURN(SamplerOptions sampling, SamplerOptionsFromFlags());
  ASSIGN_OR_RETURN(EngineOptions engine_options, EngineOptionsFromFlags());
  engine_options.max_sequences = std::max(1, options.sequences);
  if (options.default_cache_policy.has_value() && CachePolicyFlagIsDefault()) {
    engine_options.cache_policy = *options.default_cache_policy;
  }
  // Serving: a step holds a token of every stream and a prompt chunk; a short default chunk keeps
  // the decoding streams from waiting long on a new request's prompt.
  if (options.default_batch.has_value() && BatchFlagIsDefault()) {
    engine_options.batch_size = *options.default_batch;
  }
  // Each of them decodes a token per step: a step of all of them fits one batch.
  engine_options.batch_size = std::max(engine_options.batch_size, options.sequences);
  RETURN_IF_ERROR(ResolveModel(&setup));

  ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(setup.model_path));
  // The model's router, or the routing its metadata asks for (synthetic models route with
  // realistic reuse and skew), or --routing / --record-trace.
  ASSIGN_OR_RETURN(RoutingSetup routing, RoutingFromFlags(*model));
  setup.routing = std::make_unique<RoutingSetup>(std::move(routing));
  engine_options.routing_hook = setup.routing->hook.get();
  if (setup.routing->hook != nullptr) {
    LOG(INFO) << "routing: " << setup.routing->description;
  }
  ASSIGN_OR_RETURN(setup.tokenizer, Tokenizer::FromMetadata(model->metadata()));
  if (options.need_chat_template) {
    // An unrecognised template falls back to ChatML; ChatTemplate logs the one-line warning.
    ASSIGN_OR_RETURN(ChatTemplate chat_template,
                     ChatTemplate::FromMetadata(model->metadata(), FLAGS_chat_template,
                                                FLAGS_chat_template_file));
    setup.chat_template = std::make_unique<ChatTemplate>(std::move(chat_template));
  }
  ASSIGN_OR_RETURN(setup.engine, Engine::Create(std::move(model), engine_options));
  LOG(INFO) << DescribeConfig(setup.engine->config()) << "; running with a context of "
            << setup.engine->n_ctx();
  LOG(DEBUG) << "memory: " << DescribeMemoryPlan(setup.engine->memory_plan());
  setup.token_engine = std::make_unique<EngineTokenEngine>(setup.engine.get(), sampling);

  setup.session_options.system = FLAGS_system;
  setup.session_options.thinking = !FLAGS_no_think;
  setup.session_options.show_reasoning = FLAGS_show_reasoning;
  if (FLAGS_n_predict < -1) {
    return InvalidArgument("-n ", FLAGS_n_predict,
                           ": expected a token count >= 0, or -1 for until the reply ends");
  }
  setup.session_options.max_reply_tokens = FLAGS_n_predict;
  if (setup.demo && FLAGS_n_predict < 0) {
    setup.session_options.max_reply_tokens = kDemoReplyTokens;
    LOG(INFO) << "demo model: replies stop after " << kDemoReplyTokens << " tokens (-n to change)";
  }
  return setup;
}

std::vector<const char*> GenerationFlags(std::initializer_list<const char*> extra) {
  // EngineFlagNames() starts with "model".
  std::vector<const char*> flags = EngineFlagNames();
  for (const char* name : {"routing", "record_trace", "n_predict", "temp", "top_k", "top_p",
                           "min_p", "repeat_penalty", "seed"}) {
    flags.push_back(name);
  }
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

}  // namespace sluice::cli
