// A plain double-precision forward pass of the supported MoE architectures, written
// independently of the engine for the tests: every weight dequantized to double, attention
// recomputed over the whole prefix, no cache, no batching, no streaming. Routed experts are read
// with pread() at the extents the model file reports.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/model_file.h"

namespace sluice::testing {

struct ReferenceOptions {
  int experts_per_token = 0;  // 0: the model's
};

class ReferenceModel {
 public:
  static Result<ReferenceModel> Load(const ModelFile& model);

  // Logits after each token: (tokens.size(), n_vocab), row-major.
  std::vector<double> Forward(std::span<const int32_t> tokens,
                              const ReferenceOptions& options = {}) const;
  int64_t n_vocab() const { return n_vocab_; }

 private:
  using Vec = std::vector<double>;
  struct Mat {  // rows x cols, row-major
    int64_t rows = 0, cols = 0;
    Vec v;
    Vec Apply(const Vec& x) const;
  };
  struct Layer {
    Vec attn_norm, ffn_norm, q_norm, k_norm, bq, bk, bv, shexp_gate_inp;
    Mat wq, wk, wv, wo, router, sh_gate, sh_up, sh_down;
    std::vector<Mat> gate, up, down;  // per expert
  };

  std::string arch_;
  int64_t n_vocab_ = 0, n_embd_ = 0;
  int n_head_ = 0, n_head_kv_ = 0, head_dim_ = 0, n_expert_ = 0, n_used_ = 0;
  double eps_ = 1e-6, rope_base_ = 10000;
  bool neox_ = true, norm_topk_ = true;
  Mat embd_, output_;
  Vec output_norm_;
  std::vector<Layer> layers_;
};

}  // namespace sluice::testing
