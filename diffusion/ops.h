// The operations of Stable Diffusion's networks, on activations laid out as pixels (or tokens) x
// channels: an image of H x W pixels with C channels is a (H * W, C) row-major array, NHWC, so a
// pixel is a token and every projection is Linear (core/ops/linear.h) over rows, as in the LLM.
//
// Convolution weights are Matrix views of PyTorch's (C_out, C_in, kh, kw) as they are stored
// (C_out rows of C_in * kh * kw): a convolution is im2col over a chunk of output pixels (each
// row gathered in the weights' (C_in, kh, kw) order), then one MatMul, so it runs on the same
// F32/F16/BF16/quantized kernels and ISA paths as the LLM, on the checkpoint's bytes in place.
// Gathering costs 1/C_out of the MatMul. Chunks bound the im2col buffer (kConvChunkBytes),
// whatever the image size.
//
// Every op is checked against a double-precision reference (tests/diffusion/ops_test.cc); results
// never depend on the thread count.
// Thread-safety: pure functions on caller-owned buffers; the pool (may be null) is used inside.
#pragma once

#include <cstdint>
#include <vector>

#include "core/ops/linear.h"
#include "core/threads/thread_pool.h"

namespace sluice::diffusion {

// A 2-D convolution's weights: w is (c_out, c_in * k * k) in (c_in, ky, kx) order.
struct Conv2dWeights {
  Matrix w;
  const float* bias = nullptr;  // (c_out) or null
  int c_in = 0;
  int c_out = 0;
  int k = 1;  // kernel size (square)
};

inline constexpr int64_t kConvChunkBytes = 8 << 20;
// Activations per Linear call: tokens are fed in chunks of about this many bytes (L2-sized).
inline constexpr int64_t kLinearChunkBytes = 1 << 20;

// Output size of a convolution along one axis.
inline int ConvOut(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

// y (ho * wo, c_out) = conv(x (h * w, c_in)), zero padding `pad`, stride 1 or 2.
// scratch: at least Conv2dScratchFloats(...) floats.
// chunk_bytes: the im2col buffer's bound (tests make it small to cross chunk edges; the result
// is the same bits for any value).
int64_t Conv2dScratchFloats(const Conv2dWeights& c, int h, int w, int stride, int pad,
                            int64_t chunk_bytes = kConvChunkBytes);
void Conv2d(const Conv2dWeights& c, const float* x, int h, int w, int stride, int pad, float* y,
            float* scratch, ThreadPool* pool, int64_t chunk_bytes = kConvChunkBytes);

// The same convolution (stride 1, padding k / 2) on the nearest 2x upsampling of x (h * w, c_in)
// without making it: y is (2h * 2w, c_out), the same bits as Upsample2x then Conv2d, and the
// 4x-sized input never exists (the decoder's largest buffer at its last levels).
int64_t Conv2dUp2ScratchFloats(const Conv2dWeights& c, int h, int w,
                               int64_t chunk_bytes = kConvChunkBytes);
void Conv2dUp2(const Conv2dWeights& c, const float* x, int h, int w, float* y, float* scratch,
               ThreadPool* pool, int64_t chunk_bytes = kConvChunkBytes);

// The decoders' two convolutions on whole buffers: `same` padding (k / 2), stride 1, into `out`
// resized to (h * w, c_out); and the nearest-2x one into out (2h * 2w, c_out) (Conv2dUp2). Each
// allocates its own im2col chunk.
void ConvSame(const Conv2dWeights& c, const float* x, int h, int w, std::vector<float>& out,
              ThreadPool* pool);
void ConvUp2(const Conv2dWeights& c, const float* x, int h, int w, std::vector<float>& out,
             ThreadPool* pool);

// y (n, rows) = x (n, cols) W^T + bias.
void LinearBias(const Matrix& w, const float* bias, const float* x, int64_t n, float* y,
                ThreadPool* pool);

// GroupNorm over (n, c) pixels x channels: each of `groups` groups of c / groups consecutive
// channels is normalised over all n pixels and its channels, then scaled by gamma and shifted by
// beta per channel. Statistics in double. out may alias x.
void GroupNorm(const float* x, int64_t n, int c, int groups, float eps, const float* gamma,
               const float* beta, float* out, ThreadPool* pool);

// LayerNorm of each of n rows of c (statistics in double). out may alias x.
void LayerNorm(const float* x, int64_t n, int c, float eps, const float* gamma, const float* beta,
               float* out);

void SiluInPlace(float* x, int64_t n);
// GELU with the exact erf (torch.nn.functional.gelu's default).
void GeluInPlace(float* x, int64_t n);
// x * sigmoid(1.702 x), OpenAI CLIP's activation.
void QuickGeluInPlace(float* x, int64_t n);
// GEGLU: proj (n, 2 * d) = [a | gate] per row -> out (n, d) = a * gelu(gate) (the first half is
// the value, the second the gate, as in the original stable-diffusion code). out may alias proj
// (rows are compacted in place).
void Geglu(const float* proj, int64_t n, int64_t d, float* out);

// Nearest-neighbour 2x: x (h * w, c) -> y (2h * 2w, c).
void Upsample2x(const float* x, int h, int w, int c, float* y);

// The sinusoidal embedding of a scalar t (timestep, or SDXL's size conditioning):
// [cos(t f_0) .. cos(t f_{d/2-1}), sin(t f_0) .. sin(t f_{d/2-1})], f_i = 10000^(-i / (d/2)),
// cos first (LDM's order; diffusers calls it flip_sin_to_cos), in float32 as PyTorch does.
void TimestepEmbedding(double t, int dim, float* out);

// Multi-head attention without a mask: q (nq, heads * d), k and v (nk, heads * d) ->
// out (nq, heads * d); scale 1/sqrt(d). As two matrix products per head and block of 64 queries
// on the shared kernels; memory: a (64, nk) score block per thread and a per-head copy of K and
// V^T, never the (nq, nk) matrix (64 MB per head at 4096 pixels).
void MultiHeadAttention(const float* q, const float* k, const float* v, int64_t nq, int64_t nk,
                        int heads, int d, float* out, ThreadPool* pool);
// The same with a causal mask (token i sees 0..i): the CLIP text encoder.
void CausalMultiHeadAttention(const float* q, const float* k, const float* v, int64_t n, int heads,
                              int d, float* out, ThreadPool* pool);

}  // namespace sluice::diffusion
