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

}  // namespace

const Kernels& ScalarKernels() {
  static const Kernels k{&DotF32, &DotF16, &AxpyF32, &AxpyF16};
  return k;
}

}  // namespace attention_simd

namespace {

// One query head over its kv head. k, v point at position 0 of that kv head; rows are
// `k_row` / `v_row` elements apart (n_head_kv * head_dim).
void AttendHead(const attention_simd::Kernels& kern, const float* q, const void* k, const void* v,
                KvType type, int64_t k_row, int64_t v_row, int head_dim_k, int head_dim_v,
                int64_t n_kv, float scale, float* scores, float* out, const float* sink) {
  for (int64_t p = 0; p < n_kv; ++p) {
    float dot;
    if (type == KvType::kF32) {
      dot = kern.dot_f32(q, static_cast<const float*>(k) + p * k_row, head_dim_k);
    } else {
      dot = kern.dot_f16(q, static_cast<const uint16_t*>(k) + p * k_row, head_dim_k);
    }
    scores[p] = dot * scale;
  }
  if (sink == nullptr) {
    Softmax(scores, n_kv);
  } else {
    float max = *sink;
    for (int64_t p = 0; p < n_kv; ++p) max = std::max(max, scores[p]);
    float sum = std::exp(*sink - max);
    for (int64_t p = 0; p < n_kv; ++p) sum += scores[p] = std::exp(scores[p] - max);
    const float inv = 1.0f / sum;
    for (int64_t p = 0; p < n_kv; ++p) scores[p] *= inv;
  }
  std::memset(out, 0, sizeof(float) * head_dim_v);
  for (int64_t p = 0; p < n_kv; ++p) {
    if (type == KvType::kF32) {
      kern.axpy_f32(scores[p], static_cast<const float*>(v) + p * v_row, out, head_dim_v);
    } else {
      kern.axpy_f16(scores[p], static_cast<const uint16_t*>(v) + p * v_row, out, head_dim_v);
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
  const attention_simd::Kernels& kern =
      ActiveIsa() == Isa::kScalar ? attention_simd::ScalarKernels() : attention_simd::Avx2Kernels();
#else
  const attention_simd::Kernels& kern = attention_simd::ScalarKernels();
#endif
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t h = begin; h < end; ++h) {
      const int64_t g = h / group;
      const uint8_t* k = static_cast<const uint8_t*>(kv.k) + g * shape.head_dim_k * elem;
      const uint8_t* v = static_cast<const uint8_t*>(kv.v) + g * shape.head_dim_v * elem;
      AttendHead(kern, q + h * shape.head_dim_k, k, v, kv.type, k_row, v_row, shape.head_dim_k,
                 shape.head_dim_v, n_kv, scale, scores + h * n_kv, out + h * shape.head_dim_v,
                 sinks != nullptr ? sinks + h : nullptr);
    }
  };
  if (pool != nullptr && pool->size() > 1 && shape.n_head > 1) {
    pool->ParallelFor(shape.n_head, run);
  } else {
    run(0, shape.n_head);
  }
}

}  // namespace sluice
