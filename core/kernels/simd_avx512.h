// 512-bit building blocks shared by the AVX-512 kernel files that interleave 16 weight rows into
// the 16 int32 lanes of a zmm (block32_avx512.cc, kquants_avx512.cc). Include only from files
// compiled with the AVX-512 flags, after simd_avx2.h; everything has internal linkage (the rule in
// kernel_table.h). Thread-safety: pure functions.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace sluice {
namespace {

inline constexpr int kTileRows16 = 16;

// rows[l] (l < 16, 32 bytes each) -> v[k] (k < 8), dword l = row l's dword k: an 8 x 8 dword
// transpose in each 256-bit half (rows l and l + 8 share a zmm), then the 128-bit chunks put in
// row order (8 vinserti64x4, 16 unpacks, 8 vpermt2q).
inline void Transpose16x8(const __m256i* rows, __m512i* v) {
  __m512i r[8];
  for (int l = 0; l < 8; ++l) {
    r[l] = _mm512_inserti64x4(_mm512_castsi256_si512(rows[l]), rows[l + 8], 1);
  }
  __m512i t[8];
  for (int p = 0; p < 4; ++p) {
    t[2 * p] = _mm512_unpacklo_epi32(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_epi32(r[2 * p], r[2 * p + 1]);
  }
  // u[j] (rows 0..3 of each half) and u[j + 4] (rows 4..7): chunk c holds dword j (c even) or
  // j + 4 (c odd) of 4 rows.
  __m512i u[8];
  for (int h = 0; h < 2; ++h) {
    const __m512i* s = t + 4 * h;
    u[4 * h + 0] = _mm512_unpacklo_epi64(s[0], s[2]);
    u[4 * h + 1] = _mm512_unpackhi_epi64(s[0], s[2]);
    u[4 * h + 2] = _mm512_unpacklo_epi64(s[1], s[3]);
    u[4 * h + 3] = _mm512_unpackhi_epi64(s[1], s[3]);
  }
  // Chunks (rows 0-3, 4-7, 8-11, 12-15) of dword j: qwords 0,1 of u[j], 0,1 of u[j+4], 4,5 of
  // u[j], 4,5 of u[j+4]; dword j + 4 the odd chunks.
  const __m512i even = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i odd = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int j = 0; j < 4; ++j) {
    v[j] = _mm512_permutex2var_epi64(u[j], even, u[j + 4]);
    v[j + 4] = _mm512_permutex2var_epi64(u[j], odd, u[j + 4]);
  }
}

// Block i's share of the next 16 rows (contiguous from `next`), into L2: 16 row streams are more
// than the hardware prefetcher follows well, and a whole tile ahead (37-70 KiB) would not stay in
// L1.
inline void PrefetchNextTile(const uint8_t* next, int64_t i, size_t block_bytes) {
  const char* p = reinterpret_cast<const char*>(next) + i * kTileRows16 * block_bytes;
  for (size_t b = 0; b < kTileRows16 * block_bytes; b += 64) _mm_prefetch(p + b, _MM_HINT_T1);
}

}  // namespace
}  // namespace sluice
