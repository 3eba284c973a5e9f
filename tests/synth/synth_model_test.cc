// `sluice synth` output: a valid archive and GGUF the model loader accepts (config, every tensor's
// shape and type), identical bytes in both formats, the metadata that marks it synthetic, a
// working tokenizer and chat template, free-space refusal and cancellation leaving nothing.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "io/model_open.h"
#include "llm/engine.h"
#include "llm/model_config.h"
#include "llm/tensor_plan.h"
#include "moe/routing_spec.h"
#include "synth/synth.h"
#include "synth/synth_presets.h"
#include "synth/synth_vocab.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

class SynthModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    dir_ = fs::path(tmp ? tmp : "/tmp") / ("sluice_synth_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // The demo preset cut to 2 layers of 8 experts (~15 MB), small row pools for speed.
  static SynthOptions SmallOptions(const std::string& preset = "demo", int layers = 2,
                                   int experts = 8) {
    SynthScale scale;
    scale.layers = layers;
    scale.experts = experts;
    SynthOptions o;
    Result<SynthShape> shape = ScaleSynthShape(*FindSynthPreset(preset), scale);
    EXPECT_TRUE(shape.ok()) << shape.status().ToString();
    o.shape = *shape;
    o.seed = 3;
    o.pool_bytes = 256 << 10;
    return o;
  }
  static std::vector<uint8_t> ReadAt(const std::string& path, uint64_t offset, uint64_t bytes) {
    std::vector<uint8_t> out(bytes);
    int fd = open(path.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0) << path;
    EXPECT_EQ(pread(fd, out.data(), bytes, static_cast<off_t>(offset)),
              static_cast<ssize_t>(bytes));
    close(fd);
    return out;
  }
  static std::vector<uint8_t> ExpertBytes(const ModelFile& m, int layer, int expert,
                                          ExpertMatrix which) {
    ExpertLocation loc = m.LocateExpert(layer, expert);
    const auto& e = loc.matrices[static_cast<int>(which)];
    return ReadAt(m.file_paths()[e.file_index], e.offset, e.bytes);
  }

  fs::path dir_;
};

TEST_F(SynthModelTest, ArchiveLoadsAsTheModelItClaims) {
  SynthOptions o = SmallOptions();
  std::string path = Path("demo.sluice");
  Result<SynthResult> r = WriteSynthModel(path, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->file_bytes, fs::file_size(path));
  EXPECT_LE(r->file_bytes, SynthFileBytes(o.shape));
  EXPECT_GE(r->file_bytes, o.shape.all_expert_bytes() + o.shape.dense_bytes(SynthVocabSize()));

  auto model = OpenModelFile(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  Result<ModelConfig> config = ReadModelConfig((*model)->metadata());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->n_layer, 2);
  EXPECT_EQ(config->n_expert, 8);
  EXPECT_EQ(config->n_expert_used, 4);
  EXPECT_EQ(config->n_ff_exp, 512);
  Status tensors = CheckModelTensors(**model, *config);
  EXPECT_TRUE(tensors.ok()) << tensors.ToString();
  EXPECT_EQ((*model)->dense_bytes_total(), o.shape.dense_bytes(config->n_vocab));
  EXPECT_EQ((*model)->expert_bytes_total(), o.shape.all_expert_bytes());

  const Metadata& md = (*model)->metadata();
  EXPECT_TRUE(*md.GetBool(kMetaSynthetic));
  EXPECT_EQ(*md.GetString(kMetaDefaultRouting), "synthetic");
  EXPECT_EQ(*md.GetString(kMetaSynthPreset), "demo");
  EXPECT_EQ(*md.GetUint("sluice.synth.full_layers"), 8u);
  EXPECT_EQ(ResolveRoutingSpec("", md)->kind, RoutingSpec::Kind::kSynthetic);
  Result<RoutingShape> shape = RoutingShapeFromModel(**model);
  ASSERT_TRUE(shape.ok()) << shape.status().ToString();
  EXPECT_EQ(shape->n_expert, 8);
  EXPECT_EQ(shape->moe_layers, (std::vector<int>{0, 1}));
}

TEST_F(SynthModelTest, TokenizerAndChatTemplateWork) {
  Metadata md = SynthMetadata(SmallOptions().shape, 1);
  auto tok = Tokenizer::FromMetadata(md);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  for (const char* text : {"hello, the world!", "Ünïcødé and \n new lines", "and the of to"}) {
    std::vector<int32_t> ids = (*tok)->Encode(text);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ((*tok)->Decode(ids), text);
  }
  // Merges apply: " the" is one token.
  EXPECT_EQ((*tok)->Encode(" the").size(), 1u);
  EXPECT_GE((*tok)->FindToken("<|im_start|>"), 0);
  EXPECT_TRUE((*tok)->IsControl((*tok)->FindToken("<|im_end|>")));
  EXPECT_EQ((*tok)->eos_id(), (*tok)->FindToken("<|im_end|>"));
  auto chat = ChatTemplate::FromMetadata(md);
  ASSERT_TRUE(chat.ok()) << chat.status().ToString();
  EXPECT_TRUE(chat->warning().empty()) << "ChatML recognised: " << chat->warning();
}

TEST_F(SynthModelTest, GgufHoldsTheSameBytes) {
  // qwen2moe with a shared expert (the qwen3.5 preset's architecture), narrowed to a few MB.
  SynthOptions o = SmallOptions("qwen3.5-397b-a17b", 2, 16);
  o.shape.n_embd = 512;
  o.shape.n_ff_exp = 256;
  o.shape.n_ff_shexp = 256;
  o.shape.n_head = 8;
  o.shape.head_dim = 64;
  std::string archive = Path("q.sluice"), gguf = Path("q.gguf");
  ASSERT_TRUE(WriteSynthModel(archive, o).ok());
  o.format = SynthFormat::kGguf;
  Result<SynthResult> g = WriteSynthModel(gguf, o);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto a = OpenModelFile(archive);
  auto b = OpenModelFile(gguf);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  Result<ModelConfig> config = ReadModelConfig((*b)->metadata());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->has_shared_expert());
  EXPECT_TRUE(CheckModelTensors(**b, *config).ok());
  ASSERT_EQ((*a)->dense_tensors().size(), (*b)->dense_tensors().size());
  for (const TensorInfo& t : (*a)->dense_tensors()) {
    const TensorInfo* u = (*b)->FindDense(t.name);
    ASSERT_NE(u, nullptr) << t.name;
    ASSERT_EQ(t.nbytes, u->nbytes) << t.name;
    EXPECT_EQ(std::memcmp(t.data, u->data, t.nbytes), 0) << t.name;
  }
  for (int e : {0, 7, 15}) {
    for (ExpertMatrix m : {ExpertMatrix::kGate, ExpertMatrix::kUp, ExpertMatrix::kDown}) {
      EXPECT_EQ(ExpertBytes(**a, 0, e, m), ExpertBytes(**b, 0, e, m)) << "expert " << e;
    }
  }
  // Different experts are different matrices.
  EXPECT_NE(ExpertBytes(**a, 0, 0, ExpertMatrix::kGate),
            ExpertBytes(**a, 0, 1, ExpertMatrix::kGate));
}

TEST_F(SynthModelTest, RefusesWhatDoesNotFit) {
  SynthShape huge = *FindSynthPreset("qwen3.5-397b-a17b");
  huge.n_layer = 60000;  // ~217 TB
  Status st = CheckSynthFreeSpace(Path("huge.sluice"), huge);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("--layers"), std::string::npos) << st.message();
  SynthOptions o;
  o.shape = huge;
  EXPECT_FALSE(WriteSynthModel(Path("huge.sluice"), o).ok());
  EXPECT_TRUE(fs::is_empty(dir_)) << "nothing written";
}

TEST_F(SynthModelTest, CancelLeavesNothing) {
  std::atomic<bool> cancel{true};
  SynthOptions o = SmallOptions();
  o.cancel = &cancel;
  Result<SynthResult> r = WriteSynthModel(Path("c.sluice"), o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled);
  o.format = SynthFormat::kGguf;
  EXPECT_FALSE(WriteSynthModel(Path("c.gguf"), o).ok());
  EXPECT_TRUE(fs::is_empty(dir_)) << "temporary files removed";
}

// A type mix like the low-bit "UD" files: IQ1_S gate/up, IQ2_XXS down, Q4_K dense tensors. The
// file says so tensor by tensor, and the engine runs it.
TEST_F(SynthModelTest, TypeMixLikeTheLowBitFiles) {
  SynthScale scale;
  scale.layers = 2;
  scale.experts = 8;
  scale.quant = GgmlType::kIQ1_S;
  scale.quant_down = GgmlType::kIQ2_XXS;
  scale.dense_quant = GgmlType::kQ4_K;
  Result<SynthShape> shape = ScaleSynthShape(*FindSynthPreset("demo"), scale);
  ASSERT_TRUE(shape.ok()) << shape.status().ToString();
  SynthOptions o;
  o.shape = *shape;
  o.pool_bytes = 256 << 10;
  const std::string path = Path("mix.sluice");
  ASSERT_TRUE(WriteSynthModel(path, o).ok());
  auto model = OpenModelFile(path);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const std::optional<ExpertTensors> e = (*model)->expert_tensors(1);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->gate.type, GgmlType::kIQ1_S);
  EXPECT_EQ(e->up.type, GgmlType::kIQ1_S);
  EXPECT_EQ(e->down.type, GgmlType::kIQ2_XXS);
  EXPECT_EQ((*model)->FindDense("blk.0.attn_q.weight")->type, GgmlType::kQ4_K);
  EXPECT_EQ((*model)->FindDense("blk.0.ffn_gate_inp.weight")->type, GgmlType::kF32);  // router
  EXPECT_EQ(shape->expert_bytes(),
            2 * RowBytes(GgmlType::kIQ1_S, shape->n_embd) * shape->n_ff_exp +
                RowBytes(GgmlType::kIQ2_XXS, shape->n_ff_exp) * shape->n_embd);
  auto engine = Engine::Open(path, EngineOptions{.threads = 2});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  ASSERT_TRUE((*engine)->Prefill(std::vector<int32_t>{1, 2, 3}).ok());
  for (float v : (*engine)->logits()) ASSERT_TRUE(std::isfinite(v));
  scale.quant_down = GgmlType::kF32;
  EXPECT_FALSE(ScaleSynthShape(*FindSynthPreset("demo"), scale).ok());
}

}  // namespace
}  // namespace sluice
