// The engine flags every model-running command shares (logits, chat, run, bench), turned into
// EngineOptions in one place so a flag means the same everywhere.
//   shared (cli/common_flags.cc): model ram threads io queue_depth cache_policy mlock
//   here (cli/engine_flags.cc):   ctx kv_type dense expert_source batch dequantize
//   --experts (defined by cmd_synth.cc, shared): experts per token when running a model
// Thread-safety: call from main's thread after flags are parsed.
#pragma once

#include <vector>

#include "core/base/status.h"
#include "llm/engine_options.h"

namespace sluice::cli {

// Every field of EngineOptions a flag sets; InvalidArgument naming the flag for a bad value.
// --ram empty: 50% of physical RAM; --ram 0: no limit.
Result<EngineOptions> EngineOptionsFromFlags();

// Whether --cache-policy was left at its default (commands with another default override it).
bool CachePolicyFlagIsDefault();

// --batch 0 (the default): kDefaultPromptBatch prompt tokens per forward pass, or for serve
// kDefaultServeBatch (the tokens of one scheduler step, shared by decoding streams and a prompt
// chunk). BatchFlagIsDefault: --batch was not given.
inline constexpr int kDefaultPromptBatch = 256;
inline constexpr int kDefaultServeBatch = 64;
bool BatchFlagIsDefault();

// The flag names EngineOptionsFromFlags reads, to append to a command's `flags` (its --help).
const std::vector<const char*>& EngineFlagNames();

}  // namespace sluice::cli
