// A small qwen3moe GGUF written by the CLI tests, so they need no downloaded model and never skip:
// random weights (N(0, 0.05), norms N(1, 0.1), like ../shared/refdata), a byte-level BPE
// vocabulary (the 256 GPT-2 byte tokens, a few merges, then <|endoftext|> <|im_start|>
// <|im_end|>) and a ChatML chat template.
//
// The default shape is sized so one token takes long enough (~0.1-1 ms) and the context is long
// enough (4096) that a reply is still running when the pty test presses Ctrl-C, while the file
// stays ~10 MB.
//
// Non-goals: meaningful text (the weights are random), quantized tensors.
// Thread-safety: none.
#pragma once

#include <cstdint>
#include <string>

#include "core/base/status.h"
#include "io/metadata.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {

struct TestModelShape {
  int n_embd = 128;
  int n_layer = 4;
  int n_head = 4;
  int n_head_kv = 2;
  int head_dim = 32;
  int n_expert = 8;
  int n_expert_used = 2;
  int n_ff_exp = 128;
  int context_length = 4096;
  bool chat_template = true;  // write tokenizer.chat_template (ChatML)
  uint64_t seed = 1;
};

// Token ids of the test vocabulary.
inline constexpr int32_t kTestEndOfText = 258;  // <|endoftext|> (bos)
inline constexpr int32_t kTestImStart = 259;    // <|im_start|>
inline constexpr int32_t kTestImEnd = 260;      // <|im_end|> (eos)
inline constexpr int32_t kTestVocabSize = 261;

// The model's metadata (architecture keys, vocabulary, chat template): what a tokenizer reads.
Metadata TestModelMetadata(const TestModelShape& shape);

Status WriteTestModel(const std::string& path, const TestModelShape& shape = {});

}  // namespace sluice::testing
