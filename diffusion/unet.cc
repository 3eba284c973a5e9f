#include "diffusion/unet.h"

#include <algorithm>
#include <cstring>

#include "core/base/str_cat.h"

namespace sluice::diffusion {
namespace {

// Rows of a transformer's feed-forward computed at once.
constexpr int64_t kFeedForwardRows = 1024;

}  // namespace

struct UNet::Scratch {
  std::vector<float> a, b, c, d, q, k, v, ff, conv;
  static void Ensure(std::vector<float>& v, size_t n) {
    if (v.size() < n) v.resize(n);
  }
};

Result<UNet::ResBlock> UNet::LoadRes(WeightReader& r, const std::string& p, int c_in, int c_out,
                                     int emb_dim) {
  ResBlock b;
  b.c_in = c_in;
  b.c_out = c_out;
  b.in_block = r.Block(p + "in_layers.");
  b.emb_block = r.Block(p + "emb_layers.");
  b.out_block = r.Block(p + "out_layers.");
  if (c_in != c_out) b.skip_block = r.Block(p + "skip_connection.");
  ASSIGN_OR_RETURN(b.gn1_w, r.Vector(p + "in_layers.0.weight", c_in));
  ASSIGN_OR_RETURN(b.gn1_b, r.Vector(p + "in_layers.0.bias", c_in));
  ASSIGN_OR_RETURN(b.conv1, r.Conv(p + "in_layers.2", c_in, c_out, 3));
  ASSIGN_OR_RETURN(b.emb, r.Linear(p + "emb_layers.1.weight", c_out, emb_dim));
  ASSIGN_OR_RETURN(b.emb_b, r.Vector(p + "emb_layers.1.bias", c_out));
  ASSIGN_OR_RETURN(b.gn2_w, r.Vector(p + "out_layers.0.weight", c_out));
  ASSIGN_OR_RETURN(b.gn2_b, r.Vector(p + "out_layers.0.bias", c_out));
  ASSIGN_OR_RETURN(b.conv2, r.Conv(p + "out_layers.3", c_out, c_out, 3));
  if (c_in != c_out) {
    ASSIGN_OR_RETURN(Conv2dWeights skip, r.Conv(p + "skip_connection", c_in, c_out, 1));
    b.skip = skip;
  }
  return b;
}

Result<UNet::SpatialTransformer> UNet::LoadTransformer(WeightReader& r, const std::string& p, int c,
                                                       int depth) const {
  const UNetConfig& cfg = config_;
  SpatialTransformer st;
  st.c = c;
  st.heads = cfg.head_dim > 0 ? c / cfg.head_dim : cfg.num_heads;
  if (st.heads <= 0 || c % st.heads != 0) {
    return InvalidArgument("UNet config: ", c, " channels do not split into heads");
  }
  ASSIGN_OR_RETURN(st.gn_w, r.Vector(p + "norm.weight", c));
  ASSIGN_OR_RETURN(st.gn_b, r.Vector(p + "norm.bias", c));
  if (cfg.linear_proj) {
    ASSIGN_OR_RETURN(st.proj_in, r.Linear(p + "proj_in.weight", c, c));
    ASSIGN_OR_RETURN(st.proj_out, r.Linear(p + "proj_out.weight", c, c));
  } else {
    ASSIGN_OR_RETURN(st.proj_in, r.Conv1x1(p + "proj_in.weight", c, c));
    ASSIGN_OR_RETURN(st.proj_out, r.Conv1x1(p + "proj_out.weight", c, c));
  }
  ASSIGN_OR_RETURN(st.proj_in_b, r.Vector(p + "proj_in.bias", c));
  ASSIGN_OR_RETURN(st.proj_out_b, r.Vector(p + "proj_out.bias", c));
  st.proj_in_block = r.Block(p + "proj_in.");
  for (int j = 0; j < depth; ++j) {
    const std::string q = StrCat(p, "transformer_blocks.", j, ".");
    TransformerBlock b{};
    b.attn1_block = r.Block(q + "attn1.");
    b.attn2_block = r.Block(q + "attn2.");
    b.ff_block = r.Block(q + "ff.");
    ASSIGN_OR_RETURN(b.ln1_w, r.Vector(q + "norm1.weight", c));
    ASSIGN_OR_RETURN(b.ln1_b, r.Vector(q + "norm1.bias", c));
    ASSIGN_OR_RETURN(b.ln2_w, r.Vector(q + "norm2.weight", c));
    ASSIGN_OR_RETURN(b.ln2_b, r.Vector(q + "norm2.bias", c));
    ASSIGN_OR_RETURN(b.ln3_w, r.Vector(q + "norm3.weight", c));
    ASSIGN_OR_RETURN(b.ln3_b, r.Vector(q + "norm3.bias", c));
    for (int a = 1; a <= 2; ++a) {
      Attention& at = a == 1 ? b.attn1 : b.attn2;
      const std::string n = StrCat(q, "attn", a, ".");
      const int kv_dim = a == 1 ? c : cfg.context_dim;
      ASSIGN_OR_RETURN(at.q, r.Linear(n + "to_q.weight", c, c));
      ASSIGN_OR_RETURN(at.k, r.Linear(n + "to_k.weight", c, kv_dim));
      ASSIGN_OR_RETURN(at.v, r.Linear(n + "to_v.weight", c, kv_dim));
      ASSIGN_OR_RETURN(at.out, r.Linear(n + "to_out.0.weight", c, c));
      ASSIGN_OR_RETURN(at.out_b, r.Vector(n + "to_out.0.bias", c));
    }
    ASSIGN_OR_RETURN(b.ff1, r.Linear(q + "ff.net.0.proj.weight", 8 * c, c));
    ASSIGN_OR_RETURN(b.ff1_b, r.Vector(q + "ff.net.0.proj.bias", 8 * c));
    ASSIGN_OR_RETURN(b.ff2, r.Linear(q + "ff.net.2.weight", c, 4 * c));
    ASSIGN_OR_RETURN(b.ff2_b, r.Vector(q + "ff.net.2.bias", c));
    st.blocks.push_back(b);
  }
  st.proj_out_block = r.Block(p + "proj_out.");
  return st;
}

Result<std::unique_ptr<UNet>> UNet::Load(WeightReader& r, const UNetConfig& cfg) {
  std::unique_ptr<UNet> u(new UNet());
  u->config_ = cfg;
  const std::string& p = cfg.prefix;
  const int mc = cfg.model_channels, ed = cfg.time_embed_dim();
  const int levels = static_cast<int>(cfg.channel_mult.size());
  if (levels < 1 || static_cast<int>(cfg.transformer_depth.size()) != levels) {
    return InvalidArgument("UNet config: ", levels, " levels but ", cfg.transformer_depth.size(),
                           " transformer depths");
  }
  const size_t first_block = r.blocks().size();
  u->time_block_ = r.Block(p + "time_embed.");
  ASSIGN_OR_RETURN(u->time1_, r.Linear(p + "time_embed.0.weight", ed, mc));
  ASSIGN_OR_RETURN(u->time1_b_, r.Vector(p + "time_embed.0.bias", ed));
  ASSIGN_OR_RETURN(u->time2_, r.Linear(p + "time_embed.2.weight", ed, ed));
  ASSIGN_OR_RETURN(u->time2_b_, r.Vector(p + "time_embed.2.bias", ed));
  if (cfg.adm_in_channels > 0) {
    u->label_block_ = r.Block(p + "label_emb.");
    ASSIGN_OR_RETURN(u->label1_, r.Linear(p + "label_emb.0.0.weight", ed, cfg.adm_in_channels));
    ASSIGN_OR_RETURN(u->label1_b_, r.Vector(p + "label_emb.0.0.bias", ed));
    ASSIGN_OR_RETURN(u->label2_, r.Linear(p + "label_emb.0.2.weight", ed, ed));
    ASSIGN_OR_RETURN(u->label2_b_, r.Vector(p + "label_emb.0.2.bias", ed));
  }
  // Input blocks.
  std::vector<int> skips;
  {
    Block b;
    b.conv_block = r.Block(p + "input_blocks.0.0.");
    ASSIGN_OR_RETURN(Conv2dWeights c, r.Conv(p + "input_blocks.0.0", cfg.in_channels, mc, 3));
    b.conv = c;
    u->input_.push_back(std::move(b));
    skips.push_back(mc);
  }
  int ch = mc;
  for (int level = 0; level < levels; ++level) {
    for (int i = 0; i < cfg.num_res_blocks; ++i) {
      const std::string q = StrCat(p, "input_blocks.", u->input_.size(), ".");
      Block b;
      const int out = cfg.channel_mult[level] * mc;
      ASSIGN_OR_RETURN(ResBlock res, LoadRes(r, q + "0.", ch, out, ed));
      b.res = res;
      ch = out;
      if (cfg.transformer_depth[level] > 0) {
        ASSIGN_OR_RETURN(SpatialTransformer st,
                         u->LoadTransformer(r, q + "1.", ch, cfg.transformer_depth[level]));
        b.st = std::move(st);
      }
      u->input_.push_back(std::move(b));
      skips.push_back(ch);
    }
    if (level + 1 < levels) {
      Block b;
      b.conv_block = r.Block(StrCat(p, "input_blocks.", u->input_.size(), ".0.op."));
      ASSIGN_OR_RETURN(Conv2dWeights c,
                       r.Conv(StrCat(p, "input_blocks.", u->input_.size(), ".0.op"), ch, ch, 3));
      b.conv = c;
      b.down = true;
      u->input_.push_back(std::move(b));
      skips.push_back(ch);
    }
  }
  // Middle.
  {
    ASSIGN_OR_RETURN(ResBlock r1, LoadRes(r, p + "middle_block.0.", ch, ch, ed));
    u->middle_res1_.res = r1;
    ASSIGN_OR_RETURN(SpatialTransformer st,
                     u->LoadTransformer(r, p + "middle_block.1.", ch, cfg.middle_depth));
    u->middle_st_.st = std::move(st);
    ASSIGN_OR_RETURN(ResBlock r2, LoadRes(r, p + "middle_block.2.", ch, ch, ed));
    u->middle_res2_.res = r2;
  }
  // Output blocks.
  for (int level = levels - 1; level >= 0; --level) {
    for (int i = 0; i <= cfg.num_res_blocks; ++i) {
      const std::string q = StrCat(p, "output_blocks.", u->output_.size(), ".");
      Block b;
      const int skip = skips.back();
      skips.pop_back();
      const int out = cfg.channel_mult[level] * mc;
      ASSIGN_OR_RETURN(ResBlock res, LoadRes(r, q + "0.", ch + skip, out, ed));
      b.res = res;
      ch = out;
      int next = 1;
      if (cfg.transformer_depth[level] > 0) {
        ASSIGN_OR_RETURN(SpatialTransformer st,
                         u->LoadTransformer(r, q + "1.", ch, cfg.transformer_depth[level]));
        b.st = std::move(st);
        next = 2;
      }
      if (level > 0 && i == cfg.num_res_blocks) {
        b.conv_block = r.Block(StrCat(q, next, ".conv."));
        ASSIGN_OR_RETURN(Conv2dWeights c, r.Conv(StrCat(q, next, ".conv"), ch, ch, 3));
        b.conv = c;
        b.up = true;
      }
      u->output_.push_back(std::move(b));
    }
  }
  ASSIGN_OR_RETURN(u->out_gn_w_, r.Vector(p + "out.0.weight", mc));
  ASSIGN_OR_RETURN(u->out_gn_b_, r.Vector(p + "out.0.bias", mc));
  u->out_block_ = r.Block(p + "out.");
  ASSIGN_OR_RETURN(u->out_conv_, r.Conv(p + "out.2", mc, cfg.out_channels, 3));
  for (size_t b = first_block; b < r.blocks().size(); ++b) u->pass_.push_back(static_cast<int>(b));
  return u;
}

void UNet::RunConv(const Conv2dWeights& c, const float* x, int batch, int h, int w, int stride,
                   float* out, Scratch& s, ThreadPool* pool) const {
  const int pad = c.k / 2;
  const int ho = ConvOut(h, c.k, stride, pad), wo = ConvOut(w, c.k, stride, pad);
  Scratch::Ensure(
      s.conv, static_cast<size_t>(std::max<int64_t>(1, Conv2dScratchFloats(c, h, w, stride, pad))));
  for (int b = 0; b < batch; ++b) {
    Conv2d(c, x + static_cast<int64_t>(b) * h * w * c.c_in, h, w, stride, pad,
           out + static_cast<int64_t>(b) * ho * wo * c.c_out, s.conv.data(), pool);
  }
}

Status UNet::RunRes(const ResBlock& rb, const float* x, int batch, int h, int w,
                    const float* emb_silu, float* out, Scratch& s, ThreadPool* pool,
                    BlockUser* blocks) const {
  const int64_t hw = static_cast<int64_t>(h) * w;
  const size_t n_in = static_cast<size_t>(batch * hw * rb.c_in);
  const size_t n_out = static_cast<size_t>(batch * hw * rb.c_out);
  Scratch::Ensure(s.a, n_in);
  Scratch::Ensure(s.b, n_out);
  // h = conv1(silu(GN(x)))
  for (int b = 0; b < batch; ++b) {
    GroupNorm(x + b * hw * rb.c_in, hw, rb.c_in, 32, 1e-5f, rb.gn1_w, rb.gn1_b,
              s.a.data() + b * hw * rb.c_in, pool);
  }
  SiluInPlace(s.a.data(), static_cast<int64_t>(n_in));
  {
    BlockScope use(blocks, rb.in_block);
    RETURN_IF_ERROR(use.status());
    RunConv(rb.conv1, s.a.data(), batch, h, w, 1, s.b.data(), s, pool);
  }
  // h += emb_proj(silu(emb)), per image and channel
  std::vector<float> e(static_cast<size_t>(batch) * rb.c_out);
  {
    BlockScope use(blocks, rb.emb_block);
    RETURN_IF_ERROR(use.status());
    LinearBias(rb.emb, rb.emb_b, emb_silu, batch, e.data(), pool);
  }
  for (int b = 0; b < batch; ++b) {
    float* hb = s.b.data() + b * hw * rb.c_out;
    const float* eb = e.data() + static_cast<size_t>(b) * rb.c_out;
    for (int64_t p = 0; p < hw; ++p)
      for (int c = 0; c < rb.c_out; ++c) hb[p * rb.c_out + c] += eb[c];
  }
  // h = conv2(silu(GN(h)))
  for (int b = 0; b < batch; ++b) {
    GroupNorm(s.b.data() + b * hw * rb.c_out, hw, rb.c_out, 32, 1e-5f, rb.gn2_w, rb.gn2_b,
              s.b.data() + b * hw * rb.c_out, pool);
  }
  SiluInPlace(s.b.data(), static_cast<int64_t>(n_out));
  {
    BlockScope use(blocks, rb.out_block);
    RETURN_IF_ERROR(use.status());
    RunConv(rb.conv2, s.b.data(), batch, h, w, 1, out, s, pool);
  }
  // out += skip(x)
  if (rb.skip.has_value()) {
    Scratch::Ensure(s.c, n_out);
    BlockScope use(blocks, rb.skip_block);
    RETURN_IF_ERROR(use.status());
    LinearBias(rb.skip->w, rb.skip->bias, x, batch * hw, s.c.data(), pool);
    for (size_t i = 0; i < n_out; ++i) out[i] += s.c[i];
  } else {
    for (size_t i = 0; i < n_out; ++i) out[i] += x[i];
  }
  return Status::Ok();
}

Status UNet::RunTransformer(const SpatialTransformer& st, float* x, int batch, int h, int w,
                            const float* context, int n_ctx, Scratch& s, ThreadPool* pool,
                            BlockUser* blocks) const {
  const int c = st.c, d = c / st.heads, ctx_dim = config_.context_dim;
  const int64_t hw = static_cast<int64_t>(h) * w, rows = batch * hw;
  const size_t n = static_cast<size_t>(rows * c);
  Scratch::Ensure(s.a, n);
  Scratch::Ensure(s.b, n);
  Scratch::Ensure(s.c, n);
  Scratch::Ensure(s.q, n);
  Scratch::Ensure(s.k, std::max<size_t>(n, static_cast<size_t>(batch) * n_ctx * c));
  Scratch::Ensure(s.v, std::max<size_t>(n, static_cast<size_t>(batch) * n_ctx * c));
  Scratch::Ensure(s.ff, static_cast<size_t>(std::min(rows, kFeedForwardRows) * 8 * c));
  float* hid = s.a.data();
  for (int b = 0; b < batch; ++b) {
    GroupNorm(x + b * hw * c, hw, c, 32, 1e-6f, st.gn_w, st.gn_b, s.b.data() + b * hw * c, pool);
  }
  {
    BlockScope use(blocks, st.proj_in_block);
    RETURN_IF_ERROR(use.status());
    LinearBias(st.proj_in, st.proj_in_b, s.b.data(), rows, hid, pool);
  }
  for (const TransformerBlock& tb : st.blocks) {
    // Self-attention.
    BlockScope use1(blocks, tb.attn1_block);
    RETURN_IF_ERROR(use1.status());
    LayerNorm(hid, rows, c, 1e-5f, tb.ln1_w, tb.ln1_b, s.b.data());
    LinearBias(tb.attn1.q, nullptr, s.b.data(), rows, s.q.data(), pool);
    LinearBias(tb.attn1.k, nullptr, s.b.data(), rows, s.k.data(), pool);
    LinearBias(tb.attn1.v, nullptr, s.b.data(), rows, s.v.data(), pool);
    for (int b = 0; b < batch; ++b) {
      MultiHeadAttention(s.q.data() + b * hw * c, s.k.data() + b * hw * c, s.v.data() + b * hw * c,
                         hw, hw, st.heads, d, s.c.data() + b * hw * c, pool);
    }
    LinearBias(tb.attn1.out, tb.attn1.out_b, s.c.data(), rows, s.b.data(), pool);
    for (size_t i = 0; i < n; ++i) hid[i] += s.b[i];
    use1.Done();
    // Cross-attention on the text.
    BlockScope use2(blocks, tb.attn2_block);
    RETURN_IF_ERROR(use2.status());
    LayerNorm(hid, rows, c, 1e-5f, tb.ln2_w, tb.ln2_b, s.b.data());
    LinearBias(tb.attn2.q, nullptr, s.b.data(), rows, s.q.data(), pool);
    LinearBias(tb.attn2.k, nullptr, context, static_cast<int64_t>(batch) * n_ctx, s.k.data(), pool);
    LinearBias(tb.attn2.v, nullptr, context, static_cast<int64_t>(batch) * n_ctx, s.v.data(), pool);
    for (int b = 0; b < batch; ++b) {
      MultiHeadAttention(s.q.data() + b * hw * c, s.k.data() + static_cast<int64_t>(b) * n_ctx * c,
                         s.v.data() + static_cast<int64_t>(b) * n_ctx * c, hw, n_ctx, st.heads, d,
                         s.c.data() + b * hw * c, pool);
    }
    LinearBias(tb.attn2.out, tb.attn2.out_b, s.c.data(), rows, s.b.data(), pool);
    for (size_t i = 0; i < n; ++i) hid[i] += s.b[i];
    use2.Done();
    // Feed-forward (GEGLU).
    // In chunks of rows: the (rows, 8c) projection is the largest activation of the UNet (84 MB
    // at 512x512 with guidance); per chunk it is a few MB.
    BlockScope use3(blocks, tb.ff_block);
    RETURN_IF_ERROR(use3.status());
    LayerNorm(hid, rows, c, 1e-5f, tb.ln3_w, tb.ln3_b, s.b.data());
    for (int64_t r0 = 0; r0 < rows; r0 += kFeedForwardRows) {
      const int64_t nr = std::min(kFeedForwardRows, rows - r0);
      LinearBias(tb.ff1, tb.ff1_b, s.b.data() + r0 * c, nr, s.ff.data(), pool);
      Geglu(s.ff.data(), nr, 4 * c, s.ff.data());
      LinearBias(tb.ff2, tb.ff2_b, s.ff.data(), nr, s.b.data() + r0 * c, pool);
    }
    for (size_t i = 0; i < n; ++i) hid[i] += s.b[i];
  }
  {
    BlockScope use(blocks, st.proj_out_block);
    RETURN_IF_ERROR(use.status());
    LinearBias(st.proj_out, st.proj_out_b, hid, rows, s.b.data(), pool);
  }
  for (size_t i = 0; i < n; ++i) x[i] += s.b[i];
  (void)ctx_dim;
  return Status::Ok();
}

Status UNet::Forward(const float* x, int batch, int h, int w, const double* t, const float* context,
                     int n_ctx, const float* y, float* out, ThreadPool* pool,
                     BlockUser* blocks) const {
  const UNetConfig& cfg = config_;
  const int mc = cfg.model_channels, ed = cfg.time_embed_dim();
  const int levels = static_cast<int>(cfg.channel_mult.size());
  CHECK(h % (1 << (levels - 1)) == 0 && w % (1 << (levels - 1)) == 0) << h << "x" << w;
  Scratch s;
  // emb = time_embed(timestep_embedding(t)) (+ label_emb(y)); the ResBlocks take silu(emb).
  std::vector<float> temb(static_cast<size_t>(batch) * mc), e1(static_cast<size_t>(batch) * ed),
      emb(static_cast<size_t>(batch) * ed);
  for (int b = 0; b < batch; ++b) TimestepEmbedding(t[b], mc, temb.data() + b * mc);
  {
    BlockScope use(blocks, time_block_);
    RETURN_IF_ERROR(use.status());
    LinearBias(time1_, time1_b_, temb.data(), batch, e1.data(), pool);
    SiluInPlace(e1.data(), static_cast<int64_t>(e1.size()));
    LinearBias(time2_, time2_b_, e1.data(), batch, emb.data(), pool);
  }
  if (cfg.adm_in_channels > 0) {
    CHECK(y != nullptr) << "this UNet needs the SDXL conditioning vector";
    BlockScope use(blocks, label_block_);
    RETURN_IF_ERROR(use.status());
    std::vector<float> l1(static_cast<size_t>(batch) * ed), l2(l1.size());
    LinearBias(label1_, label1_b_, y, batch, l1.data(), pool);
    SiluInPlace(l1.data(), static_cast<int64_t>(l1.size()));
    LinearBias(label2_, label2_b_, l1.data(), batch, l2.data(), pool);
    for (size_t i = 0; i < emb.size(); ++i) emb[i] += l2[i];
  }
  SiluInPlace(emb.data(), static_cast<int64_t>(emb.size()));

  // Input blocks; every output is kept for the skip connections.
  std::vector<std::vector<float>> skips;
  std::vector<int> skip_ch, skip_h, skip_w;
  std::vector<float> cur, next;
  int ch = cfg.in_channels, ch_h = h, ch_w = w;
  cur.assign(x, x + static_cast<size_t>(batch) * h * w * ch);
  for (const Block& b : input_) {
    if (b.conv.has_value()) {
      const int stride = b.down ? 2 : 1;
      const int ho = ConvOut(ch_h, 3, stride, 1), wo = ConvOut(ch_w, 3, stride, 1);
      next.assign(static_cast<size_t>(batch) * ho * wo * b.conv->c_out, 0.0f);
      BlockScope use(blocks, b.conv_block);
      RETURN_IF_ERROR(use.status());
      RunConv(*b.conv, cur.data(), batch, ch_h, ch_w, stride, next.data(), s, pool);
      ch = b.conv->c_out;
      ch_h = ho;
      ch_w = wo;
    } else {
      next.assign(static_cast<size_t>(batch) * ch_h * ch_w * b.res->c_out, 0.0f);
      RETURN_IF_ERROR(
          RunRes(*b.res, cur.data(), batch, ch_h, ch_w, emb.data(), next.data(), s, pool, blocks));
      ch = b.res->c_out;
      if (b.st.has_value()) {
        RETURN_IF_ERROR(
            RunTransformer(*b.st, next.data(), batch, ch_h, ch_w, context, n_ctx, s, pool, blocks));
      }
    }
    cur.swap(next);
    skips.push_back(cur);
    skip_ch.push_back(ch);
  }
  // Middle.
  next.assign(cur.size(), 0.0f);
  RETURN_IF_ERROR(RunRes(*middle_res1_.res, cur.data(), batch, ch_h, ch_w, emb.data(), next.data(),
                         s, pool, blocks));
  RETURN_IF_ERROR(RunTransformer(*middle_st_.st, next.data(), batch, ch_h, ch_w, context, n_ctx, s,
                                 pool, blocks));
  cur.assign(next.size(), 0.0f);
  RETURN_IF_ERROR(RunRes(*middle_res2_.res, next.data(), batch, ch_h, ch_w, emb.data(), cur.data(),
                         s, pool, blocks));
  // Output blocks: concat(current, skip) per pixel, then the block.
  std::vector<float> cat;
  for (const Block& b : output_) {
    const std::vector<float>& skip = skips.back();
    const int sc = skip_ch.back();
    const int64_t hw = static_cast<int64_t>(ch_h) * ch_w;
    cat.resize(static_cast<size_t>(batch * hw * (ch + sc)));
    for (int64_t p = 0; p < batch * hw; ++p) {
      std::memcpy(cat.data() + p * (ch + sc), cur.data() + p * ch, sizeof(float) * ch);
      std::memcpy(cat.data() + p * (ch + sc) + ch, skip.data() + p * sc, sizeof(float) * sc);
    }
    skips.pop_back();
    skip_ch.pop_back();
    next.assign(static_cast<size_t>(batch * hw * b.res->c_out), 0.0f);
    RETURN_IF_ERROR(
        RunRes(*b.res, cat.data(), batch, ch_h, ch_w, emb.data(), next.data(), s, pool, blocks));
    ch = b.res->c_out;
    if (b.st.has_value()) {
      RETURN_IF_ERROR(
          RunTransformer(*b.st, next.data(), batch, ch_h, ch_w, context, n_ctx, s, pool, blocks));
    }
    if (b.up) {
      std::vector<float> up(static_cast<size_t>(batch * hw * 4 * ch));
      for (int i = 0; i < batch; ++i) {
        Upsample2x(next.data() + i * hw * ch, ch_h, ch_w, ch, up.data() + i * hw * 4 * ch);
      }
      ch_h *= 2;
      ch_w *= 2;
      next.assign(up.size(), 0.0f);
      BlockScope use(blocks, b.conv_block);
      RETURN_IF_ERROR(use.status());
      RunConv(*b.conv, up.data(), batch, ch_h, ch_w, 1, next.data(), s, pool);
    }
    cur.swap(next);
  }
  // out = conv(silu(GN(x)))
  const int64_t hw = static_cast<int64_t>(h) * w;
  CHECK(ch_h == h && ch_w == w && ch == mc);
  for (int b = 0; b < batch; ++b) {
    GroupNorm(cur.data() + b * hw * mc, hw, mc, 32, 1e-5f, out_gn_w_, out_gn_b_,
              cur.data() + b * hw * mc, pool);
  }
  SiluInPlace(cur.data(), static_cast<int64_t>(cur.size()));
  BlockScope use(blocks, out_block_);
  RETURN_IF_ERROR(use.status());
  RunConv(out_conv_, cur.data(), batch, h, w, 1, out, s, pool);
  return Status::Ok();
}

}  // namespace sluice::diffusion
