#include "diffusion/clip_text.h"

#include <algorithm>
#include <cstring>

#include "core/base/str_cat.h"
#include "core/kernels/matmul.h"
#include "tokenizer/clip_tokenizer.h"

namespace sluice::diffusion {
namespace {

constexpr int kContext = ClipTokenizer::kContextLength;

}  // namespace

Result<std::unique_ptr<ClipTextModel>> ClipTextModel::Load(WeightReader& r,
                                                           const ClipTextConfig& c) {
  std::unique_ptr<ClipTextModel> m(new ClipTextModel());
  m->config_ = c;
  const int w = c.width;
  const std::string& p = c.prefix;
  const bool openai = c.layout == ClipLayout::kOpenAi;
  ASSIGN_OR_RETURN(
      m->token_embedding_,
      r.MappedRows(p + (openai ? "embeddings.token_embedding.weight" : "token_embedding.weight"),
                   c.vocab, w));
  ASSIGN_OR_RETURN(
      m->position_embedding_,
      r.Table(p + (openai ? "embeddings.position_embedding.weight" : "positional_embedding"),
              kContext, w));
  for (int i = 0; i < c.layers; ++i) {
    Layer L{};
    L.block = r.Block(openai ? StrCat(p, "encoder.layers.", i, ".")
                             : StrCat(p, "transformer.resblocks.", i, "."));
    if (openai) {
      const std::string q = StrCat(p, "encoder.layers.", i, ".");
      ASSIGN_OR_RETURN(L.ln1_w, r.Vector(q + "layer_norm1.weight", w));
      ASSIGN_OR_RETURN(L.ln1_b, r.Vector(q + "layer_norm1.bias", w));
      ASSIGN_OR_RETURN(L.ln2_w, r.Vector(q + "layer_norm2.weight", w));
      ASSIGN_OR_RETURN(L.ln2_b, r.Vector(q + "layer_norm2.bias", w));
      ASSIGN_OR_RETURN(L.q, r.Linear(q + "self_attn.q_proj.weight", w, w));
      ASSIGN_OR_RETURN(L.k, r.Linear(q + "self_attn.k_proj.weight", w, w));
      ASSIGN_OR_RETURN(L.v, r.Linear(q + "self_attn.v_proj.weight", w, w));
      ASSIGN_OR_RETURN(L.out, r.Linear(q + "self_attn.out_proj.weight", w, w));
      ASSIGN_OR_RETURN(L.q_b, r.Vector(q + "self_attn.q_proj.bias", w));
      ASSIGN_OR_RETURN(L.k_b, r.Vector(q + "self_attn.k_proj.bias", w));
      ASSIGN_OR_RETURN(L.v_b, r.Vector(q + "self_attn.v_proj.bias", w));
      ASSIGN_OR_RETURN(L.out_b, r.Vector(q + "self_attn.out_proj.bias", w));
      ASSIGN_OR_RETURN(L.fc1, r.Linear(q + "mlp.fc1.weight", 4 * w, w));
      ASSIGN_OR_RETURN(L.fc1_b, r.Vector(q + "mlp.fc1.bias", 4 * w));
      ASSIGN_OR_RETURN(L.fc2, r.Linear(q + "mlp.fc2.weight", w, 4 * w));
      ASSIGN_OR_RETURN(L.fc2_b, r.Vector(q + "mlp.fc2.bias", w));
    } else {
      const std::string q = StrCat(p, "transformer.resblocks.", i, ".");
      ASSIGN_OR_RETURN(L.ln1_w, r.Vector(q + "ln_1.weight", w));
      ASSIGN_OR_RETURN(L.ln1_b, r.Vector(q + "ln_1.bias", w));
      ASSIGN_OR_RETURN(L.ln2_w, r.Vector(q + "ln_2.weight", w));
      ASSIGN_OR_RETURN(L.ln2_b, r.Vector(q + "ln_2.bias", w));
      ASSIGN_OR_RETURN(L.q, r.LinearRows(q + "attn.in_proj_weight", 3 * w, 0, w, w));
      ASSIGN_OR_RETURN(L.k, r.LinearRows(q + "attn.in_proj_weight", 3 * w, w, w, w));
      ASSIGN_OR_RETURN(L.v, r.LinearRows(q + "attn.in_proj_weight", 3 * w, 2 * w, w, w));
      ASSIGN_OR_RETURN(const float* in_b, r.Vector(q + "attn.in_proj_bias", 3 * w));
      L.q_b = in_b;
      L.k_b = in_b + w;
      L.v_b = in_b + 2 * w;
      ASSIGN_OR_RETURN(L.out, r.Linear(q + "attn.out_proj.weight", w, w));
      ASSIGN_OR_RETURN(L.out_b, r.Vector(q + "attn.out_proj.bias", w));
      ASSIGN_OR_RETURN(L.fc1, r.Linear(q + "mlp.c_fc.weight", 4 * w, w));
      ASSIGN_OR_RETURN(L.fc1_b, r.Vector(q + "mlp.c_fc.bias", 4 * w));
      ASSIGN_OR_RETURN(L.fc2, r.Linear(q + "mlp.c_proj.weight", w, 4 * w));
      ASSIGN_OR_RETURN(L.fc2_b, r.Vector(q + "mlp.c_proj.bias", w));
    }
    m->layers_.push_back(L);
  }
  const std::string final_name = p + (openai ? "final_layer_norm" : "ln_final");
  ASSIGN_OR_RETURN(m->final_w_, r.Vector(final_name + ".weight", w));
  ASSIGN_OR_RETURN(m->final_b_, r.Vector(final_name + ".bias", w));
  if (c.projection_dim > 0 && openai) {
    // Hugging Face's CLIPTextModelWithProjection (a diffusers SDXL text_encoder_2): a Linear
    // beside text_model, already (projection_dim, width). An f32 copy: no streamed block has it.
    const std::string beside = p.ends_with("text_model.") ? p.substr(0, p.size() - 11) : p;
    ASSIGN_OR_RETURN(const float* proj,
                     r.Table(beside + "text_projection.weight", c.projection_dim, w));
    m->projection_ =
        Matrix{GgmlType::kF32, reinterpret_cast<const uint8_t*>(proj), c.projection_dim, w};
  } else if (c.projection_dim > 0) {
    ASSIGN_OR_RETURN(m->projection_, r.TransposedF32(p + "text_projection", w, c.projection_dim));
  }
  return m;
}

std::vector<int> ClipTextModel::pass(int skip, bool pooled) const {
  std::vector<int> p;
  const int run = pooled ? config_.layers : config_.layers - skip;
  for (int l = 0; l < run; ++l) p.push_back(layers_[l].block);
  return p;
}

Result<ClipTextModel::Output> ClipTextModel::Encode(const std::vector<int32_t>& ids, int skip,
                                                    bool final_norm, bool pooled, ThreadPool* pool,
                                                    BlockUser* blocks) const {
  const ClipTextConfig& c = config_;
  const int w = c.width;
  const int n = kContext;
  CHECK_EQ(static_cast<int>(ids.size()), n);
  CHECK(skip >= 0 && skip < c.layers);
  std::vector<float> x(static_cast<size_t>(n) * w), h(x.size()), q(x.size()), k(x.size()),
      v(x.size()), a(x.size()), ff(static_cast<size_t>(n) * 4 * w);
  const uint64_t row_bytes = RowBytes(token_embedding_.type, w);
  for (int t = 0; t < n; ++t) {
    CHECK(ids[t] >= 0 && ids[t] < c.vocab) << ids[t];
    DequantizeRow(token_embedding_.type, token_embedding_.data + row_bytes * ids[t], &x[t * w], w);
    for (int i = 0; i < w; ++i) x[t * w + i] += position_embedding_[t * w + i];
  }
  Output out;
  const int run = pooled ? c.layers : c.layers - skip;
  for (int l = 0; l < run; ++l) {
    const Layer& L = layers_[l];
    BlockScope use(blocks, L.block);
    RETURN_IF_ERROR(use.status());
    LayerNorm(x.data(), n, w, 1e-5f, L.ln1_w, L.ln1_b, h.data());
    LinearBias(L.q, L.q_b, h.data(), n, q.data(), pool);
    LinearBias(L.k, L.k_b, h.data(), n, k.data(), pool);
    LinearBias(L.v, L.v_b, h.data(), n, v.data(), pool);
    CausalMultiHeadAttention(q.data(), k.data(), v.data(), n, c.heads, w / c.heads, a.data(), pool);
    LinearBias(L.out, L.out_b, a.data(), n, h.data(), pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += h[i];
    LayerNorm(x.data(), n, w, 1e-5f, L.ln2_w, L.ln2_b, h.data());
    LinearBias(L.fc1, L.fc1_b, h.data(), n, ff.data(), pool);
    if (c.quick_gelu) {
      QuickGeluInPlace(ff.data(), static_cast<int64_t>(ff.size()));
    } else {
      GeluInPlace(ff.data(), static_cast<int64_t>(ff.size()));
    }
    LinearBias(L.fc2, L.fc2_b, ff.data(), n, h.data(), pool);
    for (size_t i = 0; i < x.size(); ++i) x[i] += h[i];
    if (l + 1 == c.layers - skip) {
      out.hidden = x;
      if (final_norm) {
        LayerNorm(out.hidden.data(), n, w, 1e-5f, final_w_, final_b_, out.hidden.data());
      }
    }
  }
  if (pooled) {
    CHECK(projection_.data != nullptr) << "no text_projection loaded";
    // The end-of-text token: the largest id (OpenCLIP's text.argmax).
    const int eot = static_cast<int>(std::max_element(ids.begin(), ids.end()) - ids.begin());
    std::vector<float> last(w);
    LayerNorm(x.data() + static_cast<size_t>(eot) * w, 1, w, 1e-5f, final_w_, final_b_,
              last.data());
    out.pooled.resize(c.projection_dim);
    Linear(projection_, last.data(), 1, out.pooled.data(), pool);
  }
  return out;
}

}  // namespace sluice::diffusion
