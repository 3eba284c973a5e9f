// Scalar conversions between f32 and the 16-bit float formats GGUF stores (IEEE f16, bf16) and
// the E8M0 exponent byte of MXFP4, bit-exact with what GGUF producers write.
//
// Non-goals: vector conversions (the ISA kernels use F16C / AVX-512 instructions, which round the
// same way: to nearest, ties to even).
// Thread-safety: pure functions.
//
// Every helper here has internal linkage (`static inline`) on purpose: this header is included by
// the per-ISA translation units (*_avx2.cc, *_avx512.cc). An ordinary inline function would be
// emitted once per TU as a COMDAT and the linker could keep the copy compiled with AVX-512 for the
// whole binary, which then faults on older CPUs.
#pragma once

#include <cstdint>
#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "GGUF blocks are little-endian");

namespace sluice {

static inline uint32_t F32Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

static inline float F32FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

// Exact: every f16 value is representable in f32.
static inline float Fp16ToFp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return F32FromBits(sign | 0x7f800000u | (mantissa << 13));  // inf, NaN
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in f32.
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return F32FromBits(sign | F32Bits(magnitude));
  }
  return F32FromBits(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

// Round to nearest, ties to even (what F16C's vcvtps2ph with imm 0 and GGUF writers do).
static inline uint16_t Fp32ToFp16(float f) {
  const uint32_t x = F32Bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t magnitude = x & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {  // NaN: keep it quiet and keep the top payload bits
    return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  }
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: inf
  if (magnitude < 0x38800000u) {
    // Below 2^-14 the result is subnormal: adding 0.5 puts the f16 subnormal unit (2^-24) at the
    // f32 ulp of 0.5, so the FPU does the round-to-nearest-even for us.
    const float shifted = F32FromBits(magnitude) + 0.5f;
    return static_cast<uint16_t>(sign | (F32Bits(shifted) - 0x3f000000u));
  }
  const uint32_t odd = (magnitude >> 13) & 1u;
  magnitude += 0xc8000fffu + odd;  // re-bias the exponent (-112 << 23) and round half to even
  return static_cast<uint16_t>(sign | (magnitude >> 13));
}

static inline float Bf16ToFp32(uint16_t h) { return F32FromBits(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; NaNs stay NaN (quiet bit forced), as GGUF's converter does.
static inline uint16_t Fp32ToBf16(float f) {
  const uint32_t x = F32Bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 64u);
  return static_cast<uint16_t>((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

// MXFP4's shared scale byte e is the exponent of 2^(e-127). The block stores values doubled
// (kMxfp4Values holds 2x the E2M1 magnitudes), so the factor applied to them is 2^(e-128).
static inline float E8m0ToFp32Half(uint8_t e) {
  // e < 2 gives subnormal f32 results (2^-128 and 2^-127): build their bits directly.
  const uint32_t bits = e < 2 ? (0x00200000u << e) : (static_cast<uint32_t>(e) - 1u) << 23;
  return F32FromBits(bits);
}

// Reads an unaligned little-endian f16 field of a block (weights may sit at any byte offset).
static inline float LoadFp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof(h));
  return Fp16ToFp32(h);
}

static inline void StoreFp16(uint8_t* p, float f) {
  const uint16_t h = Fp32ToFp16(f);
  std::memcpy(p, &h, sizeof(h));
}

}  // namespace sluice
