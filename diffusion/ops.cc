#include "diffusion/ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/base/check.h"
#include "core/ops/activation.h"
#include "core/ops/attention.h"

namespace sluice::diffusion {
namespace {

// Output pixels per im2col chunk: as many as fit kConvChunkBytes, at least one row's worth of
// work for the pool.
int64_t ConvChunkPixels(const Conv2dWeights& c, int64_t pixels, int64_t chunk_bytes) {
  const int64_t cols = static_cast<int64_t>(c.k) * c.k * c.c_in;
  const int64_t fit =
      std::max<int64_t>(1, chunk_bytes / (cols * static_cast<int64_t>(sizeof(float))));
  return std::min(pixels, fit);
}

}  // namespace

int64_t Conv2dScratchFloats(const Conv2dWeights& c, int h, int w, int stride, int pad,
                            int64_t chunk_bytes) {
  if (c.k == 1 && stride == 1 && pad == 0) return 0;
  const int64_t pixels =
      static_cast<int64_t>(ConvOut(h, c.k, stride, pad)) * ConvOut(w, c.k, stride, pad);
  return ConvChunkPixels(c, pixels, chunk_bytes) * c.k * c.k * c.c_in;
}

namespace {

constexpr int kMaxTaps = 49;  // kernels up to 7x7

// The im2col + MatMul convolution. `up` is 1, or 2 for an input read as its nearest 2x
// upsampling: (h, w) is then the upsampled size and pixel (iy, ix) comes from x's (iy/2, ix/2).
void Conv2dImpl(const Conv2dWeights& c, const float* x, int h, int w, int stride, int pad, int up,
                float* y, float* scratch, ThreadPool* pool, int64_t chunk_bytes) {
  CHECK(c.w.rows == c.c_out && c.w.cols == static_cast<int64_t>(c.k) * c.k * c.c_in)
      << c.w.rows << "x" << c.w.cols << " for " << c.c_out << " <- " << c.c_in << " k" << c.k;
  const int ho = ConvOut(h, c.k, stride, pad), wo = ConvOut(w, c.k, stride, pad);
  const int64_t pixels = static_cast<int64_t>(ho) * wo;
  if (c.k == 1 && stride == 1 && pad == 0 && up == 1) {
    LinearBias(c.w, c.bias, x, pixels, y, pool);
    return;
  }
  const int src_w = w / up;
  CHECK(c.k * c.k <= kMaxTaps) << "kernel " << c.k;
  const std::vector<float> zeros(static_cast<size_t>(c.c_in), 0.0f);  // taps in the padding
  const int64_t cols = c.w.cols;
  const int64_t chunk = ConvChunkPixels(c, pixels, chunk_bytes);
  const int kk = c.k * c.k;
  for (int64_t p0 = 0; p0 < pixels; p0 += chunk) {
    const int64_t n = std::min(chunk, pixels - p0);
    // im2col: element (ci, ky, kx) of row p is channel ci of input pixel
    // (oy * stride - pad + ky, ox * stride - pad + kx), zero outside the image. The row is
    // written in order: per channel, the k * k taps from k * k source pixels (each a contiguous
    // run of c_in floats, cached after the first channel), not k * k strided passes.
    auto fill = [&](int64_t b, int64_t e) {
      const float* src[kMaxTaps];
      for (int64_t i = b; i < e; ++i) {
        const int64_t p = p0 + i;
        const int oy = static_cast<int>(p / wo), ox = static_cast<int>(p % wo);
        for (int ky = 0; ky < c.k; ++ky) {
          const int iy = oy * stride - pad + ky;
          for (int kx = 0; kx < c.k; ++kx) {
            const int ix = ox * stride - pad + kx;
            src[ky * c.k + kx] =
                iy < 0 || iy >= h || ix < 0 || ix >= w
                    ? zeros.data()
                    : x + (static_cast<int64_t>(iy / up) * src_w + ix / up) * c.c_in;
          }
        }
        float* dst = scratch + i * cols;
        if (kk == 9) {
          for (int ci = 0; ci < c.c_in; ++ci, dst += 9) {
            dst[0] = src[0][ci], dst[1] = src[1][ci], dst[2] = src[2][ci];
            dst[3] = src[3][ci], dst[4] = src[4][ci], dst[5] = src[5][ci];
            dst[6] = src[6][ci], dst[7] = src[7][ci], dst[8] = src[8][ci];
          }
        } else {
          for (int ci = 0; ci < c.c_in; ++ci) {
            for (int t = 0; t < kk; ++t) *dst++ = src[t][ci];
          }
        }
      }
    };
    if (pool != nullptr) {
      pool->ParallelFor(n, fill);
    } else {
      fill(0, n);
    }
    LinearBias(c.w, c.bias, scratch, n, y + p0 * c.c_out, pool);
  }
}

}  // namespace

void Conv2d(const Conv2dWeights& c, const float* x, int h, int w, int stride, int pad, float* y,
            float* scratch, ThreadPool* pool, int64_t chunk_bytes) {
  Conv2dImpl(c, x, h, w, stride, pad, 1, y, scratch, pool, chunk_bytes);
}

int64_t Conv2dUp2ScratchFloats(const Conv2dWeights& c, int h, int w, int64_t chunk_bytes) {
  const int64_t pixels = static_cast<int64_t>(2 * h) * (2 * w);
  return ConvChunkPixels(c, pixels, chunk_bytes) * c.k * c.k * c.c_in;
}

void Conv2dUp2(const Conv2dWeights& c, const float* x, int h, int w, float* y, float* scratch,
               ThreadPool* pool, int64_t chunk_bytes) {
  Conv2dImpl(c, x, 2 * h, 2 * w, 1, c.k / 2, 2, y, scratch, pool, chunk_bytes);
}

void ConvSame(const Conv2dWeights& c, const float* x, int h, int w, std::vector<float>& out,
              ThreadPool* pool) {
  out.resize(static_cast<size_t>(h) * w * c.c_out);
  std::vector<float> scratch(
      static_cast<size_t>(std::max<int64_t>(1, Conv2dScratchFloats(c, h, w, 1, c.k / 2))));
  Conv2d(c, x, h, w, 1, c.k / 2, out.data(), scratch.data(), pool);
}

void ConvUp2(const Conv2dWeights& c, const float* x, int h, int w, std::vector<float>& out,
             ThreadPool* pool) {
  out.resize(static_cast<size_t>(4) * h * w * c.c_out);
  std::vector<float> scratch(static_cast<size_t>(Conv2dUp2ScratchFloats(c, h, w)));
  Conv2dUp2(c, x, h, w, out.data(), scratch.data(), pool);
}

void LinearBias(const Matrix& w, const float* bias, const float* x, int64_t n, float* y,
                ThreadPool* pool) {
  // The kernels stream every token's activations once per weight row: with thousands of pixels
  // those no longer fit in cache and each row rereads them from memory. In chunks of tokens whose
  // activations fit in L2, they are read from memory once and reused for all rows (a row's
  // result does not depend on the chunking: MatMul rows equal MatVec).
  const int64_t row_bytes = w.cols * static_cast<int64_t>(sizeof(float));
  const int64_t chunk = std::max<int64_t>(16, kLinearChunkBytes / row_bytes) & ~int64_t{3};
  for (int64_t t = 0; t < n; t += chunk) {
    Linear(w, x + t * w.cols, std::min(chunk, n - t), y + t * w.rows, pool);
  }
  if (bias == nullptr) return;
  for (int64_t t = 0; t < n; ++t) {
    float* row = y + t * w.rows;
    for (int64_t r = 0; r < w.rows; ++r) row[r] += bias[r];
  }
}

void GroupNorm(const float* x, int64_t n, int c, int groups, float eps, const float* gamma,
               const float* beta, float* out, ThreadPool* pool) {
  CHECK(groups > 0 && c % groups == 0) << c << " channels in " << groups << " groups";
  const int cg = c / groups;
  std::vector<double> mean(groups), inv(groups);
  auto stats = [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      double sum = 0, sq = 0;
      for (int64_t p = 0; p < n; ++p) {
        const float* v = x + p * c + g * cg;
        for (int i = 0; i < cg; ++i) sum += v[i];
      }
      const double m = sum / (static_cast<double>(n) * cg);
      for (int64_t p = 0; p < n; ++p) {
        const float* v = x + p * c + g * cg;
        for (int i = 0; i < cg; ++i) sq += (v[i] - m) * (v[i] - m);
      }
      mean[g] = m;
      inv[g] = 1.0 / std::sqrt(sq / (static_cast<double>(n) * cg) + eps);
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(groups, stats);
  } else {
    stats(0, groups);
  }
  auto apply = [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      for (int ch = 0; ch < c; ++ch) {
        const int g = ch / cg;
        const double v = (x[p * c + ch] - mean[g]) * inv[g];
        out[p * c + ch] = static_cast<float>(v * gamma[ch] + beta[ch]);
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(n, apply);
  } else {
    apply(0, n);
  }
}

void LayerNorm(const float* x, int64_t n, int c, float eps, const float* gamma, const float* beta,
               float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* v = x + t * c;
    double sum = 0, sq = 0;
    for (int i = 0; i < c; ++i) sum += v[i];
    const double m = sum / c;
    for (int i = 0; i < c; ++i) sq += (v[i] - m) * (v[i] - m);
    const double inv = 1.0 / std::sqrt(sq / c + eps);
    float* o = out + t * c;
    for (int i = 0; i < c; ++i) o[i] = static_cast<float>((v[i] - m) * inv * gamma[i] + beta[i]);
  }
}

void SiluInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void GeluInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(0.5 * x[i] * (1.0 + std::erf(x[i] / std::sqrt(2.0))));
  }
}

void QuickGeluInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / (1.0f + std::exp(-1.702f * x[i]));
}

void Geglu(const float* proj, int64_t n, int64_t d, float* out) {
  for (int64_t t = 0; t < n; ++t) {
    const float* a = proj + t * 2 * d;
    const float* gate = a + d;
    float* o = out + t * d;
    for (int64_t i = 0; i < d; ++i) {
      const double g = gate[i];
      o[i] = static_cast<float>(a[i] * (0.5 * g * (1.0 + std::erf(g / std::sqrt(2.0)))));
    }
  }
}

void Upsample2x(const float* x, int h, int w, int c, float* y) {
  const size_t bytes = sizeof(float) * static_cast<size_t>(c);
  for (int oy = 0; oy < 2 * h; ++oy) {
    for (int ox = 0; ox < 2 * w; ++ox) {
      std::memcpy(y + (static_cast<int64_t>(oy) * 2 * w + ox) * c,
                  x + (static_cast<int64_t>(oy / 2) * w + ox / 2) * c, bytes);
    }
  }
}

void TimestepEmbedding(double t, int dim, float* out) {
  // In float32, step by step as the reference (LDM's timestep_embedding in PyTorch) computes it,
  // so embeddings round as theirs do: exp(-ln(10000) * i / half), times t, then cos and sin.
  const int half = dim / 2;
  const float tf = static_cast<float>(t);
  const float neg_log = static_cast<float>(-std::log(10000.0));
  for (int i = 0; i < half; ++i) {
    const float freq = std::exp(neg_log * static_cast<float>(i) / static_cast<float>(half));
    const float arg = tf * freq;
    out[i] = std::cos(arg);
    out[half + i] = std::sin(arg);
  }
  if (dim % 2 == 1) out[dim - 1] = 0.0f;
}

namespace {

// Each query row through core's attention op (one thread per query: heads are not split, so the
// result never depends on the thread count). causal: query i sees keys 0..i.
void Attend(const float* q, const float* k, const float* v, int64_t nq, int64_t nk, int heads,
            int d, bool causal, float* out, ThreadPool* pool) {
  const AttentionShape shape{heads, heads, d, d};
  const KvView kv{k, v, KvType::kF32};
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t width = static_cast<int64_t>(heads) * d;
  auto run = [&](int64_t b, int64_t e) {
    std::vector<float> scores(static_cast<size_t>(heads) * nk);
    for (int64_t i = b; i < e; ++i) {
      const int64_t n_kv = causal ? i + 1 : nk;
      Attention(shape, q + i * width, kv, n_kv, scale, scores.data(), out + i * width, nullptr);
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(nq, run);
  } else {
    run(0, nq);
  }
}

}  // namespace

void MultiHeadAttention(const float* q, const float* k, const float* v, int64_t nq, int64_t nk,
                        int heads, int d, float* out, ThreadPool* pool) {
  // As matrix products on the kernels, per (head, block of queries): S = Q K^T (K as the weight
  // matrix), softmax of each row of S, O = P V (V^T as the weight matrix). Each unit is computed
  // by one thread, so the thread count never changes a bit. Memory: one (block, nk) score block
  // per thread, and K and V^T of one head at a time... per head copies of K (nk, d) and V^T
  // (d, nk), contiguous as the kernels want them.
  const int64_t width = static_cast<int64_t>(heads) * d;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (nq + kBlock - 1) / kBlock;
  std::vector<float> kh(static_cast<size_t>(heads) * nk * d), vt(kh.size());
  for (int h = 0; h < heads; ++h) {
    float* kd = kh.data() + static_cast<size_t>(h) * nk * d;
    float* vd = vt.data() + static_cast<size_t>(h) * nk * d;
    for (int64_t j = 0; j < nk; ++j) {
      for (int i = 0; i < d; ++i) {
        kd[j * d + i] = k[j * width + h * d + i];
        vd[i * nk + j] = v[j * width + h * d + i];
      }
    }
  }
  auto run = [&](int64_t b, int64_t e) {
    std::vector<float> qb(static_cast<size_t>(kBlock) * d), sb(static_cast<size_t>(kBlock) * nk),
        ob(static_cast<size_t>(kBlock) * d);
    for (int64_t unit = b; unit < e; ++unit) {
      const int h = static_cast<int>(unit / blocks);
      const int64_t q0 = (unit % blocks) * kBlock;
      const int64_t m = std::min(kBlock, nq - q0);
      for (int64_t r = 0; r < m; ++r) {
        for (int i = 0; i < d; ++i) qb[r * d + i] = q[(q0 + r) * width + h * d + i] * scale;
      }
      const Matrix km{GgmlType::kF32,
                      reinterpret_cast<const uint8_t*>(kh.data() + static_cast<size_t>(h) * nk * d),
                      nk, d};
      Linear(km, qb.data(), m, sb.data(), nullptr);
      for (int64_t r = 0; r < m; ++r) Softmax(sb.data() + r * nk, nk);
      const Matrix vm{GgmlType::kF32,
                      reinterpret_cast<const uint8_t*>(vt.data() + static_cast<size_t>(h) * nk * d),
                      d, nk};
      Linear(vm, sb.data(), m, ob.data(), nullptr);
      for (int64_t r = 0; r < m; ++r) {
        for (int i = 0; i < d; ++i) out[(q0 + r) * width + h * d + i] = ob[r * d + i];
      }
    }
  };
  if (pool != nullptr) {
    pool->ParallelFor(static_cast<int64_t>(heads) * blocks, run);
  } else {
    run(0, static_cast<int64_t>(heads) * blocks);
  }
}

void CausalMultiHeadAttention(const float* q, const float* k, const float* v, int64_t n, int heads,
                              int d, float* out, ThreadPool* pool) {
  Attend(q, k, v, n, n, heads, d, /*causal=*/true, out, pool);
}

}  // namespace sluice::diffusion
