// Reads the GGUFs in ../shared/refdata, made by an outside implementation, and checks them against
// facts stated independently in its README: the architecture and config keys, the tensor list a
// qwen3moe model of that shape must have (3 + 12 per layer), every shape and type, and the
// statistics of the random weights (norms ~ N(1, 0.1), matrices ~ N(0, 0.05)), which only hold
// when each tensor's data offset is right. Skips with a message when the folder is absent.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "io/gguf_model_file.h"
#include "io/gguf_reader.h"

namespace sluice {
namespace {

const std::string kRefdata = SLUICE_REFDATA_DIR;

#define SKIP_WITHOUT_REFDATA()                                                  \
  if (!std::filesystem::exists(kRefdata + "/README.md")) {                      \
    GTEST_SKIP() << "reference data not found at " << kRefdata << "; skipping"; \
  }

// The README's table, per shape.
struct Shape {
  int64_t n_embd, head_dim, n_ff_exp;
};
constexpr int64_t kVocab = 299, kHeads = 4, kKvHeads = 2, kExperts = 8, kLayers = 2;

struct RefModel {
  const char* file;
  Shape shape;
  GgmlType matrix_type;  // every matrix; routers and norms are f32 in every file
};

const RefModel kModels[] = {
    {"tiny-qwen3moe-f32.gguf", {64, 16, 32}, GgmlType::kF32},
    {"tiny-qwen3moe-q8_0.gguf", {64, 16, 32}, GgmlType::kQ8_0},
    {"tiny-qwen3moe-q4_0-pure.gguf", {64, 16, 32}, GgmlType::kQ4_0},
    {"tiny-qwen3moe256-f32.gguf", {256, 128, 256}, GgmlType::kF32},
    {"tiny-qwen3moe256-q4_k-pure.gguf", {256, 128, 256}, GgmlType::kQ4_K},
};

struct Expected {
  std::vector<int64_t> ne;
  bool matrix;
};

// Every tensor a qwen3moe model of this shape has, with its shape in GGUF order.
std::map<std::string, Expected> ExpectedTensors(const Shape& s) {
  const int64_t q = kHeads * s.head_dim, kv = kKvHeads * s.head_dim;
  std::map<std::string, Expected> t = {
      {"token_embd.weight", {{s.n_embd, kVocab}, true}},
      {"output.weight", {{s.n_embd, kVocab}, true}},
      {"output_norm.weight", {{s.n_embd}, false}},
  };
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    t[p + "attn_norm.weight"] = {{s.n_embd}, false};
    t[p + "attn_q.weight"] = {{s.n_embd, q}, true};
    t[p + "attn_k.weight"] = {{s.n_embd, kv}, true};
    t[p + "attn_v.weight"] = {{s.n_embd, kv}, true};
    t[p + "attn_output.weight"] = {{q, s.n_embd}, true};
    t[p + "attn_q_norm.weight"] = {{s.head_dim}, false};
    t[p + "attn_k_norm.weight"] = {{s.head_dim}, false};
    t[p + "ffn_norm.weight"] = {{s.n_embd}, false};
    t[p + "ffn_gate_inp.weight"] = {{s.n_embd, kExperts}, false};
    t[p + "ffn_gate_exps.weight"] = {{s.n_embd, s.n_ff_exp, kExperts}, true};
    t[p + "ffn_up_exps.weight"] = {{s.n_embd, s.n_ff_exp, kExperts}, true};
    t[p + "ffn_down_exps.weight"] = {{s.n_ff_exp, s.n_embd, kExperts}, true};
  }
  return t;
}

// Mean and standard deviation of an f32 tensor's values.
std::pair<double, double> Stats(const uint8_t* data, int64_t n) {
  double sum = 0, sum2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    float v;
    std::memcpy(&v, data + 4 * i, 4);
    sum += v;
    sum2 += static_cast<double>(v) * v;
  }
  const double mean = sum / n;
  return {mean, std::sqrt(sum2 / n - mean * mean)};
}

TEST(GgufRefdata, ModelsMatchTheReadme) {
  SKIP_WITHOUT_REFDATA();
  for (const RefModel& ref : kModels) {
    SCOPED_TRACE(ref.file);
    auto file = GgufFile::Open(kRefdata + "/" + ref.file);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    const GgufFile& f = **file;
    const Metadata& m = f.metadata();
    EXPECT_EQ(*m.GetString("general.architecture"), "qwen3moe");
    EXPECT_EQ(*m.GetUint("qwen3moe.embedding_length"), static_cast<uint64_t>(ref.shape.n_embd));
    EXPECT_EQ(*m.GetUint("qwen3moe.block_count"), 2u);
    EXPECT_EQ(*m.GetUint("qwen3moe.attention.head_count"), 4u);
    EXPECT_EQ(*m.GetUint("qwen3moe.attention.head_count_kv"), 2u);
    EXPECT_EQ(*m.GetUint("qwen3moe.attention.key_length"),
              static_cast<uint64_t>(ref.shape.head_dim));
    EXPECT_EQ(*m.GetUint("qwen3moe.expert_count"), 8u);
    EXPECT_EQ(*m.GetUint("qwen3moe.expert_used_count"), 2u);
    EXPECT_EQ(*m.GetUint("qwen3moe.expert_feed_forward_length"),
              static_cast<uint64_t>(ref.shape.n_ff_exp));
    EXPECT_EQ(*m.GetUint("qwen3moe.context_length"), 256u);
    EXPECT_FLOAT_EQ(static_cast<float>(*m.GetFloat("qwen3moe.rope.freq_base")), 1e6f);
    EXPECT_FLOAT_EQ(static_cast<float>(*m.GetFloat("qwen3moe.attention.layer_norm_rms_epsilon")),
                    1e-6f);
    EXPECT_EQ(m.GetStringArray("tokenizer.ggml.tokens")->size(), 299u);
    EXPECT_EQ(*m.GetUint("tokenizer.ggml.bos_token_id"), 296u);
    EXPECT_EQ(*m.GetUint("tokenizer.ggml.eos_token_id"), 298u);

    const std::map<std::string, Expected> want = ExpectedTensors(ref.shape);
    EXPECT_EQ(f.tensors().size(), want.size());
    for (const auto& [name, exp] : want) {
      const GgufTensorInfo* t = f.FindTensor(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(t->n_dims, static_cast<int>(exp.ne.size())) << name;
      for (size_t d = 0; d < exp.ne.size(); ++d) EXPECT_EQ(t->ne[d], exp.ne[d]) << name << " " << d;
      EXPECT_EQ(t->type, exp.matrix ? ref.matrix_type : GgmlType::kF32) << name;
      // Norms ~ N(1, 0.1); f32 matrices and routers ~ N(0, 0.05). Bounds are > 5 standard errors.
      if (t->type != GgmlType::kF32) continue;
      const int64_t n = t->ne[0] * t->ne[1] * t->ne[2];
      const auto [mean, stddev] = Stats(f.TensorData(*t), n);
      const bool norm = name.find("norm") != std::string::npos;
      const double want_mean = norm ? 1.0 : 0.0, want_std = norm ? 0.1 : 0.05;
      EXPECT_NEAR(mean, want_mean, 5 * want_std / std::sqrt(static_cast<double>(n))) << name;
      EXPECT_NEAR(stddev, want_std, want_std * (0.2 + 5 / std::sqrt(2.0 * n))) << name;
    }
  }
}

// Bytes per block and elements per block, from the formats' definitions.
uint64_t SliceBytes(GgmlType type, int64_t ne0, int64_t ne1) {
  switch (type) {
    case GgmlType::kF32:
      return 4 * ne0 * ne1;
    case GgmlType::kQ8_0:
      return ne0 / 32 * 34 * ne1;
    case GgmlType::kQ4_0:
      return ne0 / 32 * 18 * ne1;
    case GgmlType::kQ4_K:
      return ne0 / 256 * 144 * ne1;
    default:
      ADD_FAILURE() << "unexpected type";
      return 0;
  }
}

TEST(GgufRefdata, ExpertLayoutOfTheRealModels) {
  SKIP_WITHOUT_REFDATA();
  for (const RefModel& ref : kModels) {
    SCOPED_TRACE(ref.file);
    auto file = GgufModelFile::Open(kRefdata + "/" + ref.file);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    const GgufModelFile& f = **file;
    EXPECT_EQ(f.dense_tensors().size(), 3u + 9 * kLayers);
    const int64_t n_embd = ref.shape.n_embd, n_ff = ref.shape.n_ff_exp;
    const uint64_t up = SliceBytes(ref.matrix_type, n_embd, n_ff);
    const uint64_t down = SliceBytes(ref.matrix_type, n_ff, n_embd);
    EXPECT_EQ(f.expert_bytes_total(), kLayers * kExperts * (2 * up + down));
    EXPECT_FALSE(f.expert_tensors(kLayers).has_value());
    const uint64_t file_size = std::filesystem::file_size(f.file_paths()[0]);
    for (int layer = 0; layer < kLayers; ++layer) {
      std::optional<ExpertTensors> t = f.expert_tensors(layer);
      ASSERT_TRUE(t.has_value()) << layer;
      EXPECT_EQ(t->gate.ne, (std::array<int64_t, 4>{n_embd, n_ff, kExperts, 1}));
      EXPECT_EQ(t->down.ne, (std::array<int64_t, 4>{n_ff, n_embd, kExperts, 1}));
      for (int e = 0; e < kExperts; ++e) {
        const ExpertLocation loc = f.LocateExpert(layer, e);
        const uint64_t want[3] = {up, up, down};
        for (int m = 0; m < 3; ++m) {
          const ExpertLocation::Extent& x = loc.matrices[m];
          EXPECT_EQ(x.bytes, want[m]);
          EXPECT_LE(x.offset + x.bytes, file_size);
          if (e > 0) {
            EXPECT_EQ(x.offset, f.LocateExpert(layer, e - 1).matrices[m].offset + want[m]);
          }
          if (ref.matrix_type != GgmlType::kF32) continue;
          // Each expert's slice on its own is N(0, 0.05) data.
          const auto [mean, stddev] =
              Stats(f.mapped_file(x.file_index) + x.offset, static_cast<int64_t>(x.bytes / 4));
          EXPECT_NEAR(mean, 0.0, 5 * 0.05 / std::sqrt(x.bytes / 4.0));
          EXPECT_NEAR(stddev, 0.05, 0.01);
        }
      }
    }
  }
}

// Vocabulary-only GGUFs: no tensors, and the file ends right after the metadata.
TEST(GgufRefdata, VocabularyFiles) {
  SKIP_WITHOUT_REFDATA();
  struct Vocab {
    const char* file;
    const char* model;
    size_t tokens;  // Llama 2: 32000; DeepSeek LLM: 102400; the tiny vocabulary: 299 (README)
  };
  for (const Vocab& v : {Vocab{"ggml-vocab-llama-spm.gguf", "llama", 32000},
                         Vocab{"ggml-vocab-deepseek-llm.gguf", "gpt2", 102400},
                         Vocab{"ggml-vocab-tiny-qwen3moe.gguf", "gpt2", 299}}) {
    SCOPED_TRACE(v.file);
    auto file = GgufFile::Open(kRefdata + "/vocab/" + v.file);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    EXPECT_EQ(*(*file)->metadata().GetString("tokenizer.ggml.model"), v.model);
    EXPECT_EQ((*file)->metadata().GetStringArray("tokenizer.ggml.tokens")->size(), v.tokens);
  }
}

}  // namespace
}  // namespace sluice
