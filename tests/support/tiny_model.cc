#include "tests/support/tiny_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "core/base/str_cat.h"
#include "core/kernels/matmul.h"
#include "io/gguf_writer.h"
#include "io/metadata.h"

namespace sluice::testing {
namespace {

struct Tensor {
  GgufTensorSpec spec;
  std::vector<uint8_t> bytes;
};

class Builder {
 public:
  explicit Builder(const TinyModelSpec& s) : s_(s), rng_(s.seed) {}

  // A tensor of random values: N(mean, std) quantized to `type`, row by row.
  void Add(std::string name, std::vector<int64_t> ne, GgmlType type, float mean, float std) {
    if (s_.edit_tensor) s_.edit_tensor(name, type, ne);
    if (name.empty()) return;
    int64_t rows = 1;
    for (size_t i = 1; i < ne.size(); ++i) rows *= ne[i];
    const uint64_t row_bytes = RowBytes(type, ne[0]);
    Tensor t{GgufTensorSpec{name, type, ne}, std::vector<uint8_t>(row_bytes * rows)};
    std::normal_distribution<float> dist(mean, std);
    std::vector<float> row(ne[0]);
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = dist(rng_);
      if (type == GgmlType::kF32) {
        std::memcpy(t.bytes.data() + r * row_bytes, row.data(), row_bytes);
      } else {
        QuantizeRow(type, row.data(), t.bytes.data() + r * row_bytes, ne[0]);
      }
    }
    tensors_.push_back(std::move(t));
  }

  Status Write(const std::string& path, const Metadata& md) {
    std::vector<GgufTensorSpec> specs;
    for (const Tensor& t : tensors_) specs.push_back(t.spec);
    ASSIGN_OR_RETURN(auto writer, GgufWriter::Create(path, md, specs));
    for (const Tensor& t : tensors_) {
      RETURN_IF_ERROR(writer->WriteTensor(t.spec.name, t.bytes.data(), t.bytes.size()));
    }
    return writer->Finish();
  }

 private:
  const TinyModelSpec& s_;
  std::mt19937 rng_;
  std::vector<Tensor> tensors_;
};

}  // namespace

Status WriteTinyModel(const std::string& path, const TinyModelSpec& s) {
  const std::string a = s.arch;
  const bool qwen3 = a == "qwen3moe", qwen2 = a == "qwen2moe";
  Metadata md;
  md.SetString("general.architecture", a);
  md.SetU32(a + ".context_length", static_cast<uint32_t>(s.n_ctx));
  md.SetU32(a + ".embedding_length", static_cast<uint32_t>(s.n_embd));
  md.SetU32(a + ".block_count", s.n_layer);
  md.SetU32(a + ".attention.head_count", s.n_head);
  md.SetU32(a + ".attention.head_count_kv", s.n_head_kv);
  md.SetU32(a + ".attention.key_length", s.head_dim);
  md.SetU32(a + ".attention.value_length", s.head_dim);
  md.SetF32(a + ".attention.layer_norm_rms_epsilon", 1e-6f);
  md.SetF32(a + ".rope.freq_base", s.rope_base);
  md.SetU32(a + ".expert_count", s.n_expert);
  md.SetU32(a + ".expert_used_count", s.n_expert_used);
  if (a == "llama") {
    md.SetU32(a + ".feed_forward_length", static_cast<uint32_t>(s.n_ff));
  } else {
    md.SetU32(a + ".expert_feed_forward_length", static_cast<uint32_t>(s.n_ff));
  }
  if (qwen2) md.SetU32(a + ".expert_shared_feed_forward_length", uint32_t(s.n_ff_shexp));
  std::vector<std::string> tokens;
  for (int64_t i = 0; i < s.n_vocab; ++i) tokens.push_back(StrCat("t", i));
  md.SetString("tokenizer.ggml.model", "gpt2");
  md.SetStringArray("tokenizer.ggml.tokens", tokens);

  Builder b(s);
  const float w = s.weight_std;
  const int64_t q_dim = int64_t{s.n_head} * s.head_dim, kv_dim = int64_t{s.n_head_kv} * s.head_dim;
  b.Add("token_embd.weight", {s.n_embd, s.n_vocab}, s.embd_type, 0.0f, 1.0f);
  for (int l = 0; l < s.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    b.Add(p + "attn_norm.weight", {s.n_embd}, GgmlType::kF32, 1.0f, 0.1f);
    b.Add(p + "attn_q.weight", {s.n_embd, q_dim}, s.matrix_type, 0.0f, w);
    b.Add(p + "attn_k.weight", {s.n_embd, kv_dim}, s.matrix_type, 0.0f, w);
    b.Add(p + "attn_v.weight", {s.n_embd, kv_dim}, s.matrix_type, 0.0f, w);
    b.Add(p + "attn_output.weight", {q_dim, s.n_embd}, s.matrix_type, 0.0f, w);
    if (qwen2) {
      b.Add(p + "attn_q.bias", {q_dim}, GgmlType::kF32, 0.0f, 0.1f);
      b.Add(p + "attn_k.bias", {kv_dim}, GgmlType::kF32, 0.0f, 0.1f);
      b.Add(p + "attn_v.bias", {kv_dim}, GgmlType::kF32, 0.0f, 0.1f);
    }
    if (qwen3) {
      b.Add(p + "attn_q_norm.weight", {s.head_dim}, GgmlType::kF32, 1.0f, 0.1f);
      b.Add(p + "attn_k_norm.weight", {s.head_dim}, GgmlType::kF32, 1.0f, 0.1f);
    }
    b.Add(p + "ffn_norm.weight", {s.n_embd}, GgmlType::kF32, 1.0f, 0.1f);
    // A wider router spread than the other weights keeps top-k choices away from near-ties.
    b.Add(p + "ffn_gate_inp.weight", {s.n_embd, s.n_expert}, GgmlType::kF32, 0.0f, 0.3f);
    b.Add(p + "ffn_gate_exps.weight", {s.n_embd, s.n_ff, s.n_expert}, s.expert_type, 0.0f, w);
    b.Add(p + "ffn_up_exps.weight", {s.n_embd, s.n_ff, s.n_expert}, s.expert_type, 0.0f, w);
    b.Add(p + "ffn_down_exps.weight", {s.n_ff, s.n_embd, s.n_expert}, s.expert_type, 0.0f, w);
    if (qwen2) {
      b.Add(p + "ffn_gate_inp_shexp.weight", {s.n_embd}, GgmlType::kF32, 0.0f, 0.1f);
      b.Add(p + "ffn_gate_shexp.weight", {s.n_embd, s.n_ff_shexp}, s.matrix_type, 0.0f, w);
      b.Add(p + "ffn_up_shexp.weight", {s.n_embd, s.n_ff_shexp}, s.matrix_type, 0.0f, w);
      b.Add(p + "ffn_down_shexp.weight", {s.n_ff_shexp, s.n_embd}, s.matrix_type, 0.0f, w);
    }
  }
  b.Add("output_norm.weight", {s.n_embd}, GgmlType::kF32, 1.0f, 0.1f);
  if (!s.tied_output) b.Add("output.weight", {s.n_embd, s.n_vocab}, s.matrix_type, 0.0f, w);
  if (s.edit_metadata) s.edit_metadata(md);
  return b.Write(path, md);
}

}  // namespace sluice::testing

namespace sluice::testing {

Result<std::vector<float>> EngineLogits(const std::string& path, const EngineOptions& options,
                                        std::span<const int32_t> tokens) {
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Open(path, options));
  std::vector<float> logits(tokens.size() * engine->config().n_vocab);
  RETURN_IF_ERROR(engine->Prefill(tokens, logits));
  return logits;
}

std::vector<int32_t> TestTokens(int n, int64_t n_vocab) {
  std::vector<int32_t> t(n);
  for (int i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 7 + 3) % n_vocab);
  return t;
}

template <typename T>
Diff CompareImpl(std::span<const float> got, std::span<const T> want, int64_t n_vocab) {
  CHECK_EQ(got.size(), want.size());
  Diff d;
  const int64_t rows = static_cast<int64_t>(got.size()) / n_vocab;
  double sum = 0;
  int agree = 0;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t ag = 0, aw = 0;
    for (int64_t i = 0; i < n_vocab; ++i) {
      const int64_t j = r * n_vocab + i;
      const double diff = std::fabs(double(got[j]) - double(want[j]));
      d.max_abs = std::max(d.max_abs, diff);
      sum += diff;
      if (got[j] > got[r * n_vocab + ag]) ag = i;
      if (want[j] > want[r * n_vocab + aw]) aw = i;
    }
    agree += ag == aw;
  }
  d.mean_abs = sum / got.size();
  d.argmax_agreement = rows > 0 ? double(agree) / rows : 1.0;
  return d;
}

Diff CompareLogits(std::span<const float> got, std::span<const double> want, int64_t n_vocab) {
  return CompareImpl(got, want, n_vocab);
}
Diff CompareLogits(std::span<const float> got, std::span<const float> want, int64_t n_vocab) {
  return CompareImpl(got, want, n_vocab);
}

}  // namespace sluice::testing
