// What `sluice chat` and `sluice run` open before the first token, from their flags: the model
// (the synthetic demo model when -m is empty), the tokenizer and chat template from its
// metadata, and the engine within the --ram budget, wrapped for a ChatSession.
//
// Non-goals: the REPL and the output (cmd_chat.cc, cmd_run.cc).
// Thread-safety: call from the main thread.
#pragma once

#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chat/chat_session.h"
#include "chat/engine_token_engine.h"
#include "core/base/status.h"
#include "llm/engine.h"
#include "moe/routing_spec.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace sluice::cli {

struct GenerationSetupOptions {
  bool need_chat_template = true;  // false for `run --raw`
  int sequences = 1;               // sequences (KV caches) the engine holds (serve: --parallel)
  // The eviction policy when --cache-policy is not given (serve: lfu).
  std::optional<EvictionPolicyKind> default_cache_policy = std::nullopt;
  // The prompt batch when --batch is not given (serve: kDefaultServeBatch).
  std::optional<int> default_batch = std::nullopt;
};

struct GenerationSetup {
  std::string model_path;
  std::string model_name;  // for the banner: the file name, or the demo model's description
  bool demo = false;       // no -m: the synthetic demo model
  std::unique_ptr<RoutingSetup> routing;  // the engine's routing hook; Finish() after the run
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatTemplate> chat_template;  // null without need_chat_template
  std::unique_ptr<Engine> engine;
  std::unique_ptr<EngineTokenEngine> token_engine;  // drives `engine`; what a session uses
  ChatSessionOptions session_options;               // from the flags (and the demo's cap)

  // "memory: dense ... + KV ... + expert cache ... (N slots of ...)".
  std::string DescribeMemory() const;
  // Ends the run: finishes a --record-trace recording and reports trace errors.
  Status Finish();
};

// Errors, each naming what to fix: a missing or unreadable model, a RAM budget too small for
// the dense weights (with the bytes needed), bad sampling values, an unknown --chat-template.
Result<GenerationSetup> SetUpGeneration(const GenerationSetupOptions& options);

// Every flag SetUpGeneration reads, plus `extra`: a command's `flags` (its --help).
std::vector<const char*> GenerationFlags(std::initializer_list<const char*> extra);

}  // namespace sluice::cli
