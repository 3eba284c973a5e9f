#include "tests/llm/reference_model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/kernels/matmul.h"

namespace sluice::testing {
namespace {

std::vector<double> DequantizeBytes(GgmlType type, const uint8_t* data, int64_t rows,
                                    int64_t cols) {
  std::vector<float> row(cols);
  std::vector<double> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(type, data + r * RowBytes(type, cols), row.data(), cols);
    std::copy(row.begin(), row.end(), out.begin() + r * cols);
  }
  return out;
}

Result<std::vector<uint8_t>> ReadExtent(const ModelFile& model, const ExpertLocation::Extent& x) {
  const std::string& path = model.file_paths()[x.file_index];
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return IoError(path, ": open failed");
  std::vector<uint8_t> bytes(x.bytes);
  ssize_t n = pread(fd, bytes.data(), x.bytes, static_cast<off_t>(x.offset));
  close(fd);
  if (n != static_cast<ssize_t>(x.bytes)) return IoError(path, ": short read");
  return bytes;
}

std::vector<double> RmsNorm(const std::vector<double>& x, const std::vector<double>& w,
                            double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double inv = 1.0 / std::sqrt(ss / x.size() + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * inv * w[i];
  return y;
}

double Silu(double x) { return x / (1.0 + std::exp(-x)); }

}  // namespace

ReferenceModel::Vec ReferenceModel::Mat::Apply(const Vec& x) const {
  Vec y(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < cols; ++c) s += v[r * cols + c] * x[c];
    y[r] = s;
  }
  return y;
}

Result<ReferenceModel> ReferenceModel::Load(const ModelFile& model) {
  const Metadata& md = model.metadata();
  ReferenceModel m;
  ASSIGN_OR_RETURN(m.arch_, md.GetString("general.architecture"));
  const std::string a = m.arch_ + ".";
  auto u = [&](const std::string& key) -> Result<int64_t> {
    ASSIGN_OR_RETURN(uint64_t v, md.GetUint(a + key));
    return static_cast<int64_t>(v);
  };
  ASSIGN_OR_RETURN(m.n_embd_, u("embedding_length"));
  ASSIGN_OR_RETURN(int64_t n_layer, u("block_count"));
  ASSIGN_OR_RETURN(int64_t n_head, u("attention.head_count"));
  ASSIGN_OR_RETURN(int64_t n_head_kv, u("attention.head_count_kv"));
  ASSIGN_OR_RETURN(int64_t head_dim, u("attention.key_length"));
  ASSIGN_OR_RETURN(int64_t n_expert, u("expert_count"));
  ASSIGN_OR_RETURN(int64_t n_used, u("expert_used_count"));
  ASSIGN_OR_RETURN(m.eps_, md.GetFloat(a + "attention.layer_norm_rms_epsilon"));
  ASSIGN_OR_RETURN(m.rope_base_, md.GetFloatOr(a + "rope.freq_base", 10000.0));
  m.n_head_ = int(n_head);
  m.n_head_kv_ = int(n_head_kv);
  m.head_dim_ = int(head_dim);
  m.n_expert_ = int(n_expert);
  m.n_used_ = int(n_used);
  // The three supported architectures, as their model cards describe them.
  m.neox_ = m.arch_ != "llama";
  m.norm_topk_ = m.arch_ != "qwen2moe";

  auto dense = [&](const std::string& name, bool required = true) -> Result<Mat> {
    const TensorInfo* t = model.FindDense(name);
    if (t == nullptr) {
      if (required) return NotFound("reference: ", name);
      return Mat{};
    }
    return Mat{t->ne[1], t->ne[0], DequantizeBytes(t->type, t->data, t->rows(), t->ne[0])};
  };
  ASSIGN_OR_RETURN(m.embd_, dense("token_embd.weight"));
  m.n_vocab_ = m.embd_.rows;
  ASSIGN_OR_RETURN(Mat out, dense("output.weight", false));
  m.output_ = out.rows > 0 ? std::move(out) : m.embd_;
  ASSIGN_OR_RETURN(Mat out_norm, dense("output_norm.weight"));
  m.output_norm_ = std::move(out_norm.v);
  for (int l = 0; l < n_layer; ++l) {
    Layer L;
    const std::string p = "blk." + std::to_string(l) + ".";
    ASSIGN_OR_RETURN(Mat an, dense(p + "attn_norm.weight"));
    ASSIGN_OR_RETURN(Mat fn, dense(p + "ffn_norm.weight"));
    ASSIGN_OR_RETURN(Mat qn, dense(p + "attn_q_norm.weight", false));
    ASSIGN_OR_RETURN(Mat kn, dense(p + "attn_k_norm.weight", false));
    ASSIGN_OR_RETURN(Mat bq, dense(p + "attn_q.bias", false));
    ASSIGN_OR_RETURN(Mat bk, dense(p + "attn_k.bias", false));
    ASSIGN_OR_RETURN(Mat bv, dense(p + "attn_v.bias", false));
    ASSIGN_OR_RETURN(Mat sg, dense(p + "ffn_gate_inp_shexp.weight", false));
    L.attn_norm = an.v, L.ffn_norm = fn.v, L.q_norm = qn.v, L.k_norm = kn.v;
    L.bq = bq.v, L.bk = bk.v, L.bv = bv.v, L.shexp_gate_inp = sg.v;
    ASSIGN_OR_RETURN(L.wq, dense(p + "attn_q.weight"));
    ASSIGN_OR_RETURN(L.wk, dense(p + "attn_k.weight"));
    ASSIGN_OR_RETURN(L.wv, dense(p + "attn_v.weight"));
    ASSIGN_OR_RETURN(L.wo, dense(p + "attn_output.weight"));
    ASSIGN_OR_RETURN(L.router, dense(p + "ffn_gate_inp.weight"));
    ASSIGN_OR_RETURN(L.sh_gate, dense(p + "ffn_gate_shexp.weight", false));
    ASSIGN_OR_RETURN(L.sh_up, dense(p + "ffn_up_shexp.weight", false));
    ASSIGN_OR_RETURN(L.sh_down, dense(p + "ffn_down_shexp.weight", false));
    const ExpertTensors et = *model.expert_tensors(l);
    const TensorInfo* infos[3] = {&et.gate, &et.up, &et.down};
    std::vector<Mat>* dst[3] = {&L.gate, &L.up, &L.down};
    for (int e = 0; e < n_expert; ++e) {
      const ExpertLocation loc = model.LocateExpert(l, e);
      for (int i = 0; i < 3; ++i) {
        ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, ReadExtent(model, loc.matrices[i]));
        const int64_t rows = infos[i]->ne[1], cols = infos[i]->ne[0];
        dst[i]->push_back(
            Mat{rows, cols, DequantizeBytes(infos[i]->type, bytes.data(), rows, cols)});
      }
    }
    m.layers_.push_back(std::move(L));
  }
  return m;
}

std::vector<double> ReferenceModel::Forward(std::span<const int32_t> tokens,
                                            const ReferenceOptions& options) const {
  const int64_t n = static_cast<int64_t>(tokens.size()), d = n_embd_, hd = head_dim_;
  const int k_used = options.experts_per_token > 0 ? options.experts_per_token : n_used_;
  std::vector<Vec> x(n);
  for (int64_t t = 0; t < n; ++t) {
    x[t].assign(embd_.v.begin() + tokens[t] * d, embd_.v.begin() + (tokens[t] + 1) * d);
  }
  auto rope = [&](double* head, int64_t pos) {
    for (int i = 0; i < hd / 2; ++i) {
      const double theta = pos * std::pow(rope_base_, -2.0 * i / hd);
      const int a = neox_ ? i : 2 * i;
      const int b = neox_ ? i + int(hd) / 2 : 2 * i + 1;
      const double x0 = head[a], x1 = head[b];
      head[a] = x0 * std::cos(theta) - x1 * std::sin(theta);
      head[b] = x0 * std::sin(theta) + x1 * std::cos(theta);
    }
  };
  auto head_norm = [&](double* head, const Vec& w) {
    if (w.empty()) return;
    Vec h(head, head + hd);
    Vec y = RmsNorm(h, w, eps_);
    std::copy(y.begin(), y.end(), head);
  };
  auto add = [](Vec& a, const Vec& b) {
    for (size_t i = 0; i < a.size(); ++i) a[i] += b.empty() ? 0.0 : b[i];
  };
  for (const Layer& L : layers_) {
    std::vector<Vec> q(n), k(n), v(n);
    for (int64_t t = 0; t < n; ++t) {
      Vec h = RmsNorm(x[t], L.attn_norm, eps_);
      q[t] = L.wq.Apply(h), k[t] = L.wk.Apply(h), v[t] = L.wv.Apply(h);
      add(q[t], L.bq), add(k[t], L.bk), add(v[t], L.bv);
      for (int hh = 0; hh < n_head_; ++hh)
        head_norm(&q[t][hh * hd], L.q_norm), rope(&q[t][hh * hd], t);
      for (int hh = 0; hh < n_head_kv_; ++hh)
        head_norm(&k[t][hh * hd], L.k_norm), rope(&k[t][hh * hd], t);
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec att(n_head_ * hd, 0.0);
      for (int hh = 0; hh < n_head_; ++hh) {
        const int g = hh / (n_head_ / n_head_kv_);
        Vec s(t + 1);
        for (int64_t p = 0; p <= t; ++p) {
          double dot = 0;
          for (int i = 0; i < hd; ++i) dot += q[t][hh * hd + i] * k[p][g * hd + i];
          s[p] = dot / std::sqrt(double(hd));
        }
        const double mx = *std::max_element(s.begin(), s.end());
        double sum = 0;
        for (double& e : s) sum += e = std::exp(e - mx);
        for (int64_t p = 0; p <= t; ++p) {
          for (int i = 0; i < hd; ++i) att[hh * hd + i] += s[p] / sum * v[p][g * hd + i];
        }
      }
      add(x[t], L.wo.Apply(att));
    }
    for (int64_t t = 0; t < n; ++t) {
      Vec h = RmsNorm(x[t], L.ffn_norm, eps_);
      Vec p = L.router.Apply(h);
      const double mx = *std::max_element(p.begin(), p.end());
      double sum = 0;
      for (double& e : p) sum += e = std::exp(e - mx);
      for (double& e : p) e /= sum;
      std::vector<int> order(n_expert_);
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
      double wsum = 0;
      for (int j = 0; j < k_used; ++j) wsum += p[order[j]];
      Vec moe(d, 0.0);
      for (int j = 0; j < k_used; ++j) {
        const int e = order[j];
        const double w = norm_topk_ ? p[e] / wsum : p[e];
        Vec g = L.gate[e].Apply(h), u = L.up[e].Apply(h);
        for (size_t i = 0; i < g.size(); ++i) g[i] = Silu(g[i]) * u[i];
        Vec y = L.down[e].Apply(g);
        for (int64_t i = 0; i < d; ++i) moe[i] += w * y[i];
      }
      if (L.sh_gate.rows > 0) {
        Vec g = L.sh_gate.Apply(h), u = L.sh_up.Apply(h);
        for (size_t i = 0; i < g.size(); ++i) g[i] = Silu(g[i]) * u[i];
        Vec y = L.sh_down.Apply(g);
        double gate = 1.0;
        if (!L.shexp_gate_inp.empty()) {
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += L.shexp_gate_inp[i] * h[i];
          gate = 1.0 / (1.0 + std::exp(-dot));
        }
        for (int64_t i = 0; i < d; ++i) moe[i] += gate * y[i];
      }
      add(x[t], moe);
    }
  }
  std::vector<double> logits(n * n_vocab_);
  for (int64_t t = 0; t < n; ++t) {
    Vec y = output_.Apply(RmsNorm(x[t], output_norm_, eps_));
    std::copy(y.begin(), y.end(), logits.begin() + t * n_vocab_);
  }
  return logits;
}

}  // namespace sluice::testing
