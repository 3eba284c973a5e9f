// Scalar reference kernels for the 32-element formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL,
// MXFP4) and the float formats (F32, F16, BF16), plus the scalar activation quantizers.
//
// Each dot decodes a weight block to integer levels, takes the exact integer dot with the int8
// activations, then accumulates in one float in block order:
//   Q8_0 activations:  acc += (d_w * d_a) * isum
//   Q8_1 activations:  acc += (d_w * d_a) * isum + m_w * s_a      (Q4_1, Q5_1)
// Float weights keep f32 activations and accumulate w * x in element order.
// The SIMD paths use the same integer sums; for Q4_0 they also run this float sequence (8 rows in
// the lanes of a vector) and give these bits, the other formats sum the floats in a different
// order and the tests bound the difference.
#include <cstring>

#include "core/base/ggml_type.h"
#include "core/kernels/kernel_table.h"
#include "core/quant/blocks.h"
#include "core/quant/fp16.h"
#include "core/quant/quantize.h"

namespace sluice {
namespace {

int DotLevels32(const int8_t* levels, const int8_t* a) {
  int sum = 0;
  for (int j = 0; j < kQk; ++j) sum += levels[j] * a[j];
  return sum;
}

// Levels of one 32-element block in element order.
void Levels(const BlockQ4_0& b, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<int8_t>((b.qs[j] & 0xf) - 8);
    out[j + 16] = static_cast<int8_t>((b.qs[j] >> 4) - 8);
  }
}
void Levels(const BlockQ4_1& b, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<int8_t>(b.qs[j] & 0xf);
    out[j + 16] = static_cast<int8_t>(b.qs[j] >> 4);
  }
}
template <typename Block>
void Levels5(const Block& b, int offset, int8_t* out) {
  uint32_t qh;
  std::memcpy(&qh, b.qh, sizeof(qh));
  for (int j = 0; j < 16; ++j) {
    out[j] = static_cast<int8_t>(((b.qs[j] & 0xf) | (((qh >> j) & 1) << 4)) - offset);
    out[j + 16] = static_cast<int8_t>(((b.qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - offset);
  }
}
void Levels(const BlockQ5_0& b, int8_t* out) { Levels5(b, 16, out); }
void Levels(const BlockQ5_1& b, int8_t* out) { Levels5(b, 0, out); }
void Levels(const BlockQ8_0& b, int8_t* out) { std::memcpy(out, b.qs, kQk); }
void Levels(const BlockIq4Nl& b, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = kIq4nlValues[b.qs[j] & 0xf];
    out[j + 16] = kIq4nlValues[b.qs[j] >> 4];
  }
}
void Levels(const BlockMxfp4& b, int8_t* out) {
  for (int j = 0; j < 16; ++j) {
    out[j] = kMxfp4Values[b.qs[j] & 0xf];
    out[j + 16] = kMxfp4Values[b.qs[j] >> 4];
  }
}

float Scale(const BlockMxfp4& b) { return E8m0ToFp32Half(b.e); }
template <typename Block>
float Scale(const Block& b) {
  return LoadFp16(b.d);
}

// Weights whose value is d * level, against Q8_0 activations.
template <typename Block>
float DotQ8_0Act(const uint8_t* w, const uint8_t* act, int64_t nb) {
  const auto* x = reinterpret_cast<const Block*>(w);
  const auto* a = reinterpret_cast<const BlockQ8_0*>(act);
  int8_t levels[kQk];
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    Levels(x[i], levels);
    const int isum = DotLevels32(levels, a[i].qs);
    acc += (Scale(x[i]) * LoadFp16(a[i].d)) * static_cast<float>(isum);
  }
  return acc;
}

// Weights whose value is d * level + m, against Q8_1 activations (s = d_a * sum(q_a)).
template <typename Block>
float DotQ8_1Act(const uint8_t* w, const uint8_t* act, int64_t nb) {
  const auto* x = reinterpret_cast<const Block*>(w);
  const auto* a = reinterpret_cast<const BlockQ8_1*>(act);
  int8_t levels[kQk];
  float acc = 0;
  for (int64_t i = 0; i < nb; ++i) {
    Levels(x[i], levels);
    const int isum = DotLevels32(levels, a[i].qs);
    acc += (LoadFp16(x[i].d) * LoadFp16(a[i].d)) * static_cast<float>(isum) +
           LoadFp16(x[i].m) * LoadFp16(a[i].s);
  }
  return acc;
}

float DotF32(const uint8_t* w, const uint8_t* act, int64_t n) {
  const float* x = reinterpret_cast<const float*>(act);
  float acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    float wi;
    std::memcpy(&wi, w + 4 * i, sizeof(wi));
    acc += wi * x[i];
  }
  return acc;
}

template <float (*kToF32)(uint16_t)>
float DotHalf(const uint8_t* w, const uint8_t* act, int64_t n) {
  const float* x = reinterpret_cast<const float*>(act);
  float acc = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, w + 2 * i, sizeof(h));
    acc += kToF32(h) * x[i];
  }
  return acc;
}

// `Dot` takes (row, activations, units) where units = cols / kElementsPerUnit.
template <float (*Dot)(const uint8_t*, const uint8_t*, int64_t), int kElementsPerUnit>
void ScalarRows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  const int64_t units = a.cols / kElementsPerUnit;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const uint8_t* w = a.w + static_cast<uint64_t>(r) * a.w_row_bytes;
    for (int64_t t = 0; t < a.n_tokens; ++t) {
      a.y[t * a.y_stride + r] = Dot(w, a.act + static_cast<uint64_t>(t) * a.act_row_bytes, units);
    }
  }
}

// The table's activation layouts (kernel_table.h): blocks, then their scales as f32.
void QuantizeQ8_0Act(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_0*>(dst);
  QuantizeActQ8_0(x, blocks, n);
  float* d = reinterpret_cast<float*>(static_cast<uint8_t*>(dst) +
                                      ActScalesOffset(n / kQk, sizeof(BlockQ8_0)));
  int32_t* sum = reinterpret_cast<int32_t*>(d + n / kQk);
  for (int64_t i = 0; i < n / kQk; ++i) {
    d[i] = LoadFp16(blocks[i].d);
    sum[i] = 0;
    for (int j = 0; j < kQk; ++j) sum[i] += blocks[i].qs[j];
  }
}
void QuantizeQ8_1Act(const float* x, void* dst, int64_t n) {
  auto* blocks = static_cast<BlockQ8_1*>(dst);
  QuantizeActQ8_1(x, blocks, n);
  float* d = reinterpret_cast<float*>(static_cast<uint8_t*>(dst) +
                                      ActScalesOffset(n / kQk, sizeof(BlockQ8_1)));
  float* s = d + n / kQk;
  for (int64_t i = 0; i < n / kQk; ++i) {
    d[i] = LoadFp16(blocks[i].d);
    s[i] = LoadFp16(blocks[i].s);
  }
}
void QuantizeQ8_KAct(const float* x, void* dst, int64_t n) {
  QuantizeActQ8_K(x, static_cast<BlockQ8_K*>(dst), n);
}

constexpr int Id(GgmlType id) { return static_cast<int>(id); }

}  // namespace

void FillScalarKernels(KernelTable* t) {
  t->rows[Id(GgmlType::kF32)] = ScalarRows<DotF32, 1>;
  t->rows[Id(GgmlType::kF16)] = ScalarRows<DotHalf<Fp16ToFp32>, 1>;
  t->rows[Id(GgmlType::kBF16)] = ScalarRows<DotHalf<Bf16ToFp32>, 1>;
  t->rows[Id(GgmlType::kQ4_0)] = ScalarRows<DotQ8_0Act<BlockQ4_0>, kQk>;
  t->rows[Id(GgmlType::kQ5_0)] = ScalarRows<DotQ8_0Act<BlockQ5_0>, kQk>;
  t->rows[Id(GgmlType::kQ8_0)] = ScalarRows<DotQ8_0Act<BlockQ8_0>, kQk>;
  t->rows[Id(GgmlType::kIQ4_NL)] = ScalarRows<DotQ8_0Act<BlockIq4Nl>, kQk>;
  t->rows[Id(GgmlType::kMXFP4)] = ScalarRows<DotQ8_0Act<BlockMxfp4>, kQk>;
  t->rows[Id(GgmlType::kQ4_1)] = ScalarRows<DotQ8_1Act<BlockQ4_1>, kQk>;
  t->rows[Id(GgmlType::kQ5_1)] = ScalarRows<DotQ8_1Act<BlockQ5_1>, kQk>;
  t->quantize_q8_0 = QuantizeQ8_0Act;
  t->quantize_q8_1 = QuantizeQ8_1Act;
  t->quantize_q8_k = QuantizeQ8_KAct;
}

}  // namespace sluice
