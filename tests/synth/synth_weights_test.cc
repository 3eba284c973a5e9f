// Synthetic weights are valid, zero-mean blocks of the right scale, and numerically sane over all
// layers: a plain reference forward pass of a first token (position 0, where attention returns
// V exactly), written here from the dequantized bytes of a synthetic archive, keeps the residual
// stream's RMS O(1) at every layer, and the model's own router spreads tokens over the experts
// instead of sending every token to the same few.
#include "synth/synth_weights.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "core/kernels/matmul.h"
#include "io/model_open.h"
#include "llm/engine.h"
#include "synth/synth.h"
#include "synth/synth_presets.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

double Mean(const std::vector<float>& v) {
  return std::accumulate(v.begin(), v.end(), 0.0) / v.size();
}
double Rms(const float* v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) s += double{v[i]} * v[i];
  return std::sqrt(s / n);
}
double Rms(const std::vector<float>& v) { return Rms(v.data(), v.size()); }

TEST(SynthRowPool, RowsAreZeroMeanWithTheRequestedSpread) {
  // The grid types are random valid blocks scaled to the spread (no quantizer for them).
  for (GgmlType type : {GgmlType::kQ4_K, GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ6_K,
                        GgmlType::kIQ2_XXS, GgmlType::kIQ2_XS, GgmlType::kIQ2_S, GgmlType::kIQ3_XXS,
                        GgmlType::kIQ3_S, GgmlType::kIQ1_S, GgmlType::kIQ1_M}) {
    const float stddev = 0.03f;
    SynthRowPool pool(type, 1024, stddev, 5, 128 << 10);
    ASSERT_GE(pool.rows(), 64);
    std::vector<uint8_t> m(pool.row_bytes() * 256);
    pool.FillMatrix(99, 256, m.data());
    std::vector<float> values(256 * 1024);
    for (int r = 0; r < 256; ++r) {
      DequantizeRow(type, m.data() + r * pool.row_bytes(), values.data() + r * 1024, 1024);
    }
    for (float v : values) ASSERT_TRUE(std::isfinite(v)) << TypeName(type);
    EXPECT_LT(std::fabs(Mean(values)), 0.02 * stddev) << TypeName(type) << ": zero mean";
    EXPECT_NEAR(Rms(values), stddev, 0.08 * stddev) << TypeName(type);
  }
}

TEST(SynthRowPool, MatricesAreDeterministicAndDistinct) {
  SynthRowPool pool(GgmlType::kQ4_K, 512, 0.05f, 1, 64 << 10);
  std::vector<uint8_t> a(pool.row_bytes() * 40), b(a.size()), c(a.size());
  pool.FillMatrix(7, 40, a.data());
  pool.FillMatrix(7, 40, b.data());
  pool.FillMatrix(8, 40, c.data());
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Rows of one matrix (fewer than the pool holds) are distinct pool rows.
  for (int i = 0; i < 40; ++i) {
    for (int j = i + 1; j < 40; ++j) {
      EXPECT_NE(std::memcmp(&a[i * pool.row_bytes()], &a[j * pool.row_bytes()], pool.row_bytes()),
                0);
    }
  }
}

// y (rows) = W x, W dequantized from `data` (rows x cols of `type`).
std::vector<float> MatVecRef(GgmlType type, const uint8_t* data, int64_t rows, int64_t cols,
                             const std::vector<float>& x) {
  std::vector<float> row(cols), y(rows);
  const uint64_t rb = RowBytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(type, data + r * rb, row.data(), cols);
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += double{row[c]} * x[c];
    y[r] = static_cast<float>(s);
  }
  return y;
}

const uint8_t* Bytes(const std::vector<float>& f) {
  return reinterpret_cast<const uint8_t*>(f.data());
}

std::vector<float> RmsNorm(const std::vector<float>& x) {
  double rms = Rms(x);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = static_cast<float>(x[i] / (rms + 1e-6));
  return y;  // norm weights are all ones in synthetic models (checked below)
}

class SynthForward : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    dir_ = fs::path(tmp ? tmp : "/tmp") / ("sluice_synth_fwd_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_P(SynthForward, ResidualStaysOrderOneAndRoutingSpreads) {
  SynthShape s = *FindSynthPreset(GetParam());
  // Narrow but deep: 12 layers of 32 experts at n_embd 256 (~45 MB).
  s.n_layer = 12;
  s.n_embd = 256;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 64;
  s.n_expert = 32;
  s.n_ff_exp = 256;
  if (s.n_ff_shexp > 0) s.n_ff_shexp = 256;
  SynthOptions o;
  o.shape = s;
  o.pool_bytes = 256 << 10;
  const std::string path = (dir_ / "fwd.sluice").string();
  ASSERT_TRUE(WriteSynthModel(path, o).ok());
  auto model_or = OpenModelFile(path);
  ASSERT_TRUE(model_or.ok()) << model_or.status().ToString();
  const ModelFile& m = **model_or;
  auto dense = [&](const std::string& name) {
    const TensorInfo* t = m.FindDense(name);
    EXPECT_NE(t, nullptr) << name;
    return t;
  };
  // Dequantized routed experts, each read and converted once: (rows, cols) floats.
  std::map<std::tuple<int, int, int>, std::vector<float>> expert_cache;
  auto expert = [&](int layer, int e, ExpertMatrix which) -> const std::vector<float>& {
    std::vector<float>& f = expert_cache[{layer, e, static_cast<int>(which)}];
    if (!f.empty()) return f;
    const ExpertLocation loc = m.LocateExpert(layer, e);
    const auto& x = loc.matrices[static_cast<int>(which)];
    std::vector<uint8_t> bytes(x.bytes);
    int fd = open(m.file_paths()[x.file_index].c_str(), O_RDONLY);
    EXPECT_EQ(pread(fd, bytes.data(), x.bytes, static_cast<off_t>(x.offset)),
              static_cast<ssize_t>(x.bytes));
    close(fd);
    const int64_t cols = which == ExpertMatrix::kDown ? s.n_ff_exp : s.n_embd;
    const int64_t rows = which == ExpertMatrix::kDown ? s.n_embd : s.n_ff_exp;
    f.resize(rows * cols);
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(s.expert_type, bytes.data() + r * RowBytes(s.expert_type, cols),
                    f.data() + r * cols, cols);
    }
    return f;
  };
  const int64_t E = s.n_embd, F = s.n_ff_exp;
  const int group = s.n_head / s.n_head_kv;
  const double gain = 1.0 / std::sqrt(2.0 * s.n_layer);
  std::vector<int> top1_count(s.n_expert, 0);
  // Each block's output RMS, over every (token, layer, expert): single samples of 256 elements
  // of a product of Gaussians spread widely, their mean square does not.
  struct MeanSquare {
    double sum = 0;
    int n = 0;
    void Add(double rms) { sum += rms * rms, ++n; }
    double Rms() const { return std::sqrt(sum / n); }
  } attn_gain, expert_gain, gate_scale, router_scale;
  const TensorInfo* embd = dense("token_embd.weight");
  const int n_tokens = 32;
  for (int token = 0; token < n_tokens; ++token) {
    std::vector<float> x(E);
    DequantizeRow(embd->type, embd->data + token * RowBytes(embd->type, E), x.data(), E);
    ASSERT_NEAR(Rms(x), 1.0, 0.25) << "embedding rows have unit RMS";
    for (int l = 0; l < s.n_layer; ++l) {
      const std::string b = "blk." + std::to_string(l) + ".";
      const float* norm = reinterpret_cast<const float*>(dense(b + "attn_norm.weight")->data);
      ASSERT_EQ(norm[0], 1.0f);
      // Attention at position 0: softmax over one key is 1, so each head outputs its V.
      std::vector<float> h = RmsNorm(x);
      const TensorInfo* wv = dense(b + "attn_v.weight");
      std::vector<float> v = MatVecRef(wv->type, wv->data, s.kv_dim(), E, h);
      std::vector<float> heads(s.q_dim());
      for (int hd = 0; hd < s.n_head; ++hd) {
        std::copy_n(&v[(hd / group) * s.head_dim], s.head_dim, &heads[hd * s.head_dim]);
      }
      const TensorInfo* wo = dense(b + "attn_output.weight");
      std::vector<float> attn = MatVecRef(wo->type, wo->data, E, s.q_dim(), heads);
      attn_gain.Add(Rms(attn));
      for (int64_t i = 0; i < E; ++i) x[i] += attn[i];
      // MoE with the model's own router (softmax, top-k, renormalised).
      h = RmsNorm(x);
      const TensorInfo* wr = dense(b + "ffn_gate_inp.weight");
      std::vector<float> logits = MatVecRef(GgmlType::kF32, wr->data, s.n_expert, E, h);
      router_scale.Add(Rms(logits));
      std::vector<int> order(s.n_expert);
      std::iota(order.begin(), order.end(), 0);
      std::partial_sort(order.begin(), order.begin() + s.n_expert_used, order.end(),
                        [&](int a, int c) { return logits[a] > logits[c]; });
      if (l == s.n_layer - 1) ++top1_count[order[0]];
      double wsum = 0;
      std::vector<double> w(s.n_expert_used);
      for (int j = 0; j < s.n_expert_used; ++j) wsum += w[j] = std::exp(logits[order[j]]);
      std::vector<float> moe(E, 0.0f);
      for (int j = 0; j < s.n_expert_used; ++j) {
        auto g =
            MatVecRef(GgmlType::kF32, Bytes(expert(l, order[j], ExpertMatrix::kGate)), F, E, h);
        auto u = MatVecRef(GgmlType::kF32, Bytes(expert(l, order[j], ExpertMatrix::kUp)), F, E, h);
        gate_scale.Add(Rms(g));
        std::vector<float> act(F);
        for (int64_t i = 0; i < F; ++i) act[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
        auto d =
            MatVecRef(GgmlType::kF32, Bytes(expert(l, order[j], ExpertMatrix::kDown)), E, F, act);
        expert_gain.Add(Rms(d));
        for (int64_t i = 0; i < E; ++i) moe[i] += static_cast<float>(w[j] / wsum) * d[i];
      }
      if (s.n_ff_shexp > 0) {
        const TensorInfo* gs = dense(b + "ffn_gate_shexp.weight");
        const TensorInfo* us = dense(b + "ffn_up_shexp.weight");
        const TensorInfo* ds = dense(b + "ffn_down_shexp.weight");
        auto g = MatVecRef(gs->type, gs->data, s.n_ff_shexp, E, h);
        auto u = MatVecRef(us->type, us->data, s.n_ff_shexp, E, h);
        std::vector<float> act(s.n_ff_shexp);
        for (int64_t i = 0; i < s.n_ff_shexp; ++i) act[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
        auto d = MatVecRef(ds->type, ds->data, E, s.n_ff_shexp, act);
        const float* gate_w =
            reinterpret_cast<const float*>(dense(b + "ffn_gate_inp_shexp.weight")->data);
        double z = 0;
        for (int64_t i = 0; i < E; ++i) z += gate_w[i] * h[i];
        const double sig = 1.0 / (1.0 + std::exp(-z));
        for (int64_t i = 0; i < E; ++i) moe[i] += static_cast<float>(sig * d[i]);
      }
      for (int64_t i = 0; i < E; ++i) x[i] += moe[i];
      const double rms = Rms(x);
      ASSERT_TRUE(std::isfinite(rms));
      EXPECT_GT(rms, 0.7) << "token " << token << " layer " << l << ": vanishing";
      EXPECT_LT(rms, 2.0) << "token " << token << " layer " << l << ": exploding";
    }
  }
  EXPECT_NEAR(attn_gain.Rms(), gain, 0.2 * gain) << "attention adds ~gain";
  EXPECT_NEAR(expert_gain.Rms(), gain, 0.2 * gain) << "each expert adds ~gain";
  EXPECT_NEAR(gate_scale.Rms(), 1.0, 0.1) << "gate/up outputs of unit scale";
  EXPECT_NEAR(router_scale.Rms(), 1.0, 0.1) << "router logits of unit scale";
  // No collapse: the last layer's top-1 choices spread over the experts.
  int distinct = 0, most = 0;
  for (int c : top1_count) {
    distinct += c > 0;
    most = std::max(most, c);
  }
  EXPECT_GE(distinct, s.n_expert / 3) << "tokens spread over experts";
  EXPECT_LE(most, n_tokens / 4) << "no expert takes most tokens";
}

INSTANTIATE_TEST_SUITE_P(Archs, SynthForward,
                         ::testing::Values("qwen3-30b-a3b", "qwen3-235b-a22b", "mixtral-8x22b"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return n;
                         });

// The Qwen3.5 preset writes its real layer types (qwen35moe: gated delta-net layers and gated
// attention every 4th); narrowed, the engine runs it and its logits keep the unit scale the
// output head is built for (the residual stream neither vanishes nor explodes through them).
TEST_F(SynthForward, Qwen35PresetHasItsRealLayersAndRuns) {
  SynthShape s = *FindSynthPreset("qwen3.5-397b-a17b");
  EXPECT_EQ(s.arch, "qwen35moe");
  s.n_layer = 8;  // 6 delta-net + 2 attention
  s.n_embd = 256;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.head_dim = 64;
  s.n_rot = 16;
  s.ssm_state_size = 32;
  s.ssm_k_heads = 2;
  s.ssm_v_heads = 4;
  s.n_expert = 16;
  s.n_ff_exp = 256;
  s.n_ff_shexp = 256;
  SynthOptions o;
  o.shape = s;
  o.pool_bytes = 256 << 10;
  const std::string path = (dir_ / "q35.sluice").string();
  ASSERT_TRUE(WriteSynthModel(path, o).ok());
  auto engine = Engine::Open(path, EngineOptions{.threads = 2});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const ModelConfig& c = (*engine)->config();
  EXPECT_EQ(c.n_delta_net_layers(), 6);
  EXPECT_EQ(c.n_attention_layers(), 2);
  const std::vector<int32_t> tokens = {1, 50, 100, 7, 200, 33, 90, 12};
  std::vector<float> logits(tokens.size() * c.n_vocab);
  ASSERT_TRUE((*engine)->Prefill(tokens, logits).ok());
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::vector<float> row(logits.begin() + t * c.n_vocab, logits.begin() + (t + 1) * c.n_vocab);
    for (float v : row) ASSERT_TRUE(std::isfinite(v));
    // logits = output(rmsnorm(x)): unit scale whatever x's, so check x indirectly through
    // the spread across positions: a collapsed stream gives every position the same logits.
    EXPECT_NEAR(Rms(row), 1.0, 0.35) << "position " << t;
  }
  double diff = 0;
  for (int64_t v = 0; v < c.n_vocab; ++v) diff += std::fabs(logits[v] - logits[c.n_vocab + v]);
  EXPECT_GT(diff / c.n_vocab, 0.1) << "positions 0 and 1 give different logits";
}

// The DeepSeek-V3 preset writes its real layers (deepseek2: leading dense layers, multi-head
// latent attention, grouped routing); narrowed, the engine runs it with sane logits.
TEST_F(SynthForward, DeepSeekV3PresetHasItsRealLayersAndRuns) {
  SynthShape s = *FindSynthPreset("deepseek-v3");
  EXPECT_EQ(s.arch, "deepseek2");
  s.n_layer = 5;  // 3 dense + 2 MoE
  s.n_embd = 256;
  s.n_head = 4;
  s.n_rot = 16;
  s.mla_q_lora = 64;
  s.mla_kv_lora = 32;
  s.mla_k_head = 48;
  s.mla_v_head = 32;
  s.n_ff_dense = 256;
  s.n_expert = 16;
  s.expert_groups = 4;
  s.expert_groups_used = 2;
  s.n_ff_exp = 256;
  s.n_ff_shexp = 256;
  SynthOptions o;
  o.shape = s;
  o.pool_bytes = 256 << 10;
  const std::string path = (dir_ / "ds.sluice").string();
  ASSERT_TRUE(WriteSynthModel(path, o).ok());
  auto engine = Engine::Open(path, EngineOptions{.threads = 2});
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  const ModelConfig& c = (*engine)->config();
  EXPECT_EQ(c.n_dense_layers, 3);
  EXPECT_EQ(c.mla.kv_lora, 32);
  EXPECT_EQ(c.n_expert_groups, 4);
  const std::vector<int32_t> tokens = {1, 50, 100, 7, 200, 33};
  std::vector<float> logits(tokens.size() * c.n_vocab);
  ASSERT_TRUE((*engine)->Prefill(tokens, logits).ok());
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::vector<float> row(logits.begin() + t * c.n_vocab, logits.begin() + (t + 1) * c.n_vocab);
    for (float v : row) ASSERT_TRUE(std::isfinite(v));
    EXPECT_NEAR(Rms(row), 1.0, 0.35) << "position " << t;
  }
}

}  // namespace
}  // namespace sluice
