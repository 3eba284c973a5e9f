// Byte-level compatibility with an outside GGUF implementation, on the tiny models in
// ../shared/refdata (their quantized tensors were written by llama.cpp's tools):
//  - the quantized files and the F32 files hold the same weights (checked first: identical F32
//    norm tensors, same names and shapes), so each quantized tensor can be compared with the
//    unquantized original;
//  - DequantizeRow reproduces the original within the format's element bound, and agrees bit for
//    bit with an independent decoder written here from the documented layout;
//  - QuantizeRow on the original reproduces the file's bytes (the producers' rounding).
// The GGUF parsing below is the minimum these checks need (the real reader is io/gguf_reader.h,
// which kernel tests do not link).
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

namespace sluice {
namespace {

struct Tensor {
  GgmlType type;
  std::vector<int64_t> dims;  // ne[0] (row length) first
  const uint8_t* data;
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  }
};

class MiniGguf {
 public:
  bool Load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return false;
    bytes_.assign(std::istreambuf_iterator<char>(f), {});
    pos_ = 0;
    if (Read<uint32_t>() != 0x46554747u) return false;  // "GGUF"
    if (Read<uint32_t>() != 3) return false;
    const uint64_t n_tensors = Read<uint64_t>();
    const uint64_t n_kv = Read<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv; ++i) {
      const std::string key = ReadString();
      const uint32_t type = Read<uint32_t>();
      if (key == "general.alignment" && type == 4) {
        alignment = Read<uint32_t>();
      } else {
        SkipValue(type);
      }
    }
    struct Info {
      std::string name;
      Tensor t;
      uint64_t offset;
    };
    std::vector<Info> infos;
    for (uint64_t i = 0; i < n_tensors; ++i) {
      Info info;
      info.name = ReadString();
      const uint32_t n_dims = Read<uint32_t>();
      for (uint32_t d = 0; d < n_dims; ++d)
        info.t.dims.push_back(static_cast<int64_t>(Read<uint64_t>()));
      info.t.type = static_cast<GgmlType>(Read<uint32_t>());
      info.offset = Read<uint64_t>();
      infos.push_back(info);
    }
    const uint64_t data_start = (pos_ + alignment - 1) / alignment * alignment;
    for (Info& info : infos) {
      info.t.data = bytes_.data() + data_start + info.offset;
      tensors_[info.name] = info.t;
    }
    return pos_ <= bytes_.size();
  }

  const std::map<std::string, Tensor>& tensors() const { return tensors_; }

 private:
  template <typename T>
  T Read() {
    T v{};
    if (pos_ + sizeof(T) <= bytes_.size()) std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string ReadString() {
    const uint64_t n = Read<uint64_t>();
    std::string s;
    if (pos_ + n <= bytes_.size()) s.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  void SkipValue(uint32_t type) {
    static const int kSizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) {
      ReadString();
    } else if (type == 9) {
      const uint32_t elem = Read<uint32_t>();
      const uint64_t n = Read<uint64_t>();
      for (uint64_t i = 0; i < n; ++i) SkipValue(elem);
    } else if (type < 13) {
      pos_ += kSizes[type];
    }
  }

  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
  std::map<std::string, Tensor> tensors_;
};

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
