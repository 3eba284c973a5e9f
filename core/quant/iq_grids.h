// The lookup tables of the grid ("i-quant") formats (defined in iq1_grids.cc, iq2_grids.cc,
// iq3_grids.cc): each entry is a group of 8 (or 4)
// magnitudes packed into bytes, element j in byte j. They are fixed constants of the GGUF formats
// (chosen once by the formats' authors from lattice points that fit weight distributions), so a
// file is decoded exactly when these are exactly GGUF's; tests check decoded tensors against an
// outside decoder bit for bit.
//
// Included by the per-ISA translation units: data and constexpr helpers only.
// Thread-safety: immutable data.
#pragma once

#include <cstdint>

namespace sluice {

extern const uint64_t kIq2XxsGrid[256];  // bytes in {8, 25, 43}
extern const uint64_t kIq2XsGrid[512];   // bytes in {8, 25, 43}
extern const uint64_t kIq2SGrid[1024];   // bytes in {8, 25, 43}
extern const uint32_t kIq3XxsGrid[256];  // bytes in {4, 12, ..., 62}
extern const uint32_t kIq3SGrid[512];    // bytes in {1, 3, ..., 15}
extern const uint64_t kIq1SGrid[2048];   // bytes are int8 in {-1, 0, 1}; also used by IQ1_M

// The full sign byte of 7 stored sign bits: bit 7 set when s has an odd number of ones, so every
// sub-group of 8 has an even number of minus signs.
static constexpr uint8_t IqSignByte(uint32_t s) {
  return static_cast<uint8_t>(s | ((__builtin_popcount(s) & 1) << 7));
}

// kIqSignBytes.v[s] = IqSignByte(s) for the 128 values of 7 bits. A plain array (no std::
// templates: see the rule of core/kernels/kernel_table.h for headers the per-ISA files include).
struct IqSignTable {
  uint8_t v[128];
};
static constexpr IqSignTable MakeIqSignBytes() {
  IqSignTable t{};
  for (uint32_t s = 0; s < 128; ++s) t.v[s] = IqSignByte(s);
  return t;
}
inline constexpr IqSignTable kIqSignBytes = MakeIqSignBytes();

// kIqSigns8.v[s] = the 8 signs of IqSignByte(s) as int8 bytes, 0x01 (+1) or 0xff (-1), element j
// in byte j: one load gives a sub-group's sign vector.
struct IqSigns8Table {
  uint64_t v[128];
};
static constexpr IqSigns8Table MakeIqSigns8() {
  IqSigns8Table t{};
  for (uint32_t s = 0; s < 128; ++s) {
    const uint8_t b = IqSignByte(s);
    for (int j = 0; j < 8; ++j) t.v[s] |= uint64_t{(b >> j) & 1 ? 0xffu : 0x01u} << (8 * j);
  }
  return t;
}
inline constexpr IqSigns8Table kIqSigns8 = MakeIqSigns8();

}  // namespace sluice
