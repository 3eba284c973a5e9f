#include "core/ops/attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/base/check.h"
#include "core/kernels/dispatch.h"
#include "core/ops/activation.h"
#include "core/ops/attention_simd.h"
#include "core/quant/fp16.h"

namespace sluice {
namespace attention_simd {
namespace {

// Dot products with 8 independent partial sums: the compiler vectorises them without fast-math
// and the summation order is fixed, so results are reproducible.
float DotF32(const float* a, const float* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
  }
  for (; i < n; ++i) acc[0] += a[i] * b[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

float DotF16(const float* a, const uint16_t* b, int n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * Fp16ToFp32(b[i + j]);
  }
  for (; i < n; ++i) acc[0] += a[i] * Fp16ToFp32(b[i]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

void AxpyF32(float w, const float* v, float* out, int n) {
  for (int i = 0; i < n; ++i) out[i] += w * v[i];
}

void AxpyF16(float w, const uint16_t* v, float* out, int n) {
  for (int i = 0; i < n; ++i) out[i] += w * Fp16ToFp32(v[i]);
}

void DotF16Heads(const float* q, int64_t q_stride, int heads, const uint16_t* k, int n,
                 float* out) {
  for (int h = 0; h < heads; ++h) out[h] = DotF16(q + h * q_stride, k, n);
}

void WeightedSumF16(const float* w, int64_t w_stride, int heads, const uint16_t* v, int64_t v_row,
                    int64_t n_kv, float* out, int64_t out_stride, int n) {
  for (int h = 0; h < heads; ++h) {
    float* o = out + h * out_stride;
    std::memset(o, 0, sizeof(float) * n);
    for (int64_t p = 0; p < n_kv; ++p) AxpyF16(w[h * w_stride + p], v + p * v_row, o, n);
  }
}

}  // namespace

const Kernels& ScalarKernels() {
  static const Kernels k{&DotF32, &DotF16, &AxpyF32, &AxpyF16, &DotF16Heads, &WeightedSumF16};
  return k;
}

}  // namespace attention_simd

namespace {

// Query heads per work unit (the heads sharing a kv head, at most this many at a time).
constexpr int kGroupTile = 8;

// The query heads [h0, h0 + heads) over their shared kv head (k, v: position 0 of that kv head,
// rows k_row / v_row elements apart). Per head the same operations as one head alone, in the same
// order: the f16 path hands the group to the group kernels, which load each k and v row once for
// all the heads instead of once per head (about half of a 2048-token prompt's time was attention).
//   q: (heads, head_dim_k)   scores: (heads, n_kv)   out: (heads, head_dim_v)   sinks: (heads)
void AttendGroup(const attention_simd::Kernels& kern, const float* q, int heads, const void* k,
                 const void* v, KvType type, int64_t k_row, int64_t v_row, int head_dim_k,
                 int head_dim_v, int64_t n_kv, float scale, float* scores, float* out,
                 const float* sinks) {
  float dots[kGroupTile];
  for (int64_t p = 0; p < n_kv; ++p) {
    if (type == KvType::kF32) {
      for (int h = 0; h < heads; ++h) {
        dots[h] =
            kern.dot_f32(q + h * head_dim_k, static_cast<const float*>(k) + p * k_row, head_dim_k);
      }
    } else {
      kern.dot_f16_heads(q, head_dim_k, heads, static_cast<const uint16_t*>(k) + p * k_row,
                         head_dim_k, dots);
    }
    for (int h = 0; h < heads; ++h) scores[h * n_kv + p] = dots[h] * scale;
  }
  for (int h = 0; h < heads; ++h) {
    float* s = scores + h * n_kv;
    if (sinks == nullptr) {
      Softmax(s, n_kv);
      continue;
    }
    float max = sinks[h];
    for (int64_t p = 0; p < n_kv; ++p) max = std::max(max, s[p]);
    float sum = std::exp(sinks[h] - max);
    for (int64_t p = 0; p < n_kv; ++p) sum += s[p] = std::exp(s[p] - max);
    const float inv = 1.0f / sum;
    for (int64_t p = 0; p < n_kv; ++p) s[p] *= inv;
  }
  if (type == KvType::kF16) {
    kern.weighted_sum_f16(scores, n_kv, heads, static_cast<const uint16_t*>(v), v_row, n_kv, out,
                          head_dim_v, head_dim_v);
    return;
  }
  for (int h = 0; h < heads; ++h) {
    float* o = out + h * head_dim_v;
    std::memset(o, 0, sizeof(float) * head_dim_v);
    for (int64_t p = 0; p < n_kv; ++p) {
      kern.axpy_f32(scores[h * n_kv + p], static_cast<const float*>(v) + p * v_row, o, head_dim_v);
    }
  }
}

}  // namespace

size_t KvTypeBytes(KvType type) { return type == KvType::kF16 ? 2 : 4; }

const char* KvTypeName(KvType type) { return type == KvType::kF16 ? "f16" : "f32"; }

void StoreKv(const float* src, KvType type, void* dst, int64_t n) {
  if (type == KvType::kF32) {
    std::memcpy(dst, src, sizeof(float) * n);
    return;
  }
  uint16_t* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = Fp32ToFp16(src[i]);
}

void LoadKv(const void* src, KvType type, float* dst, int64_t n) {
  if (type == KvType::kF32) {
    std::memcpy(dst, src, sizeof(float) * n);
    return;
  }
  const uint16_t* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = Fp16ToFp32(s[i]);
}

void Attention(const AttentionShape& shape, const float* q, const KvView& kv, int64_t n_kv,
               float scale, float* scores, float* out, ThreadPool* pool, const float* sinks) {
  CHECK(shape.n_head_kv > 0 && shape.n_head % shape.n_head_kv == 0)
      << shape.n_head << " heads, " << shape.n_head_kv << " kv heads";
  DCHECK(n_kv > 0);
  const int group = shape.n_head / shape.n_head_kv;
  const int64_t k_row = static_cast<int64_t>(shape.n_head_kv) * shape.head_dim_k;
  const int64_t v_row = static_cast<int64_t>(shape.n_head_kv) * shape.head_dim_v;
  const size_t elem = KvTypeBytes(kv.type);
#if defined(__x86_64__)
  const Isa isa = ActiveIsa();
  const attention_simd::Kernels& kern = isa == Isa::kScalar   ? attention_simd::ScalarKernels()
                                        : isa == Isa::kAvx512 ? attention_simd::Avx512Kernels()
                                                              : attention_simd::Avx2Kernels();
#else
  const attention_simd::Kernels& kern = attention_simd::ScalarKernels();
#endif
  // Work units: up to kGroupTile query heads of one kv group (MLA's single latent kv head is
  // shared by every query head: it still splits into many units).
  const int tiles_per_group = (group + kGroupTile - 1) / kGroupTile;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const int64_t g = u / tiles_per_group;
      const int64_t h0 = g * group + (u % tiles_per_group) * kGroupTile;
      const int heads = static_cast<int>(std::min<int64_t>(kGroupTile, (g + 1) * group - h0));
      const uint8_t* k = static_cast<const uint8_t*>(kv.k) + g * shape.head_dim_k * elem;
      const uint8_t* v = static_cast<const uint8_t*>(kv.v) + g * shape.head_dim_v * elem;
      AttendGroup(kern, q + h0 * shape.head_dim_k, heads, k, v, kv.type, k_row, v_row,
                  shape.head_dim_k, shape.head_dim_v, n_kv, scale, scores + h0 * n_kv,
                  out + h0 * shape.head_dim_v, sinks != nullptr ? sinks + h0 : nullptr);
    }
  };
  const int64_t units = static_cast<int64_t>(shape.n_head_kv) * tiles_per_group;
  if (pool != nullptr && pool->size() > 1 && units > 1) {
    pool->ParallelFor(units, run);
  } else {
    run(0, units);
  }
}

}  // namespace sluice
