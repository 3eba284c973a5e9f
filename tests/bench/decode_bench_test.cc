// The resident decode benchmark's byte accounting against sizes computed here from the model's
// shape, and its refusal to report on counters that include prompt tokens.
#include "bench/decode_bench.h"

#include <gtest/gtest.h>

#include "chat/sampler.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

TEST(DecodeBench, BytesPerTokenAreTheDenseWeightsPlusKExperts) {
  TempDir dir;
  TinyModelSpec spec{.n_layer = 3,
                     .matrix_type = GgmlType::kQ8_0,
                     .expert_type = GgmlType::kQ4_0,
                     .embd_type = GgmlType::kQ8_0};
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(path, spec).ok());
  auto engine = Engine::Open(path, EngineOptions{.threads = 1});
  ASSERT_TRUE(engine.ok());
  Engine& e = **engine;
  ASSERT_TRUE(e.PreloadExperts().ok());
  ASSERT_TRUE(e.Prefill(TestTokens(5, spec.n_vocab)).ok());
  e.ResetCounters();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(e.Decode(ArgMax(e.logits())).ok());
  auto report = MeasureDecodeBench(e, 16ull << 20);
  ASSERT_TRUE(report.ok()) << report.status().ToString();

  const int64_t d = spec.n_embd, q = int64_t{spec.n_head} * spec.head_dim,
                kv = int64_t{spec.n_head_kv} * spec.head_dim, f = spec.n_ff;
  const uint64_t expert = RowBytes(spec.expert_type, d) * f * 2 + RowBytes(spec.expert_type, f) * d;
  EXPECT_EQ(report->expert_bytes_per_token, uint64_t(spec.n_layer) * spec.n_expert_used * expert);
  const uint64_t attention =
      RowBytes(spec.matrix_type, d) * (q + 2 * kv) + RowBytes(spec.matrix_type, q) * d;
  const uint64_t norms = 4 * (2 * d + 2 * spec.head_dim);  // attn, ffn, q, k norms
  const uint64_t router = 4 * d * spec.n_expert;
  const uint64_t per_token = spec.n_layer * (attention + norms + router) + 4 * d /*output norm*/ +
                             RowBytes(spec.matrix_type, d) * spec.n_vocab /*output*/ +
                             RowBytes(spec.embd_type, d) /*one embedding row*/;
  EXPECT_EQ(report->dense_bytes_per_token, per_token);
  EXPECT_EQ(report->decoded_tokens, 4);
  EXPECT_EQ(report->cache_misses, 0u);  // preloaded
  // The figures are the measured quantities' ratios (recomputed here from the report's parts).
  EXPECT_DOUBLE_EQ(report->tok_per_s, 4 / report->decode_seconds);
  EXPECT_DOUBLE_EQ(report->dram_ratio, report->weight_GBps / report->dram_GBps);
  // Positions 5..8 read 6..9 rows of k and v (f16) in every layer: 7.5 on average.
  EXPECT_EQ(report->kv_bytes_per_token, uint64_t(7.5 * 2 * kv * 2 * spec.n_layer));

  ASSERT_TRUE(e.Prefill(TestTokens(2, spec.n_vocab)).ok());
  EXPECT_FALSE(MeasureDecodeBench(e, 16ull << 20).ok());  // counters now include a prompt
}

}  // namespace
}  // namespace sluice::testing
