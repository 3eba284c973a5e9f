// MatVec / MatMul on every compiled and supported ISA path, every weight type, odd sizes:
//  - against a float64 dot of the dequantized weights and the dequantized (quantized) activations:
//    only float rounding separates them, bounded by (terms summed) * 2^-24 * sum|w*a|;
//  - against a float64 dot with the original f32 activations: adds the activation quantization
//    error, bounded exactly by sum |w| * |x - a| (computed per case);
//  - against the scalar path (same bound as the first, doubled);
//  - MatMul(token t) == MatVec(x[t]) bit for bit; results independent of thread count and of the
//    weights' byte alignment, bit for bit.
#include "core/kernels/matmul.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/kernels/dispatch.h"
#include "core/kernels/kernel_table.h"
#include "core/quant/blocks.h"
#include "core/quant/fp16.h"
#include "core/quant/quantize.h"
#include "core/threads/thread_pool.h"
#include "tests/kernels/kernel_test_util.h"

namespace sluice {
namespace {

using testing::AllIsas;
using testing::AllWeightTypes;
using testing::IsaGuard;
using testing::RandomFloats;

// The activations as the kernels see them: quantized with the engine's activation quantizer,
// then decoded.
std::vector<float> EffectiveActivations(GgmlType w_type, const std::vector<float>& x) {
  const GgmlType act = MatMulActivationType(w_type);
  if (act == GgmlType::kF32) return x;
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> q(RowBytes(act, n) + 8);
  std::vector<float> out(x.size());
  if (act == GgmlType::kQ8_0) {
    QuantizeActQ8_0(x.data(), reinterpret_cast<BlockQ8_0*>(q.data()), n);
  } else if (act == GgmlType::kQ8_1) {
    QuantizeActQ8_1(x.data(), reinterpret_cast<BlockQ8_1*>(q.data()), n);
  } else {
    std::vector<BlockQ8_K> blocks(n / kQkK);
    QuantizeActQ8_K(x.data(), blocks.data(), n);
    std::memcpy(q.data(), blocks.data(), blocks.size() * sizeof(BlockQ8_K));
  }
  DequantizeRow(act, q.data(), out.data(), n);
  return out;
}

bool HasMins(GgmlType t) {
  return t == GgmlType::kQ4_1 || t == GgmlType::kQ5_1 || t == GgmlType::kQ2_K ||
         t == GgmlType::kQ4_K || t == GgmlType::kQ5_K;
}

// Per row: sum over blocks of |m_w| * |s_a| * 2^-11 (zero for formats without Q8_1).
std::vector<double> Q8_1SumError(GgmlType type, const std::vector<uint8_t>& w, int64_t rows,
                                 int64_t cols, const std::vector<float>& a) {
  std::vector<double> err(rows, 0.0);
  if (type != GgmlType::kQ4_1 && type != GgmlType::kQ5_1) return err;
  const uint64_t row_bytes = RowBytes(type, cols);
  const int block_bytes = TypeTraits(type).block_bytes;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / kQk; ++b) {
      // Both block types keep the f16 min at bytes 2..3.
      const uint8_t* blk = w.data() + r * row_bytes + b * block_bytes;
      uint16_t m16;
      std::memcpy(&m16, blk + 2, 2);
      float m;
      DequantizeRow(GgmlType::kF16, &m16, &m, 1);
      double s = 0;
      for (int j = 0; j < kQk; ++j) s += a[b * kQk + j];
      err[r] += std::fabs(m) * std::fabs(s) * std::ldexp(1.01, -11);
    }
  }
  return err;
}

struct Case {
  int64_t rows;
  int64_t blocks;  // per row
};

// A weight matrix quantized from Gaussian floats (so every block is a realistic one).
std::vector<uint8_t> MakeWeights(GgmlType type, int64_t rows, int64_t cols, uint32_t seed) {
  const std::vector<float> w = RandomFloats(rows * cols, seed, 0.05f);
  std::vector<uint8_t> q(RowBytes(type, cols) * rows);
  for (int64_t r = 0; r < rows; ++r) {
    testing::MakeRow(type, w.data() + r * cols, cols, seed * 1000 + r,
                     q.data() + r * RowBytes(type, cols));
  }
  return q;
}

// One weight format on one compiled path: a path this CPU cannot run is a skip, named, never a
// pass (ForceIsa refuses it).
class MatVecTest : public ::testing::TestWithParam<std::tuple<GgmlType, Isa>> {
 protected:
  void SetUp() override {
    IsaGuard probe;
    if (!ForceIsa(isa())) GTEST_SKIP() << "this CPU has no " << IsaName(isa());
  }
  GgmlType type() const { return std::get<0>(GetParam()); }
  Isa isa() const { return std::get<1>(GetParam()); }
};

TEST_P(MatVecTest, MatchesFloat64Reference) {
  const GgmlType type = this->type();
  const int64_t block = TypeTraits(type).block_elements == 1 ? 32 : TypeTraits(type).block_elements;
  IsaGuard guard;
  const Case cases[] = {{3, 1}, {5, 31}, {2, 257}, {17, 2}};
  for (const Case& c : cases) {
    const int64_t cols = c.blocks * block;
    const std::vector<uint8_t> w = MakeWeights(type, c.rows, cols, 100 + c.blocks);
    const std::vector<float> x = RandomFloats(cols, 200 + c.blocks);
    const std::vector<float> a = EffectiveActivations(type, x);
    std::vector<float> w_row(cols);
    std::vector<double> exact_q(c.rows), exact_x(c.rows), abs_sum(c.rows), act_err(c.rows);
    for (int64_t r = 0; r < c.rows; ++r) {
      DequantizeRow(type, w.data() + r * RowBytes(type, cols), w_row.data(), cols);
      for (int64_t i = 0; i < cols; ++i) {
        exact_q[r] += static_cast<double>(w_row[i]) * a[i];
        exact_x[r] += static_cast<double>(w_row[i]) * x[i];
        abs_sum[r] += std::fabs(static_cast<double>(w_row[i]) * a[i]);
        act_err[r] += std::fabs(static_cast<double>(w_row[i])) * std::fabs(x[i] - a[i]);
      }
    }
    // Float terms accumulated per output: one per block (quantized) or one per element (float).
    // Formats with a subtracted min accumulate two partial sums that cancel, so their rounding is
    // relative to larger magnitudes than sum|w*a|: allow 8x.
    const double terms = TypeTraits(type).block_elements == 1 ? cols : c.blocks * 2 + 16;
    const double rounding = terms * std::ldexp(1.0, -24) * (HasMins(type) ? 8 : 1);
    // Q8_1 stores s = d * sum(q) in f16: its rounding (2^-11 relative) multiplies the weight
    // block's min, an error of the activation format itself.
    const std::vector<double> s_err = Q8_1SumError(type, w, c.rows, cols, a);

    std::vector<float> y_scalar(c.rows);
    ASSERT_TRUE(ForceIsa(Isa::kScalar));
    MatVec(type, w.data(), c.rows, cols, x.data(), y_scalar.data(), nullptr);
    {
      const Isa isa = this->isa();
      ASSERT_TRUE(ForceIsa(isa));
      std::vector<float> y(c.rows);
      MatVec(type, w.data(), c.rows, cols, x.data(), y.data(), nullptr);
      for (int64_t r = 0; r < c.rows; ++r) {
        const double tol = rounding * abs_sum[r] + 1e-30;
        SCOPED_TRACE(::testing::Message() << IsaName(isa) << " " << TypeName(type) << " rows "
                                          << c.rows << " cols " << cols << " row " << r);
        EXPECT_NEAR(y[r], exact_q[r], tol + s_err[r]);
        EXPECT_NEAR(y[r], exact_x[r], tol + s_err[r] + act_err[r] * (1 + 1e-6));
        EXPECT_NEAR(y[r], y_scalar[r], 2 * tol);
      }
    }
  }
}

TEST_P(MatVecTest, MatMulEqualsMatVecBitForBit) {
  const GgmlType type = this->type();
  const int64_t block = TypeTraits(type).block_elements == 1 ? 32 : TypeTraits(type).block_elements;
  const int64_t rows = 13, cols = 3 * block;
  const std::vector<uint8_t> w = MakeWeights(type, rows, cols, 7);
  IsaGuard guard;
  ThreadPool pool(2);
  {
    const Isa isa = this->isa();
    ASSERT_TRUE(ForceIsa(isa));
    for (int64_t n_tokens : {1, 2, 3, 4, 5, 7, 8, 9, 16, 32, 33}) {
      const std::vector<float> x = RandomFloats(n_tokens * cols, 300 + n_tokens);
      std::vector<float> y(n_tokens * rows);
      MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y.data(), &pool);
      for (int64_t t = 0; t < n_tokens; ++t) {
        std::vector<float> yv(rows);
        MatVec(type, w.data(), rows, cols, x.data() + t * cols, yv.data(), nullptr);
        ASSERT_EQ(0, std::memcmp(yv.data(), y.data() + t * rows, rows * sizeof(float)))
            << IsaName(isa) << " " << TypeName(type) << " n_tokens " << n_tokens << " token " << t;
      }
    }
  }
}

// Prompt-sized calls run in token chunks and row blocks (matmul.cc): wide rows (several row
// blocks) and 130 tokens (two whole chunks and a part) still give MatVec's bits per token.
TEST_P(MatVecTest, BlockedPromptMatMulEqualsMatVec) {
  const GgmlType type = this->type();
  const int64_t block = TypeTraits(type).block_elements == 1 ? 32 : TypeTraits(type).block_elements;
  const int64_t cols = (8192 / block) * block, n_tokens = 130;
  const int64_t rows = std::max<int64_t>(40, 2 * (256 * 1024) / RowBytes(type, cols) + 5);
  const std::vector<uint8_t> w = MakeWeights(type, rows, cols, 9);
  IsaGuard guard;
  ThreadPool pool(2);
  ASSERT_TRUE(ForceIsa(this->isa()));
  const std::vector<float> x = RandomFloats(n_tokens * cols, 77);
  std::vector<float> y(n_tokens * rows);
  MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y.data(), &pool);
  std::vector<float> yv(rows);
  for (int64_t t = 0; t < n_tokens; ++t) {
    MatVec(type, w.data(), rows, cols, x.data() + t * cols, yv.data(), nullptr);
    ASSERT_EQ(0, std::memcmp(yv.data(), y.data() + t * rows, rows * sizeof(float)))
        << IsaName(this->isa()) << " " << TypeName(type) << " token " << t;
  }
}

TEST_P(MatVecTest, IndependentOfThreadCountAndAlignment) {
  const GgmlType type = this->type();
  const int64_t block = TypeTraits(type).block_elements == 1 ? 32 : TypeTraits(type).block_elements;
  // Enough bytes per call that the pool really splits the rows (> 64 KiB of weights).
  const int64_t cols = 8 * block * (block == 32 ? 8 : 1);
  const int64_t rows = (96 * 1024) / RowBytes(type, cols) + 3;
  const std::vector<uint8_t> w = MakeWeights(type, rows, cols, 9);
  const int64_t n_tokens = 5;
  const std::vector<float> x = RandomFloats(n_tokens * cols, 10);
  IsaGuard guard;
  {
    const Isa isa = this->isa();
    ASSERT_TRUE(ForceIsa(isa));
    std::vector<float> ref(n_tokens * rows);
    MatMul(type, w.data(), rows, cols, x.data(), n_tokens, ref.data(), nullptr);
    for (int threads : {2, 3, 4}) {
      ThreadPool pool(threads);
      std::vector<float> y(n_tokens * rows);
      MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y.data(), &pool);
      ASSERT_EQ(0, std::memcmp(ref.data(), y.data(), y.size() * sizeof(float)))
          << IsaName(isa) << " " << TypeName(type) << " threads " << threads;
      std::vector<float> yv(rows);
      MatVec(type, w.data(), rows, cols, x.data(), yv.data(), &pool);
      ASSERT_EQ(0, std::memcmp(ref.data(), yv.data(), rows * sizeof(float)))
          << IsaName(isa) << " " << TypeName(type) << " MatVec threads " << threads;
    }
    // Weights at 4 KiB + k for several k, as the expert cache hands out GGUF slices.
    std::vector<uint8_t> shifted(w.size() + 8192);
    for (size_t offset : {1, 2, 3, 17, 4096 + 5}) {
      uint8_t* base = shifted.data() + (4096 - reinterpret_cast<uintptr_t>(shifted.data()) % 4096);
      uint8_t* p = base + offset % 4096;
      std::memcpy(p, w.data(), w.size());
      std::vector<float> y(n_tokens * rows);
      MatMul(type, p, rows, cols, x.data(), n_tokens, y.data(), nullptr);
      ASSERT_EQ(0, std::memcmp(ref.data(), y.data(), y.size() * sizeof(float)))
          << IsaName(isa) << " " << TypeName(type) << " offset " << offset;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatVecTest,
                         ::testing::Combine(::testing::ValuesIn(AllWeightTypes()),
                                            ::testing::ValuesIn(AllIsas())),
                         [](const ::testing::TestParamInfo<std::tuple<GgmlType, Isa>>& info) {
                           return std::string(TypeName(std::get<0>(info.param))) + "_" +
                                  IsaName(std::get<1>(info.param));
                         });

// Q4_K's, Q5_K's, Q4_0's and Q4_1's SIMD kernels sum each (row, token) and block to exact int32
// totals and then run the scalar twin's float sequence (kquant_kernels_impl.h, q8_kernels_impl.h),
// so every path gives the scalar bits, for MatVec and MatMul, over full and partial 8-row tiles,
// token counts around the MatMul tiles and batches, and 1 or 2 threads. On the AVX-512 path the
// other signed 32-element formats do too (16-row tiles, block32_avx512.cc).
void ExpectScalarBits(GgmlType type, const std::vector<Isa>& isas) {
  const int64_t block = TypeTraits(type).block_elements;
  IsaGuard guard;
  ThreadPool pool(2);
  const Case cases[] = {{1, 1}, {7, 3}, {8, 2}, {13, 3}, {17, 16}, {64, 28}, {40, 5}};
  for (const Case& c : cases) {
    const int64_t cols = c.blocks * block * (block == kQk ? 8 : 1);
    const std::vector<uint8_t> w = MakeWeights(type, c.rows, cols, 500 + c.rows);
    for (int64_t n_tokens : {1, 2, 3, 5, 9, 33}) {
      const std::vector<float> x = RandomFloats(n_tokens * cols, 600 + n_tokens);
      ASSERT_TRUE(ForceIsa(Isa::kScalar));
      std::vector<float> ref(n_tokens * c.rows);
      MatMul(type, w.data(), c.rows, cols, x.data(), n_tokens, ref.data(), nullptr);
      for (Isa isa : isas) {
        if (isa == Isa::kScalar || !ForceIsa(isa)) continue;
        for (ThreadPool* p : {static_cast<ThreadPool*>(nullptr), &pool}) {
          std::vector<float> y(n_tokens * c.rows);
          MatMul(type, w.data(), c.rows, cols, x.data(), n_tokens, y.data(), p);
          ASSERT_EQ(0, std::memcmp(ref.data(), y.data(), y.size() * sizeof(float)))
              << IsaName(isa) << " " << TypeName(type) << " rows " << c.rows << " cols " << cols
              << " n_tokens " << n_tokens;
        }
      }
    }
  }
}

class ScalarOrderTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(ScalarOrderTest, EveryPathEqualsScalarBitForBit) { ExpectScalarBits(GetParam(), AllIsas()); }

class Avx512ScalarOrderTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(Avx512ScalarOrderTest, Avx512EqualsScalarBitForBit) {
  if (!IsaSupported(Isa::kAvx512)) GTEST_SKIP() << "this CPU has no avx512";
  ExpectScalarBits(GetParam(), {Isa::kAvx512});
}

// Q8_0 weights may hold any int8 level, -128 included (the reference quantizer never writes it,
// other producers may); activation blocks of equal values quantize to 127 everywhere. The offset
// form must stay exact at both ends.
TEST(Avx512ScalarOrder, Q8_0FullLevelRange) {
  if (!IsaSupported(Isa::kAvx512)) GTEST_SKIP() << "this CPU has no avx512";
  IsaGuard guard;
  const int64_t rows = 19, cols = 8 * kQk, n_tokens = 3;
  std::vector<BlockQ8_0> w(rows * cols / kQk);
  std::mt19937 rng(7);
  for (size_t b = 0; b < w.size(); ++b) {
    StoreFp16(w[b].d, 0.01f * static_cast<float>(1 + b % 5));
    for (int j = 0; j < kQk; ++j) {
      w[b].qs[j] = static_cast<int8_t>(b % 3 == 0 ? (j % 2 ? -128 : 127) : int(rng() % 256) - 128);
    }
  }
  std::vector<float> x = RandomFloats(n_tokens * cols, 11);
  for (int64_t c = 0; c < 2 * kQk; ++c) x[c] = c < kQk ? 3.0f : -3.0f;  // levels 127, -127
  std::vector<float> ref(rows * n_tokens), y(rows * n_tokens);
  ASSERT_TRUE(ForceIsa(Isa::kScalar));
  MatMul(GgmlType::kQ8_0, w.data(), rows, cols, x.data(), n_tokens, ref.data(), nullptr);
  ASSERT_TRUE(ForceIsa(Isa::kAvx512));
  MatMul(GgmlType::kQ8_0, w.data(), rows, cols, x.data(), n_tokens, y.data(), nullptr);
  EXPECT_EQ(0, std::memcmp(ref.data(), y.data(), y.size() * sizeof(float)));
  // Every output against a double sum over the same quantized activations (Q8_0, as MatMul
  // quantizes them): only float rounding separates the two.
  std::vector<BlockQ8_0> xq(cols / kQk);
  std::vector<float> xd(cols);
  for (int64_t t = 0; t < n_tokens; ++t) {
    QuantizeRow(GgmlType::kQ8_0, x.data() + t * cols, xq.data(), cols);
    DequantizeRow(GgmlType::kQ8_0, xq.data(), xd.data(), cols);
    for (int64_t r = 0; r < rows; ++r) {
      double exact = 0, magnitude = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const BlockQ8_0& b = w[r * cols / kQk + c / kQk];
        const double term = static_cast<double>(LoadFp16(b.d)) * b.qs[c % kQk] * xd[c];
        exact += term;
        magnitude += std::abs(term);
      }
      EXPECT_NEAR(y[t * rows + r], exact, 1e-5 * magnitude) << "row " << r << " token " << t;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, Avx512ScalarOrderTest,
                         ::testing::Values(GgmlType::kQ8_0, GgmlType::kQ5_0, GgmlType::kIQ4_NL,
                                           GgmlType::kMXFP4, GgmlType::kQ6_K, GgmlType::kQ3_K,
                                           GgmlType::kIQ4_XS),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(TypeName(info.param));
                         });

INSTANTIATE_TEST_SUITE_P(Types, ScalarOrderTest,
                         ::testing::Values(GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ4_0,
                                           GgmlType::kQ4_1),
                         [](const ::testing::TestParamInfo<GgmlType>& info) {
                           return std::string(TypeName(info.param));
                         });

TEST(ActivationQuant, PairingFollowsGgufEngines) {
  EXPECT_EQ(MatMulActivationType(GgmlType::kQ4_0), GgmlType::kQ8_0);
  EXPECT_EQ(MatMulActivationType(GgmlType::kQ8_0), GgmlType::kQ8_0);
  EXPECT_EQ(MatMulActivationType(GgmlType::kIQ4_NL), GgmlType::kQ8_0);
  EXPECT_EQ(MatMulActivationType(GgmlType::kMXFP4), GgmlType::kQ8_0);
  EXPECT_EQ(MatMulActivationType(GgmlType::kQ4_1), GgmlType::kQ8_1);
  EXPECT_EQ(MatMulActivationType(GgmlType::kQ5_1), GgmlType::kQ8_1);
  EXPECT_EQ(MatMulActivationType(GgmlType::kQ4_K), GgmlType::kQ8_K);
  EXPECT_EQ(MatMulActivationType(GgmlType::kIQ4_XS), GgmlType::kQ8_K);
  EXPECT_EQ(MatMulActivationType(GgmlType::kF16), GgmlType::kF32);
}

class ActivationQuantIsa : public ::testing::TestWithParam<Isa> {};

TEST_P(ActivationQuantIsa, WritesTheScalarBytes) {
  {
    IsaGuard probe;
    if (!ForceIsa(GetParam())) GTEST_SKIP() << "this CPU has no " << IsaName(GetParam());
  }
  const int64_t n = 256 * 9;
  std::vector<float> x = RandomFloats(n, 77);
  x[3] = 0.5f * 127.f / 2.f;  // values landing on exact .5 after scaling exercise tie rounding
  for (int i = 256; i < 512; ++i) x[i] = 0.0f;  // an all-zero super-block
  IsaGuard guard;
  ASSERT_TRUE(ForceIsa(Isa::kScalar));
  const KernelTable& scalar = ActiveKernels();
  std::vector<uint8_t> ref0(ActivationRowBytes(GgmlType::kQ8_0, n));
  std::vector<uint8_t> ref1(ActivationRowBytes(GgmlType::kQ8_1, n));
  std::vector<BlockQ8_K> refk(n / kQkK);
  scalar.quantize_q8_0(x.data(), ref0.data(), n);
  scalar.quantize_q8_1(x.data(), ref1.data(), n);
  scalar.quantize_q8_k(x.data(), refk.data(), n);
  {
    const Isa isa = GetParam();
    ASSERT_TRUE(ForceIsa(isa));
    const KernelTable& k = ActiveKernels();
    std::vector<uint8_t> q0(ref0.size()), q1(ref1.size());
    std::vector<BlockQ8_K> qk(refk.size());
    k.quantize_q8_0(x.data(), q0.data(), n);
    k.quantize_q8_1(x.data(), q1.data(), n);
    k.quantize_q8_k(x.data(), qk.data(), n);
    EXPECT_EQ(q0, ref0) << IsaName(isa);
    EXPECT_EQ(q1, ref1) << IsaName(isa);
    EXPECT_EQ(0, std::memcmp(qk.data(), refk.data(), qk.size() * sizeof(BlockQ8_K)))
        << IsaName(isa);
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, ActivationQuantIsa, ::testing::ValuesIn(AllIsas()),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(IsaName(info.param));
                         });

TEST(ActivationQuant, Q8_0RoundsHalfToEvenWithInverseOf127OverAmax) {
  // amax = 127 makes id = 1 exactly, so x = 2.5 must become 2 (half to even), 3.5 -> 4.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = 3.5f;
  x[3] = -2.5f;
  BlockQ8_0 b;
  QuantizeActQ8_0(x.data(), &b, 32);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 2);
  EXPECT_EQ(b.qs[2], 4);
  EXPECT_EQ(b.qs[3], -2);
}

}  // namespace
}  // namespace sluice
