// Byte-level compatibility with an outside GGUF implementation, on the tiny models in
// ../shared/refdata (their quantized tensors were written by llama.cpp's tools):
//  - the quantized files and the F32 files hold the same weights (checked first: identical F32
//    norm tensors, same names and shapes), so each quantized tensor can be compared with the
//    unquantized original;
//  - DequantizeRow reproduces the original within the format's element bound, and agrees bit for
//    bit with an independent decoder written here from the documented layout;
//  - QuantizeRow on the original reproduces the file's bytes (the producers' rounding).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/kernels/matmul.h"
#include "core/quant/blocks.h"
#include "core/quant/fp16.h"
#include "tests/kernels/mini_gguf.h"

namespace sluice {
namespace {

using testing::MiniGguf;
using testing::Tensor;

std::string RefPath(const std::string& file) {
  return std::string(SLUICE_REFDATA_DIR) + "/" + file;
}

// An independent decoder: element by element straight from the layout description (no shared
// code with core/quant), double arithmetic then rounded to float where GGUF rounds.
float DecodeElement(GgmlType type, const uint8_t* row, int64_t e) {
  auto f16 = [](const uint8_t* p) {
    const int h = p[0] | (p[1] << 8);
    const int exponent = (h >> 10) & 31, mantissa = h & 1023;
    double v =
        exponent == 0 ? std::ldexp(mantissa, -24) : std::ldexp(1024 + mantissa, exponent - 25);
    return static_cast<float>((h & 0x8000) ? -v : v);
  };
  if (type == GgmlType::kQ8_0) {
    const uint8_t* b = row + (e / 32) * 34;
    return static_cast<float>(static_cast<int8_t>(b[2 + e % 32])) * f16(b);
  }
  if (type == GgmlType::kQ4_0) {
    const uint8_t* b = row + (e / 32) * 18;
    const int j = e % 32;
    const int q = j < 16 ? (b[2 + j] & 15) : (b[2 + j - 16] >> 4);
    return static_cast<float>(q - 8) * f16(b);
  }
  // Q4_K
  const uint8_t* b = row + (e / 256) * 144;
  const int i = e % 256, g = i / 32;
  const uint8_t* s = b + 4;
  const int sc = g < 4 ? s[g] & 63 : (s[g + 4] & 15) | ((s[g - 4] >> 6) << 4);
  const int mn = g < 4 ? s[g + 4] & 63 : (s[g + 4] >> 4) | ((s[g] >> 6) << 4);
  const int byte = 32 * (i / 64) + i % 32;
  const int q = (i % 64) < 32 ? (b[16 + byte] & 15) : (b[16 + byte] >> 4);
  const float d1 = f16(b) * static_cast<float>(sc);
  const float m1 = f16(b + 2) * static_cast<float>(mn);
  return d1 * static_cast<float>(q) - m1;
}

struct Pair {
  const char* quantized;
  const char* original;
  GgmlType type;
  double element_bound;  // |deq - original| <= bound * amax(block)
};

class GgufCompat : public ::testing::TestWithParam<Pair> {};

TEST_P(GgufCompat, QuantizedTensorsMatchTheOriginals) {
  const Pair& p = GetParam();
  MiniGguf quantized, original;
  if (!quantized.Load(RefPath(p.quantized)) || !original.Load(RefPath(p.original))) {
    GTEST_SKIP() << "reference data not found in " << SLUICE_REFDATA_DIR;
  }
  // The assumption behind the comparison: same seed, so the never-quantized F32 tensors (norms,
  // router) are identical and every tensor has the same shape.
  ASSERT_EQ(quantized.tensors().size(), original.tensors().size());
  int same_f32 = 0, checked = 0;
  for (const auto& [name, q] : quantized.tensors()) {
    ASSERT_TRUE(original.tensors().count(name)) << name;
    const Tensor& o = original.tensors().at(name);
    ASSERT_EQ(q.dims, o.dims) << name;
    ASSERT_EQ(o.type, GgmlType::kF32) << name;
    const int64_t n = q.elements();
    if (q.type == GgmlType::kF32) {
      ASSERT_EQ(0, std::memcmp(q.data, o.data, n * 4)) << name << " differs: not the same seed";
      ++same_f32;
      continue;
    }
    ASSERT_EQ(q.type, p.type) << name;
    const int64_t cols = q.dims[0];
    const int64_t rows = n / cols;
    const uint64_t row_bytes = RowBytes(q.type, cols);
    std::vector<float> deq(cols), orig(cols);
    std::vector<uint8_t> requant(row_bytes);
    int64_t bytes_equal_rows = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* qrow = q.data + r * row_bytes;
      std::memcpy(orig.data(), o.data + r * cols * 4, cols * 4);
      DequantizeRow(q.type, qrow, deq.data(), cols);
      const int64_t block = TypeTraits(q.type).block_elements;
      for (int64_t b = 0; b < cols / block; ++b) {
        float amax = 0;
        for (int64_t j = b * block; j < (b + 1) * block; ++j)
          amax = std::max(amax, std::fabs(orig[j]));
        for (int64_t j = b * block; j < (b + 1) * block; ++j) {
          ASSERT_LE(std::fabs(deq[j] - orig[j]), p.element_bound * amax)
              << name << " row " << r << " element " << j;
          ASSERT_EQ(deq[j], DecodeElement(q.type, qrow, j)) << name << " row " << r << " el " << j;
        }
      }
      QuantizeRow(q.type, orig.data(), requant.data(), cols);
      bytes_equal_rows += std::memcmp(requant.data(), qrow, row_bytes) == 0;
    }
    EXPECT_EQ(bytes_equal_rows, rows) << name << ": re-quantizing the F32 original did not "
                                      << "reproduce the producer's bytes";
    ++checked;
  }
  EXPECT_GT(same_f32, 0);
  EXPECT_GT(checked, 0);
  printf("%s: %d quantized tensors byte-identical after re-quantization, %d F32 identical\n",
         p.quantized, checked, same_f32);
}

INSTANTIATE_TEST_SUITE_P(
    TinyModels, GgufCompat,
    ::testing::Values(Pair{"tiny-qwen3moe-q8_0.gguf", "tiny-qwen3moe-f32.gguf", GgmlType::kQ8_0,
                           0.505 / 127 + 1.0 / 2048},
                      Pair{"tiny-qwen3moe-q4_0-pure.gguf", "tiny-qwen3moe-f32.gguf",
                           GgmlType::kQ4_0, 1.01 / 8},
                      Pair{"tiny-qwen3moe256-q4_k-pure.gguf", "tiny-qwen3moe256-f32.gguf",
                           GgmlType::kQ4_K, 0.25}),
    [](const ::testing::TestParamInfo<Pair>& info) {
      return std::string(TypeName(info.param.type));
    });

}  // namespace
}  // namespace sluice
