// The engine against the double-precision reference forward pass (tests/llm/reference_model.h)
// on tiny random models of each architecture, in f32 and every quantized weight format.
#include <gtest/gtest.h>

#include <cstdio>

#include "io/model_open.h"
#include "tests/llm/reference_model.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

EngineOptions Exact() {
  return EngineOptions{.threads = 2, .batch_size = 8, .kv_type = KvType::kF32};
}

std::vector<double> Reference(const std::string& path, std::span<const int32_t> tokens,
                              int experts = 0) {
  auto model = OpenModelFile(path);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  auto ref = ReferenceModel::Load(**model);
  EXPECT_TRUE(ref.ok()) << ref.status().ToString();
  return ref->Forward(tokens, ReferenceOptions{.experts_per_token = experts});
}

TEST(EngineReference, F32ModelsOfEveryArchitecture) {
  TempDir dir;
  for (std::string arch : {"qwen3moe", "qwen2moe", "llama"}) {
    for (bool tied : {false, true}) {
      TinyModelSpec spec{.arch = arch, .tied_output = tied};
      const std::string path = dir.File(arch + (tied ? "-tied" : "") + ".gguf");
      ASSERT_TRUE(WriteTinyModel(path, spec).ok());
      const std::vector<int32_t> tokens = TestTokens(21, spec.n_vocab);
      const std::vector<double> want = Reference(path, tokens);
      auto got = EngineLogits(path, Exact(), tokens);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      const Diff d = CompareLogits(*got, want, spec.n_vocab);
      EXPECT_LT(d.max_abs, 1e-4) << arch << (tied ? " tied" : "");
      EXPECT_EQ(d.argmax_agreement, 1.0) << arch;
    }
  }
}

struct QuantCase {
  GgmlType type;
  int64_t width;  // n_embd = n_ff = q_dim: K-quants need rows of 256
};

// Mean |logit - reference| allowed when computing on the blocks, by what the kernels do to the
// activations (logits here have std ~0.4); each about twice what was measured (in parentheses).
double OnBlocksTolerance(GgmlType type) {
  switch (type) {
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return 1e-6;  // f32 activations, f32 accumulation: rounding only (3e-8)
    case GgmlType::kQ2_K:
    case GgmlType::kQ3_K:
    case GgmlType::kQ4_K:
    case GgmlType::kQ5_K:
    case GgmlType::kQ6_K:
    case GgmlType::kIQ4_XS:
      return 0.025;  // activations as Q8_K, one scale per 256 (7e-3 .. 1.24e-2)
    default:
      return 4e-3;  // activations as Q8_0/Q8_1, one scale per 32 (1.7e-3 .. 1.9e-3)
  }
}

// Every weight format the kernels support: dequantized to f32 at load the engine matches the
// reference on the same dequantized values tightly; computing on the blocks (activations
// quantized to Q8 as GGUF engines do) it stays close.
TEST(EngineReference, QuantizedFormats) {
  const QuantCase cases[] = {
      {GgmlType::kF16, 64},   {GgmlType::kBF16, 64},    {GgmlType::kQ8_0, 64},
      {GgmlType::kQ4_0, 64},  {GgmlType::kQ4_1, 64},    {GgmlType::kQ5_0, 64},
      {GgmlType::kQ5_1, 64},  {GgmlType::kIQ4_NL, 64},  {GgmlType::kQ2_K, 256},
      {GgmlType::kQ3_K, 256}, {GgmlType::kQ4_K, 256},   {GgmlType::kQ5_K, 256},
      {GgmlType::kQ6_K, 256}, {GgmlType::kIQ4_XS, 256},
  };
  TempDir dir;
  for (const QuantCase& c : cases) {
    TinyModelSpec spec{.n_embd = c.width,
                       .head_dim = int(c.width / 4),
                       .n_ff = c.width,
                       .matrix_type = c.type,
                       .expert_type = c.type,
                       .embd_type = c.type};
    const std::string path = dir.File(std::string(TypeName(c.type)) + ".gguf");
    ASSERT_TRUE(WriteTinyModel(path, spec).ok()) << TypeName(c.type);
    const std::vector<int32_t> tokens = TestTokens(12, spec.n_vocab);
    const std::vector<double> want = Reference(path, tokens);

    EngineOptions deq = Exact();
    deq.dequantize_weights = true;
    auto exact = EngineLogits(path, deq, tokens);
    ASSERT_TRUE(exact.ok()) << exact.status().ToString();
    const Diff de = CompareLogits(*exact, want, spec.n_vocab);
    EXPECT_LT(de.max_abs, 1e-4) << TypeName(c.type) << " dequantized";

    auto native = EngineLogits(path, Exact(), tokens);
    ASSERT_TRUE(native.ok()) << native.status().ToString();
    const Diff dn = CompareLogits(*native, want, spec.n_vocab);
    EXPECT_LT(dn.mean_abs, OnBlocksTolerance(c.type)) << TypeName(c.type) << " on blocks";
    EXPECT_GE(dn.argmax_agreement, 0.9) << TypeName(c.type) << " on blocks";
    std::printf(
        "%-7s dequantized: max |diff| %.2e; on blocks: mean |diff| %.2e, max %.2e, argmax %.2f\n",
        TypeName(c.type), de.max_abs, dn.mean_abs, dn.max_abs, dn.argmax_agreement);
  }
}

TEST(EngineReference, F16KvCacheStaysClose) {
  TempDir dir;
  TinyModelSpec spec;
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(path, spec).ok());
  const std::vector<int32_t> tokens = TestTokens(40, spec.n_vocab);
  EngineOptions o = Exact();
  o.kv_type = KvType::kF16;
  auto got = EngineLogits(path, o, tokens);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  const Diff d = CompareLogits(*got, Reference(path, tokens), spec.n_vocab);
  EXPECT_LT(d.max_abs, 5e-3);  // k and v rounded to 11 significant bits
  EXPECT_GT(d.max_abs, 0.0);   // and it is really f16
  EXPECT_EQ(d.argmax_agreement, 1.0);
}

TEST(EngineReference, FewerExpertsPerTokenMatchesReferenceWithTheSameK) {
  TempDir dir;
  TinyModelSpec spec{.n_expert_used = 3};
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(path, spec).ok());
  const std::vector<int32_t> tokens = TestTokens(10, spec.n_vocab);
  EngineOptions o = Exact();
  o.experts_per_token = 1;
  auto got = EngineLogits(path, o, tokens);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_LT(CompareLogits(*got, Reference(path, tokens, 1), spec.n_vocab).max_abs, 1e-4);
  // And it differs from the model's own k (the override did something).
  EXPECT_GT(CompareLogits(*got, Reference(path, tokens, 3), spec.n_vocab).max_abs, 1e-3);
}

}  // namespace
}  // namespace sluice::testing
