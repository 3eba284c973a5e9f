// Tiny random MoE models written as GGUF with the project's writer, for engine tests.
// The tensor list is spelled out here (not taken from llm/tensor_plan.h) so the tests also check
// that the engine's expectations match what a GGUF producer writes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/base/status.h"
#include "io/metadata.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {

struct TinyModelSpec {
  std::string arch = "qwen3moe";  // qwen3moe | qwen2moe | llama
  int64_t n_vocab = 96;
  int64_t n_embd = 64;
  int n_layer = 2;
  int n_head = 4;
  int n_head_kv = 2;
  int head_dim = 16;
  int n_expert = 8;
  int n_expert_used = 2;
  int64_t n_ff = 32;        // routed expert hidden size
  int64_t n_ff_shexp = 48;  // qwen2moe only
  int64_t n_ctx = 256;
  float rope_base = 1e6f;
  GgmlType matrix_type = GgmlType::kF32;  // attention, output, shared expert
  GgmlType expert_type = GgmlType::kF32;  // routed experts
  GgmlType embd_type = GgmlType::kF32;
  bool tied_output = false;
  uint32_t seed = 1;
  float weight_std = 0.05f;
  // Test hooks for malformed models: edit the metadata before writing, and each tensor's name,
  // type or shape (an empty name omits the tensor).
  std::function<void(Metadata&)> edit_metadata = nullptr;
  std::function<void(std::string& name, GgmlType& type, std::vector<int64_t>& ne)> edit_tensor =
      nullptr;
};

// Writes the model (quantized tensors through QuantizeRow from N(0, weight_std) values; norms
// N(1, 0.1); router f32).
Status WriteTinyModel(const std::string& path, const TinyModelSpec& spec);

}  // namespace sluice::testing

#include <memory>
#include <span>
#include <vector>

#include "llm/engine.h"

namespace sluice::testing {

// Opens `path` with `options`, prefills `tokens` and returns the logits of every position
// (tokens.size(), n_vocab).
Result<std::vector<float>> EngineLogits(const std::string& path, const EngineOptions& options,
                                        std::span<const int32_t> tokens);

// (i * 7 + 3) % n_vocab for i in [0, n): a prompt touching many different tokens.
std::vector<int32_t> TestTokens(int n, int64_t n_vocab);

struct Diff {
  double max_abs = 0;
  double mean_abs = 0;
  double argmax_agreement = 0;  // fraction of rows whose argmax matches
};
// Compares row-major (rows, n_vocab) logits.
Diff CompareLogits(std::span<const float> got, std::span<const double> want, int64_t n_vocab);
Diff CompareLogits(std::span<const float> got, std::span<const float> want, int64_t n_vocab);

}  // namespace sluice::testing
