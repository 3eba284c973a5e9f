// The vocabulary and chat template of synthetic models: a small byte-level BPE vocabulary (the
// 256 GPT-2 byte tokens, ~150 merges of frequent English pieces, and the ChatML control tokens)
// written with the standard GGUF tokenizer keys (tokenizer.ggml.model = gpt2, pre = qwen2,
// tokens, token_type, merges, bos/eos/padding ids) and a ChatML tokenizer.chat_template, so that
// sluice's tokenizer, chat and run, and other GGUF engines, work on a synthetic model unchanged.
// Any text encodes (every byte has a token); the model's output is random by construction.
//
// Non-goals: a realistic vocabulary size (the embedding and output head would only add resident
// bytes that carry no information here). Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "io/metadata.h"

namespace sluice {

// Number of tokens AddSynthTokenizer writes.
int64_t SynthVocabSize();

// Writes the tokenizer keys and the chat template into `metadata`.
void AddSynthTokenizer(Metadata* metadata);

}  // namespace sluice
