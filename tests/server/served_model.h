// A served test model for the server tests: the CLI tests' small qwen3moe GGUF (random weights,
// byte-level vocabulary, ChatML) with its tokenizer, chat template, an engine with room for
// `parallel` sequences, and a batch scheduler on it.
#pragma once

#include <memory>
#include <string>

#include "llm/engine.h"
#include "server/batch_scheduler.h"
#include "tests/support/temp_dir.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace sluice::server::testing {

struct ServedModel {
  // Writes the model once per process (into a directory that lives as long as the process).
  static const std::string& Path();
  // Empty engine on failure (the test reports the status).
  static Status Open(int parallel, int max_queued, ServedModel* out,
                     EngineOptions options = EngineOptions{.threads = 2, .batch_size = 16});

  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<ChatTemplate> chat_template;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<BatchScheduler> scheduler;  // declared last: goes first

  // Everything a generation produced, waiting for its end.
  struct Outcome {
    std::string text;
    FinishReason reason = FinishReason::kNone;
    GenerationStats stats;
  };
  static Outcome Collect(Generation& g);
};

}  // namespace sluice::server::testing
