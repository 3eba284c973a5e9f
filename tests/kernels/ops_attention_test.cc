// Causal GQA attention over f32 and f16 KV caches against a double-precision reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "core/kernels/dispatch.h"
#include "core/ops/attention.h"
#include "core/ops/attention_simd.h"
#include "core/quant/fp16.h"

namespace sluice {
namespace {

struct Case {
  AttentionShape shape;
  int64_t n_kv;
};

// Reference on the values the cache actually holds (f16-rounded for an f16 cache).
std::vector<double> Reference(const AttentionShape& s, const std::vector<float>& q,
                              const std::vector<float>& k, const std::vector<float>& v,
                              int64_t n_kv, double scale) {
  std::vector<double> out(size_t(s.n_head) * s.head_dim_v, 0.0);
  const int group = s.n_head / s.n_head_kv;
  for (int h = 0; h < s.n_head; ++h) {
    const int g = h / group;
    std::vector<double> w(n_kv);
    double mx = -1e300;
    for (int64_t p = 0; p < n_kv; ++p) {
      double d = 0;
      for (int i = 0; i < s.head_dim_k; ++i) {
        d += double(q[h * s.head_dim_k + i]) * k[(p * s.n_head_kv + g) * s.head_dim_k + i];
      }
      w[p] = d * scale;
      mx = std::max(mx, w[p]);
    }
    double sum = 0;
    for (double& x : w) sum += x = std::exp(x - mx);
    for (int64_t p = 0; p < n_kv; ++p) {
      for (int i = 0; i < s.head_dim_v; ++i) {
        out[h * s.head_dim_v + i] += w[p] / sum * v[(p * s.n_head_kv + g) * s.head_dim_v + i];
      }
    }
  }
  return out;
}

void RunCase(const Case& c, KvType type) {
  const AttentionShape& s = c.shape;
  std::mt19937 rng(s.n_head * 131 + c.n_kv);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  auto fill = [&](int64_t n) {
    std::vector<float> x(n);
    for (float& e : x) e = dist(rng);
    return x;
  };
  std::vector<float> q = fill(int64_t(s.n_head) * s.head_dim_k);
  std::vector<float> k = fill(c.n_kv * s.n_head_kv * s.head_dim_k);
  std::vector<float> v = fill(c.n_kv * s.n_head_kv * s.head_dim_v);
  // Store into the cache representation, and read back what it holds for the reference.
  std::vector<uint8_t> kc(k.size() * KvTypeBytes(type)), vc(v.size() * KvTypeBytes(type));
  StoreKv(k.data(), type, kc.data(), k.size());
  StoreKv(v.data(), type, vc.data(), v.size());
  LoadKv(kc.data(), type, k.data(), k.size());
  LoadKv(vc.data(), type, v.data(), v.size());
  const float scale = 1.0f / std::sqrt(float(s.head_dim_k));
  std::vector<float> scores(s.n_head * c.n_kv), out(s.n_head * s.head_dim_v);
  Attention(s, q.data(), KvView{kc.data(), vc.data(), type}, c.n_kv, scale, scores.data(),
            out.data(), nullptr);
  std::vector<double> ref = Reference(s, q, k, v, c.n_kv, scale);
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_NEAR(out[i], ref[i], 2e-5) << KvTypeName(type) << " heads " << s.n_head << "/"
                                      << s.n_head_kv << " n_kv " << c.n_kv << " i " << i;
  }
}

void RunAllCases() {
  const Case cases[] = {
      {{4, 2, 16, 16}, 1},     {{4, 2, 16, 16}, 33}, {{8, 1, 32, 24}, 7},
      {{4, 4, 128, 128}, 200}, {{6, 3, 17, 5}, 64},
  };
  for (const Case& c : cases) {
    RunCase(c, KvType::kF32);
    RunCase(c, KvType::kF16);
  }
}

// Every compiled path the CPU supports (the AVX2 loops are used whenever the kernels' ISA is not
// scalar), against the same double reference.
class OpsAttentionIsa : public ::testing::TestWithParam<Isa> {};

TEST_P(OpsAttentionIsa, GqaMatchesDoubleReference) {
  const Isa before = ActiveIsa();
  if (!ForceIsa(GetParam())) GTEST_SKIP() << "this CPU has no " << IsaName(GetParam());
  RunAllCases();
  ForceIsa(before);
}

INSTANTIATE_TEST_SUITE_P(Isas, OpsAttentionIsa, ::testing::Values(Isa::kScalar, Isa::kAvx2),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(IsaName(info.param));
                         });

TEST(OpsAttention, F16StoreRoundsToNearestHalf) {
  const float src[4] = {1.0f, 1.0f / 3.0f, -65504.0f, 1e-8f};
  uint16_t dst[4];
  StoreKv(src, KvType::kF16, dst, 4);
  EXPECT_EQ(dst[0], 0x3c00);
  EXPECT_EQ(dst[1], 0x3555);  // 1/3 = 0x3555 (0.333251953), nearest half
  EXPECT_EQ(dst[2], 0xfbff);
  EXPECT_EQ(dst[3], 0x0000);
}

TEST(OpsAttention, SinglePositionReturnsItsValue) {
  // With one cached position the softmax weight is exactly 1: out = v of the head's group.
  AttentionShape s{4, 2, 8, 8};
  std::vector<float> q(32, 0.5f), k(16, 0.25f), v(16);
  for (int i = 0; i < 16; ++i) v[i] = float(i);
  std::vector<float> scores(4), out(32);
  Attention(s, q.data(), KvView{k.data(), v.data(), KvType::kF32}, 1, 0.1f, scores.data(),
            out.data(), nullptr);
  for (int h = 0; h < 4; ++h) {
    for (int i = 0; i < 8; ++i) EXPECT_EQ(out[h * 8 + i], v[(h / 2) * 8 + i]);
  }
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// The group kernels (several query heads over one kv head) must give, per head, the bits of the
// one-row kernels they replace: dot_f16 per head, and axpy_f16 over the positions in order.
TEST(OpsAttentionGroup, GroupKernelsGiveTheOneRowBits) {
  std::vector<const attention_simd::Kernels*> all = {&attention_simd::ScalarKernels()};
#if defined(__x86_64__)
  if (IsaSupported(Isa::kAvx2)) all.push_back(&attention_simd::Avx2Kernels());
  // The AVX-512 twins keep the AVX2 ones' partial sums in the halves of a zmm: their single-row
  // dot must give the AVX2 bits too (the group functions are held to it below).
  if (IsaSupported(Isa::kAvx512)) {
    all.push_back(&attention_simd::Avx512Kernels());
    std::mt19937 r(5);
    std::normal_distribution<float> d(0.0f, 1.0f);
    for (int n : {8, 24, 64, 72, 100, 128}) {
      std::vector<float> q(n);
      std::vector<uint16_t> k(n);
      for (float& x : q) x = d(r);
      for (uint16_t& x : k) x = Fp32ToFp16(d(r));
      const float a = attention_simd::Avx2Kernels().dot_f16(q.data(), k.data(), n);
      const float b = attention_simd::Avx512Kernels().dot_f16(q.data(), k.data(), n);
      EXPECT_EQ(0, std::memcmp(&a, &b, sizeof(float))) << "n " << n;
    }
  }
#endif
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (const attention_simd::Kernels* kern : all) {
    for (int n : {8, 64, 72, 100, 128}) {
      for (int64_t n_kv : {1, 7, 300}) {
        const int max_heads = 8;
        const int64_t row = 3 * n + 5;  // rows of a wider cache: other kv heads in between
        std::vector<float> q(max_heads * n), w(max_heads * n_kv);
        std::vector<uint16_t> kv(n_kv * row);
        for (float& x : q) x = dist(rng);
        for (float& x : w) x = dist(rng);
        for (uint16_t& x : kv) x = Fp32ToFp16(dist(rng));
        for (int heads = 1; heads <= max_heads; ++heads) {
          std::vector<float> dots(heads), ref_dots(heads);
          kern->dot_f16_heads(q.data(), n, heads, kv.data() + 2, n, dots.data());
          for (int h = 0; h < heads; ++h)
            ref_dots[h] = kern->dot_f16(q.data() + h * n, kv.data() + 2, n);
          ASSERT_EQ(0, std::memcmp(dots.data(), ref_dots.data(), heads * sizeof(float)))
              << "dot, heads " << heads << " n " << n;
          std::vector<float> out(heads * n, 7.0f), ref(heads * n, 0.0f);
          kern->weighted_sum_f16(w.data(), n_kv, heads, kv.data() + 1, row, n_kv, out.data(), n, n);
          for (int h = 0; h < heads; ++h) {
            for (int64_t p = 0; p < n_kv; ++p) {
              kern->axpy_f16(w[h * n_kv + p], kv.data() + 1 + p * row, ref.data() + h * n, n);
            }
          }
          ASSERT_EQ(0, std::memcmp(out.data(), ref.data(), out.size() * sizeof(float)))
              << "weighted sum, heads " << heads << " n " << n << " n_kv " << n_kv;
        }
      }
    }
  }
}

}  // namespace
}  // namespace sluice
