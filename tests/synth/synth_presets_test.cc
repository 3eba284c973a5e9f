// Presets carry the real models' expert byte sizes (computed here from the block geometry, not
// from the code under test), and scaling keeps them while refusing impossible requests.
#include "synth/synth_presets.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

// Q4_K: 144 bytes per 256 weights (2 + 2 + 12 + 128).
uint64_t Q4kExpertBytes(uint64_t n_embd, uint64_t n_ff) { return 3 * n_embd * n_ff / 256 * 144; }

TEST(SynthPresets, ExpertBytesAreTheRealModels) {
  // FIELD-NOTES: Qwen3.5-397B 7,077,888 bytes per expert at 4 bits.
  EXPECT_EQ(FindSynthPreset("qwen3.5-397b-a17b")->expert_bytes(), 7'077'888u);
  EXPECT_EQ(FindSynthPreset("qwen3.5-397b-a17b")->expert_bytes(), Q4kExpertBytes(4096, 1024));
  EXPECT_EQ(FindSynthPreset("qwen3-235b-a22b")->expert_bytes(), Q4kExpertBytes(4096, 1536));
  EXPECT_EQ(FindSynthPreset("mixtral-8x22b")->expert_bytes(), Q4kExpertBytes(6144, 16384));
  EXPECT_EQ(FindSynthPreset("deepseek-v3")->expert_bytes(), Q4kExpertBytes(7168, 2048));
  // ~10.6 MB, ~170 MB, ~24.8 MB as the field notes list them.
  EXPECT_NEAR(FindSynthPreset("qwen3-235b-a22b")->expert_bytes() / 1e6, 10.6, 0.1);
  EXPECT_NEAR(FindSynthPreset("mixtral-8x22b")->expert_bytes() / 1e6, 170, 2);
  EXPECT_NEAR(FindSynthPreset("deepseek-v3")->expert_bytes() / 1e6, 24.8, 0.1);
}

TEST(SynthPresets, ShapesOfTheRealModels) {
  SynthShape q = *FindSynthPreset("qwen3.5-397b-a17b");
  EXPECT_EQ(q.n_layer, 60);
  EXPECT_EQ(q.n_expert, 512);
  EXPECT_EQ(q.n_expert_used, 10);
  EXPECT_GT(q.n_ff_shexp, 0) << "one shared expert";
  SynthShape d = *FindSynthPreset("deepseek-v3");
  EXPECT_EQ(d.n_expert, 256);
  EXPECT_EQ(d.n_expert_used, 8);
  EXPECT_GT(d.n_ff_shexp, 0);
  SynthShape m = *FindSynthPreset("mixtral-8x22b");
  EXPECT_EQ(m.n_layer, 56);
  EXPECT_EQ(m.n_expert_used, 2);
  EXPECT_EQ(m.arch, "llama");
  EXPECT_EQ(FindSynthPreset("qwen3-235b-a22b")->n_layer, 94);
  EXPECT_TRUE(FindSynthPreset("demo").ok());
  auto unknown = FindSynthPreset("gpt-5");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("qwen3.5-397b-a17b"), std::string::npos)
      << "lists the presets";
}

TEST(SynthPresets, ScalingKeepsExpertBytes) {
  SynthShape full = *FindSynthPreset("qwen3.5-397b-a17b");
  SynthScale scale;
  scale.layers = 7;
  Result<SynthShape> s = ScaleSynthShape(full, scale);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->n_layer, 7);
  EXPECT_EQ(s->full_layers, 60);
  EXPECT_EQ(s->n_expert, 512);
  EXPECT_EQ(s->expert_bytes(), full.expert_bytes());
  EXPECT_EQ(s->all_expert_bytes(), 7ull * 512 * 7'077'888);

  scale.layers = 0;
  scale.experts = 64;
  s = ScaleSynthShape(full, scale);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->n_expert, 64);
  EXPECT_EQ(s->expert_bytes(), full.expert_bytes());

  scale.experts = 0;
  scale.quant = GgmlType::kQ8_0;  // 34 bytes per 32 weights
  s = ScaleSynthShape(full, scale);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->expert_bytes(), 3ull * 4096 * 1024 / 32 * 34);

  SynthScale too_many;
  too_many.layers = 61;
  EXPECT_FALSE(ScaleSynthShape(full, too_many).ok());
  SynthScale below_k;
  below_k.experts = 9;  // k = 10
  auto e = ScaleSynthShape(full, below_k);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("10 experts every token uses"), std::string::npos);
  SynthScale f32;
  f32.quant = GgmlType::kF32;
  EXPECT_FALSE(ScaleSynthShape(full, f32).ok());
}

}  // namespace
}  // namespace sluice
