// Decoders of the grid formats (layouts in core/quant/blocks.h, tables in iq_grids.h): to integer
// levels (grid_levels.h) and to f32 with the operation order of GGUF's reference decoders, so a
// dequantized tensor is bit-identical to theirs (tested against an outside decoder's output).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>

#include "core/base/check.h"
#include "core/quant/fp16.h"
#include "core/quant/grid_levels.h"
#include "core/quant/iq_grids.h"
#include "core/quant/quantize.h"

namespace sluice {
namespace {

uint32_t LoadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

uint16_t LoadU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

// Sub-group k (8 weights) = 8 magnitude bytes of `grid` signed by the full sign byte `signs`.
void PutSigned(uint64_t grid, uint8_t signs, int8_t* level) {
  for (int j = 0; j < 8; ++j) {
    const int m = static_cast<int>((grid >> (8 * j)) & 0xff);
    level[j] = static_cast<int8_t>((signs >> j) & 1 ? -m : m);
  }
}

// Two 4-magnitude entries make one sub-group (IQ3 formats).
uint64_t Join4(uint32_t lo, uint32_t hi) { return lo | (static_cast<uint64_t>(hi) << 32); }

// Sub-group of IQ1_S / IQ1_M: 8 grid values in {-1, 0, 1} shifted by -1/8 or +1/8, times 8.
void PutShifted(uint64_t grid, bool minus, int8_t* level) {
  for (int j = 0; j < 8; ++j) {
    const int v = static_cast<int8_t>((grid >> (8 * j)) & 0xff);
    level[j] = static_cast<int8_t>(8 * v + (minus ? -1 : 1));
  }
}

// IQ2_XS / IQ2_S scales: nibble h of byte g is the scale of weights [32g + 16h, +16).
void NibbleScales(const uint8_t* scales, GridLevels* out) {
  for (int g = 0; g < 8; ++g) {
    out->scale[2 * g] = static_cast<uint8_t>(2 * (scales[g] & 0xf) + 1);
    out->scale[2 * g + 1] = static_cast<uint8_t>(2 * (scales[g] >> 4) + 1);
  }
}

// GGUF's group factors, in its operation order. `scale` is the odd integer 2s + 1.
float HalfPlus(int scale) { return 0.5f + static_cast<float>((scale - 1) / 2); }
float Iq2Factor(float d, int scale) { return d * HalfPlus(scale) * 0.25f; }
float Iq3XxsFactor(float d, int scale) { return d * HalfPlus(scale) * 0.5f; }
float OddFactor(float d, int scale) { return d * static_cast<float>(scale); }

// y = factor(d, scale) * level, or for the shifted (IQ1) formats factor * (level / 8), which is
// GGUF's dl * (grid value + delta) exactly.
template <typename Block>
void Dequantize(const Block* x, float* y, int64_t n, float (*factor)(float, int), bool shifted) {
  GridLevels dec;
  for (int64_t i = 0; i < n / kQkK; ++i) {
    DecodeGridLevels(x[i], &dec);
    for (int h = 0; h < kQkK / 16; ++h) {
      const float f = factor(dec.d, dec.scale[h]);
      for (int j = 0; j < 16; ++j) {
        const int e = 16 * h + j;
        const float v = static_cast<float>(dec.level[e]);
        y[kQkK * i + e] = shifted ? f * (v * 0.125f) : f * v;
      }
    }
  }
}

// splitmix64: a fast, well-mixed stream for random block bytes.
uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Where a block keeps its f16 d: bytes 0..1, except IQ1_M (top nibbles of its 4 scale words).
void StoreD(GgmlType type, uint8_t* block, uint16_t d16) {
  if (type != GgmlType::kIQ1_M) {
    block[0] = static_cast<uint8_t>(d16 & 0xff);
    block[1] = static_cast<uint8_t>(d16 >> 8);
    return;
  }
  uint8_t* scales = block + offsetof(BlockIq1M, scales);
  for (int k = 0; k < 4; ++k) {
    scales[2 * k + 1] =
        static_cast<uint8_t>((scales[2 * k + 1] & 0x0f) | (((d16 >> (4 * k)) & 0xf) << 4));
  }
}

template <typename Block>
double SumSquares(const uint8_t* block) {
  Block b;
  std::memcpy(&b, block, sizeof(b));
  GridLevels g;
  DecodeGridLevels(b, &g);
  double s = 0;
  for (int e = 0; e < kQkK; ++e) {
    const double v = static_cast<double>(g.kernel_d) * g.scale[e / 16] * g.level[e];
    s += v * v;
  }
  return s;
}

double BlockSumSquares(GgmlType type, const uint8_t* block) {
  switch (type) {
    case GgmlType::kIQ2_XXS:
      return SumSquares<BlockIq2Xxs>(block);
    case GgmlType::kIQ2_XS:
      return SumSquares<BlockIq2Xs>(block);
    case GgmlType::kIQ2_S:
      return SumSquares<BlockIq2S>(block);
    case GgmlType::kIQ3_XXS:
      return SumSquares<BlockIq3Xxs>(block);
    case GgmlType::kIQ3_S:
      return SumSquares<BlockIq3S>(block);
    case GgmlType::kIQ1_S:
      return SumSquares<BlockIq1S>(block);
    case GgmlType::kIQ1_M:
      return SumSquares<BlockIq1M>(block);
    default:
      CHECK(false) << TypeName(type) << " is not a grid type";
      return 0;
  }
}

}  // namespace

bool IsGridType(GgmlType type) {
  switch (type) {
    case GgmlType::kIQ2_XXS:
    case GgmlType::kIQ2_XS:
    case GgmlType::kIQ2_S:
    case GgmlType::kIQ3_XXS:
    case GgmlType::kIQ3_S:
    case GgmlType::kIQ1_S:
    case GgmlType::kIQ1_M:
      return true;
    default:
      return false;
  }
}

void RandomGridBlocks(GgmlType type, uint64_t seed, float rms, int64_t n_blocks, void* dst) {
  CHECK(IsGridType(type)) << TypeName(type) << " is not a grid type";
  const int block_bytes = TypeTraits(type).block_bytes;
  uint64_t state = seed;
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n_blocks; ++i) {
    uint8_t* block = out + i * block_bytes;
    for (int k = 0; k < block_bytes; k += 8) {
      const uint64_t r = NextRandom(&state);
      std::memcpy(block + k, &r, std::min(8, block_bytes - k));
    }
    StoreD(type, block, Fp32ToFp16(1.0f));
    const double ss = BlockSumSquares(type, block);
    const double d = ss > 0 ? rms * std::sqrt(kQkK / ss) : 0.0;
    StoreD(type, block, Fp32ToFp16(static_cast<float>(d)));
  }
}

void DecodeGridLevels(const BlockIq2Xxs& b, GridLevels* out) {
  out->d = LoadFp16(b.d);
  out->kernel_d = out->d * 0.125f;
  for (int g = 0; g < 8; ++g) {
    const uint8_t* idx = b.qs + 8 * g;
    const uint32_t s = LoadU32(idx + 4);
    for (int l = 0; l < 4; ++l) {
      PutSigned(kIq2XxsGrid[idx[l]], IqSignByte((s >> (7 * l)) & 127), out->level + 32 * g + 8 * l);
    }
    out->scale[2 * g] = out->scale[2 * g + 1] = static_cast<uint8_t>(2 * (s >> 28) + 1);
  }
}

void DecodeGridLevels(const BlockIq2Xs& b, GridLevels* out) {
  out->d = LoadFp16(b.d);
  out->kernel_d = out->d * 0.125f;
  for (int k = 0; k < 32; ++k) {
    const uint16_t v = LoadU16(b.qs + 2 * k);
    PutSigned(kIq2XsGrid[v & 511], IqSignByte(v >> 9), out->level + 8 * k);
  }
  NibbleScales(b.scales, out);
}

void DecodeGridLevels(const BlockIq2S& b, GridLevels* out) {
  out->d = LoadFp16(b.d);
  out->kernel_d = out->d * 0.125f;
  for (int k = 0; k < 32; ++k) {
    const int index = b.qs[k] | (((b.qh[k / 4] >> (2 * (k % 4))) & 3) << 8);
    PutSigned(kIq2SGrid[index], b.qs[32 + k], out->level + 8 * k);
  }
  NibbleScales(b.scales, out);
}

void DecodeGridLevels(const BlockIq3Xxs& b, GridLevels* out) {
  out->d = LoadFp16(b.d);
  out->kernel_d = out->d * 0.25f;
  for (int g = 0; g < 8; ++g) {
    const uint32_t s = LoadU32(b.qs + 64 + 4 * g);
    for (int l = 0; l < 4; ++l) {
      const int k = 4 * g + l;
      PutSigned(Join4(kIq3XxsGrid[b.qs[2 * k]], kIq3XxsGrid[b.qs[2 * k + 1]]),
                IqSignByte((s >> (7 * l)) & 127), out->level + 8 * k);
    }
    out->scale[2 * g] = out->scale[2 * g + 1] = static_cast<uint8_t>(2 * (s >> 28) + 1);
  }
}

void DecodeGridLevels(const BlockIq3S& b, GridLevels* out) {
  out->d = LoadFp16(b.d);
  out->kernel_d = out->d;
  auto index = [&](int i) { return b.qs[i] | (((b.qh[i / 8] >> (i % 8)) & 1) << 8); };
  for (int k = 0; k < 32; ++k) {
    PutSigned(Join4(kIq3SGrid[index(2 * k)], kIq3SGrid[index(2 * k + 1)]), b.signs[k],
              out->level + 8 * k);
  }
  for (int g = 0; g < 8; ++g) {
    const int nibble = (b.scales[g / 2] >> (4 * (g % 2))) & 0xf;
    out->scale[2 * g] = out->scale[2 * g + 1] = static_cast<uint8_t>(2 * nibble + 1);
  }
}

void DecodeGridLevels(const BlockIq1S& b, GridLevels* out) {
  out->d = LoadFp16(b.d);
  out->kernel_d = out->d * 0.125f;
  for (int g = 0; g < 8; ++g) {
    const uint16_t qh = LoadU16(b.qh + 2 * g);
    for (int l = 0; l < 4; ++l) {
      const int index = b.qs[4 * g + l] | (((qh >> (3 * l)) & 7) << 8);
      PutShifted(kIq1SGrid[index], (qh & 0x8000) != 0, out->level + 32 * g + 8 * l);
    }
    out->scale[2 * g] = out->scale[2 * g + 1] = static_cast<uint8_t>(2 * ((qh >> 12) & 7) + 1);
  }
}

void DecodeGridLevels(const BlockIq1M& b, GridLevels* out) {
  uint16_t sc[4];
  for (int k = 0; k < 4; ++k) sc[k] = LoadU16(b.scales + 2 * k);
  const uint16_t d16 = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                             ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
  uint8_t d_bytes[2] = {static_cast<uint8_t>(d16 & 0xff), static_cast<uint8_t>(d16 >> 8)};
  out->d = LoadFp16(d_bytes);
  out->kernel_d = out->d * 0.125f;
  for (int k = 0; k < 32; ++k) {
    const int nibble = (b.qh[k / 2] >> (4 * (k % 2))) & 0xf;
    PutShifted(kIq1SGrid[b.qs[k] | ((nibble & 7) << 8)], (nibble & 8) != 0, out->level + 8 * k);
  }
  for (int h = 0; h < 16; ++h) {
    out->scale[h] = static_cast<uint8_t>(2 * ((sc[h / 4] >> (3 * (h % 4))) & 7) + 1);
  }
}

void DequantizeIq2Xxs(const BlockIq2Xxs* x, float* y, int64_t n) {
  Dequantize(x, y, n, Iq2Factor, false);
}
void DequantizeIq2Xs(const BlockIq2Xs* x, float* y, int64_t n) {
  Dequantize(x, y, n, Iq2Factor, false);
}
void DequantizeIq2S(const BlockIq2S* x, float* y, int64_t n) {
  Dequantize(x, y, n, Iq2Factor, false);
}
void DequantizeIq3Xxs(const BlockIq3Xxs* x, float* y, int64_t n) {
  Dequantize(x, y, n, Iq3XxsFactor, false);
}
void DequantizeIq3S(const BlockIq3S* x, float* y, int64_t n) {
  Dequantize(x, y, n, OddFactor, false);
}
void DequantizeIq1S(const BlockIq1S* x, float* y, int64_t n) {
  Dequantize(x, y, n, OddFactor, true);
}
void DequantizeIq1M(const BlockIq1M* x, float* y, int64_t n) {
  Dequantize(x, y, n, OddFactor, true);
}

}  // namespace sluice
