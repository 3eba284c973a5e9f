// Reference quantizers and decoders of the 32-element formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
// The arithmetic (which value is divided by what, truncation vs rounding) follows GGUF's reference
// quantizers so that re-quantizing a tensor reproduces a producer's bytes.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/base/check.h"
#include "core/quant/fp16.h"
#include "core/quant/quantize.h"

namespace sluice {
namespace {

// The element of largest magnitude, sign kept (first one on ties).
float SignedAbsMax(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void MinMax(const float* x, int n, float* min, float* max) {
  *min = 3.402823466e+38f;
  *max = -3.402823466e+38f;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *min) *min = x[j];
    if (x[j] > *max) *max = x[j];
  }
}

float AbsMax(const float* x, int n) {
  float amax = 0.0f;
  for (int j = 0; j < n; ++j) amax = std::fmax(amax, std::fabs(x[j]));
  return amax;
}

int64_t Blocks(int64_t n, int block) {
  CHECK_EQ(n % block, 0) << "row length must be a whole number of blocks";
  return n / block;
}

}  // namespace

void QuantizeQ4_0(const float* x, BlockQ4_0* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, x += kQk) {
    // The largest-magnitude element maps to level 0 (-8 * d), so d carries its sign.
    const float d = SignedAbsMax(x, kQk) / -8;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(y[i].d, d);
    for (int j = 0; j < kQk / 2; ++j) {
      // Truncation of (v + 8.5) is the producers' rounding; 16 clamps to 15.
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f)));
      const int hi = std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f)));
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void QuantizeQ4_1(const float* x, BlockQ4_1* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, x += kQk) {
    float min, max;
    MinMax(x, kQk, &min, &max);
    const float d = (max - min) / 15;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(y[i].d, d);
    StoreFp16(y[i].m, min);
    for (int j = 0; j < kQk / 2; ++j) {
      const int lo = std::min(15, static_cast<int>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
      const int hi =
          std::min(15, static_cast<int>(static_cast<int8_t>((x[j + 16] - min) * id + 0.5f)));
      y[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void QuantizeQ5_0(const float* x, BlockQ5_0* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, x += kQk) {
    const float d = SignedAbsMax(x, kQk) / -16;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(y[i].d, d);
    uint32_t qh = 0;
    for (int j = 0; j < kQk / 2; ++j) {
      const int lo = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
      const int hi = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 16.5f)));
      y[i].qs[j] = static_cast<uint8_t>((lo & 0xf) | ((hi & 0xf) << 4));
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void QuantizeQ5_1(const float* x, BlockQ5_1* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, x += kQk) {
    float min, max;
    MinMax(x, kQk, &min, &max);
    const float d = (max - min) / 31;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(y[i].d, d);
    StoreFp16(y[i].m, min);
    uint32_t qh = 0;
    for (int j = 0; j < kQk / 2; ++j) {
      const int lo = static_cast<uint8_t>((x[j] - min) * id + 0.5f);
      const int hi = static_cast<uint8_t>((x[j + 16] - min) * id + 0.5f);
      y[i].qs[j] = static_cast<uint8_t>((lo & 0xf) | ((hi & 0xf) << 4));
      qh |= static_cast<uint32_t>((lo >> 4) & 1) << j;
      qh |= static_cast<uint32_t>((hi >> 4) & 1) << (j + 16);
    }
    std::memcpy(y[i].qh, &qh, sizeof(qh));
  }
}

void QuantizeQ8_0(const float* x, BlockQ8_0* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, x += kQk) {
    const float d = AbsMax(x, kQk) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(y[i].d, d);
    for (int j = 0; j < kQk; ++j) y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

void QuantizeQ8_1(const float* x, BlockQ8_1* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, x += kQk) {
    const float d = AbsMax(x, kQk) / 127;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    StoreFp16(y[i].d, d);
    int sum = 0;
    for (int j = 0; j < kQk; ++j) {
      y[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
      sum += y[i].qs[j];
    }
    StoreFp16(y[i].s, static_cast<float>(sum) * d);
  }
}

void DequantizeQ4_0(const BlockQ4_0* x, float* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, y += kQk) {
    const float d = LoadFp16(x[i].d);
    for (int j = 0; j < kQk / 2; ++j) {
      y[j] = static_cast<float>((x[i].qs[j] & 0xf) - 8) * d;
      y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void DequantizeQ4_1(const BlockQ4_1* x, float* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, y += kQk) {
    const float d = LoadFp16(x[i].d);
    const float m = LoadFp16(x[i].m);
    for (int j = 0; j < kQk / 2; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0xf) * d + m;
      y[j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

void DequantizeQ5_0(const BlockQ5_0* x, float* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, y += kQk) {
    const float d = LoadFp16(x[i].d);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQk / 2; ++j) {
      const int lo = (x[i].qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

void DequantizeQ5_1(const BlockQ5_1* x, float* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, y += kQk) {
    const float d = LoadFp16(x[i].d);
    const float m = LoadFp16(x[i].m);
    uint32_t qh;
    std::memcpy(&qh, x[i].qh, sizeof(qh));
    for (int j = 0; j < kQk / 2; ++j) {
      const int lo = (x[i].qs[j] & 0xf) | static_cast<int>(((qh >> j) & 1) << 4);
      const int hi = (x[i].qs[j] >> 4) | static_cast<int>(((qh >> (j + 16)) & 1) << 4);
      y[j] = static_cast<float>(lo) * d + m;
      y[j + 16] = static_cast<float>(hi) * d + m;
    }
  }
}

void DequantizeQ8_0(const BlockQ8_0* x, float* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, y += kQk) {
    const float d = LoadFp16(x[i].d);
    for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

void DequantizeQ8_1(const BlockQ8_1* x, float* y, int64_t n) {
  const int64_t nb = Blocks(n, kQk);
  for (int64_t i = 0; i < nb; ++i, y += kQk) {
    const float d = LoadFp16(x[i].d);
    for (int j = 0; j < kQk; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
  }
}

}  // namespace sluice
