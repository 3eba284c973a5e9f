// Model config from metadata and the load-time tensor checks: values read through the
// architecture's key prefix, and every malformed case gives an error naming the key or tensor
// with expected and found values.
#include <gtest/gtest.h>

#include <cstdio>

#include "io/model_open.h"
#include "llm/model_config.h"
#include "llm/tensor_plan.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

Metadata BaseMetadata(const std::string& arch = "qwen3moe") {
  Metadata md("test.gguf");
  const std::string a = arch + ".";
  md.SetString("general.architecture", arch);
  md.SetU32(a + "context_length", 4096);
  md.SetU32(a + "embedding_length", 2048);
  md.SetU32(a + "block_count", 48);
  md.SetU32(a + "attention.head_count", 32);
  md.SetU32(a + "attention.head_count_kv", 4);
  md.SetU32(a + "attention.key_length", 128);
  md.SetU32(a + "attention.value_length", 128);
  md.SetF32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  md.SetF32(a + "rope.freq_base", 1e6f);
  md.SetU32(a + "expert_count", 128);
  md.SetU32(a + "expert_used_count", 8);
  md.SetU32(a + "expert_feed_forward_length", 768);
  md.SetU32(a + "feed_forward_length", 6144);
  md.SetStringArray("tokenizer.ggml.tokens", std::vector<std::string>(151936, "x"));
  return md;
}

TEST(ModelConfig, ReadsQwen3MoeShapes) {
  auto c = ReadModelConfig(BaseMetadata());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->spec->name, std::string("qwen3moe"));
  EXPECT_EQ(c->n_vocab, 151936);
  EXPECT_EQ(c->n_embd, 2048);
  EXPECT_EQ(c->n_layer, 48);
  EXPECT_EQ(c->q_dim(), 32 * 128);  // not n_embd: Qwen3's heads are wider
  EXPECT_EQ(c->k_dim(), 4 * 128);
  EXPECT_EQ(c->n_rot, 128);
  EXPECT_EQ(c->n_ff_exp, 768);
  EXPECT_EQ(c->n_expert_used, 8);
  EXPECT_FALSE(c->has_shared_expert());
  EXPECT_EQ(c->spec->rope_layout, RopeLayout::kNeox);
  EXPECT_TRUE(c->norm_topk);
  EXPECT_FLOAT_EQ(c->rope_freq_base, 1e6f);
  EXPECT_FLOAT_EQ(c->rope_freq_scale, 1.0f);
}

TEST(ModelConfig, MixtralTakesExpertSizeFromFeedForwardLengthAndNormalRope) {
  Metadata md = BaseMetadata("llama");
  auto c = ReadModelConfig(md);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_ff_exp, 6144);
  EXPECT_EQ(c->spec->rope_layout, RopeLayout::kNormal);
}

TEST(ModelConfig, Qwen2MoeHasAGatedSharedExpertAndNoRenormalisation) {
  Metadata md = BaseMetadata("qwen2moe");
  md.SetU32("qwen2moe.expert_shared_feed_forward_length", 5632);
  auto c = ReadModelConfig(md);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->n_ff_shexp, 5632);
  EXPECT_FALSE(c->norm_topk);
  bool gate = false, bias = false;
  for (const ExpectedTensor& t : ExpectedDenseTensors(*c)) {
    gate |= t.name == "blk.0.ffn_gate_inp_shexp.weight";
    bias |= t.name == "blk.47.attn_k.bias" && t.ne[0] == 512;
  }
  EXPECT_TRUE(gate);
  EXPECT_TRUE(bias);
}

TEST(ModelConfig, MetadataOverridesSpecDefaults) {
  Metadata md = BaseMetadata();
  md.SetU32("qwen3moe.expert_gating_func", 2);
  md.SetBool("qwen3moe.expert_weights_norm", false);
  md.SetF32("qwen3moe.expert_weights_scale", 2.5f);
  md.SetString("qwen3moe.rope.scaling.type", "linear");
  md.SetF32("qwen3moe.rope.scaling.factor", 4.0f);
  auto c = ReadModelConfig(md);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->gating, GatingFunc::kSigmoid);
  EXPECT_FALSE(c->norm_topk);
  EXPECT_FLOAT_EQ(c->expert_weights_scale, 2.5f);
  EXPECT_FLOAT_EQ(c->rope_freq_scale, 0.25f);
}

void ExpectError(Metadata md, StatusCode code, const std::vector<std::string>& fragments) {
  auto c = ReadModelConfig(md);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), code) << c.status().ToString();
  for (const std::string& f : fragments) {
    EXPECT_NE(c.status().message().find(f), std::string::npos)
        << "'" << f << "' not in: " << c.status().ToString();
  }
}

TEST(ModelConfig, ErrorsNameTheKeyAndValues) {
  Metadata md = BaseMetadata();
  md.SetString("general.architecture", "gpt-neo");
  ExpectError(md, StatusCode::kUnsupported, {"gpt-neo", "qwen3moe", "llama"});

  md = BaseMetadata();
  md.SetU32("qwen3moe.expert_used_count", 200);
  ExpectError(md, StatusCode::kCorrupt, {"qwen3moe.expert_used_count", "200", "1..128"});

  md = BaseMetadata();
  md.SetU32("qwen3moe.expert_count", 0);
  ExpectError(md, StatusCode::kUnsupported, {"expert_count", "dense"});

  md = BaseMetadata();
  md.SetU32("qwen3moe.attention.head_count_kv", 5);
  ExpectError(md, StatusCode::kCorrupt, {"head_count", "32", "5"});

  md = BaseMetadata();
  md.SetString("qwen3moe.rope.scaling.type", "longrope");
  ExpectError(md, StatusCode::kUnsupported, {"rope.scaling.type", "longrope"});

  md = BaseMetadata();  // YaRN is read (DeepSeek, gpt-oss), but needs its factor
  md.SetString("qwen3moe.rope.scaling.type", "yarn");
  ExpectError(md, StatusCode::kCorrupt, {"rope.scaling.factor", "0"});

  Metadata missing("test.gguf");
  missing.SetString("general.architecture", "qwen3moe");
  missing.SetStringArray("tokenizer.ggml.tokens", {"a"});
  ExpectError(missing, StatusCode::kNotFound, {"test.gguf", "qwen3moe.embedding_length"});
}

// Load-time tensor checks through the engine: the error names the tensor, expected and found.
Status OpenWith(const TinyModelSpec& spec, const TempDir& dir) {
  const std::string path = dir.File("bad.gguf");
  RETURN_IF_ERROR(WriteTinyModel(path, spec));
  ASSIGN_OR_RETURN(auto engine, Engine::Open(path, EngineOptions{.threads = 1}));
  return Status::Ok();
}

TEST(TensorChecks, WrongShapeMissingTensorAndWrongTypeAreNamed) {
  TempDir dir;
  TinyModelSpec spec;
  spec.edit_tensor = [](std::string& name, GgmlType&, std::vector<int64_t>& ne) {
    if (name == "blk.1.attn_k.weight") ne[1] = 64;  // 4 kv heads' worth instead of 2
  };
  Status s = OpenWith(spec, dir);
  EXPECT_EQ(s.code(), StatusCode::kCorrupt) << s.ToString();
  EXPECT_NE(s.message().find("blk.1.attn_k.weight: shape expected [64, 32], found [64, 64]"),
            std::string::npos)
      << s.ToString();

  spec.edit_tensor = [](std::string& name, GgmlType&, std::vector<int64_t>&) {
    if (name == "blk.0.attn_q_norm.weight") name.clear();
  };
  s = OpenWith(spec, dir);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find("blk.0.attn_q_norm.weight is missing"), std::string::npos)
      << s.ToString();

  spec.edit_tensor = [](std::string& name, GgmlType& type, std::vector<int64_t>&) {
    if (name == "blk.0.ffn_norm.weight") type = GgmlType::kF16;
  };
  s = OpenWith(spec, dir);
  EXPECT_EQ(s.code(), StatusCode::kUnsupported) << s.ToString();
  EXPECT_NE(s.message().find("blk.0.ffn_norm.weight: type f16"), std::string::npos) << s.ToString();

  spec.edit_tensor = [](std::string& name, GgmlType&, std::vector<int64_t>& ne) {
    if (name == "blk.1.ffn_down_exps.weight") ne[0] = 16;
  };
  s = OpenWith(spec, dir);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("blk.1.ffn_down_exps.weight"), std::string::npos) << s.ToString();

  // Metadata that disagrees with the tensors: the tensors are reported against the config.
  spec.edit_tensor = nullptr;
  spec.edit_metadata = [](Metadata& md) { md.SetU32("qwen3moe.expert_count", 4); };
  s = OpenWith(spec, dir);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("expected"), std::string::npos) << s.ToString();
  std::printf("%s\n", s.ToString().c_str());
}

TEST(TensorChecks, ContextLimitIsEnforcedWithAClearError) {
  TempDir dir;
  TinyModelSpec spec{.n_ctx = 16};
  const std::string path = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(path, spec).ok());
  auto engine = Engine::Open(path, EngineOptions{.threads = 1});
  ASSERT_TRUE(engine.ok());
  EXPECT_EQ((*engine)->n_ctx(), 16);
  const std::vector<int32_t> tokens = TestTokens(17, spec.n_vocab);
  Status s = (*engine)->Prefill(tokens);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("context length 16"), std::string::npos) << s.ToString();
  EXPECT_EQ((*engine)->n_past(), 0);  // nothing processed
  ASSERT_TRUE((*engine)->Prefill(std::span(tokens).first(16)).ok());
  s = (*engine)->Decode(1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  // Overridable: a larger context is allowed (with a warning).
  auto longer = Engine::Open(path, EngineOptions{.threads = 1, .context_length = 32});
  ASSERT_TRUE(longer.ok());
  EXPECT_TRUE((*longer)->Prefill(tokens).ok());
  // Token ids outside the vocabulary are refused.
  s = (*longer)->Decode(static_cast<int32_t>(spec.n_vocab));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("outside the vocabulary"), std::string::npos);
}

}  // namespace
}  // namespace sluice::testing
