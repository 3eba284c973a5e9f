// AVX2 kernels for the super-block formats (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS) against Q8_K
// activations.
//
// Per super-block and token: the weight levels are decoded once (8 vectors of 32 bytes), then
// each 32-level chunk is multiplied with the activations by maddubs and weighted by its group
// scale(s) with madd, summing into 8 int32 lanes (exact). One FMA per super-block folds d_a * d
// into 8 float lanes; the min terms (sum_g min_g * bsum_g, from Q8_K's bsums) go through a second
// FMA into another 8 lanes. Formats with signed levels (Q3_K: -4..3, Q6_K: -32..31) use the
// unsigned level + offset and subtract offset * sum_g scale_g * bsum_g, also exact.
#if defined(__x86_64__)

#include "core/base/ggml_type.h"
#include "core/kernels/simd_avx2.h"
#include "core/quant/blocks.h"

namespace sluice {
namespace {

constexpr int kTile = 4;

const BlockQ8_K& ActBlock(const uint8_t* act, int64_t i) {
  return reinterpret_cast<const BlockQ8_K*>(act)[i];
}

// The 8 levels-chunk products of one token: sum_c madd(maddubs(q[c], a[c]), scale16[c]).
inline __m256i ChunkSums(const __m256i* q, const __m256i* scale16, const int8_t* a) {
  __m256i sum = _mm256_setzero_si256();
  for (int c = 0; c < 8; ++c) {
    const __m256i p16 = _mm256_maddubs_epi16(q[c], LoadU256(a + 32 * c));
    sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p16, scale16[c]));
  }
  return sum;
}

// A scale16 vector for a 32-level chunk covering two groups of 16 (low lanes: group g).
inline __m256i TwoGroupScales(int g_low, int g_high) {
  return _mm256_set_m128i(_mm_set1_epi16(static_cast<int16_t>(g_high)),
                          _mm_set1_epi16(static_cast<int16_t>(g_low)));
}

// Common driver: Decode(block, q[8], scale16[8], &mins16, &offset16, &d, &dmin) per super-block.
// mins16 (16 int16 lanes, paired with Q8_K's 16 bsums) carries min_g for asymmetric formats;
// offset16 carries offset * scale_g for formats with a level offset. Either may be zero.
template <typename Decoder>
struct KKernel {
  template <int nt>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int64_t nb, float* out) {
    const auto* x = reinterpret_cast<const typename Decoder::Block*>(w);
    __m256 acc[nt], acc_min[nt];
    for (int t = 0; t < nt; ++t) acc[t] = acc_min[t] = _mm256_setzero_ps();
    __m256i q[8], scale16[8];
    for (int64_t i = 0; i < nb; ++i) {
      __m256i mins16, offset16;
      float d, dmin;
      Decoder::Decode(x[i], q, scale16, &mins16, &offset16, &d, &dmin);
      for (int t = 0; t < nt; ++t) {
        const BlockQ8_K& a = ActBlock(act[t], i);
        const __m256i bsums = LoadU256(a.bsums);
        __m256i isum = ChunkSums(q, scale16, a.qs);
        if constexpr (Decoder::kHasOffset) {
          isum = _mm256_sub_epi32(isum, _mm256_madd_epi16(bsums, offset16));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(isum), acc[t]);
        if constexpr (Decoder::kHasMin) {
          const __m256i msum = _mm256_madd_epi16(bsums, mins16);
          acc_min[t] =
              _mm256_fmadd_ps(_mm256_set1_ps(-(a.d * dmin)), _mm256_cvtepi32_ps(msum), acc_min[t]);
        }
      }
    }
    for (int t = 0; t < nt; ++t) out[t] = HsumPs(acc[t]) + HsumPs(acc_min[t]);
  }
};

// Each element of a 16-lane int16 vector duplicated from 8 values: lanes 2g, 2g+1 = v[g].
inline __m256i PairUp(const int* v) {
  return _mm256_setr_epi16(
      static_cast<int16_t>(v[0]), static_cast<int16_t>(v[0]), static_cast<int16_t>(v[1]),
      static_cast<int16_t>(v[1]), static_cast<int16_t>(v[2]), static_cast<int16_t>(v[2]),
      static_cast<int16_t>(v[3]), static_cast<int16_t>(v[3]), static_cast<int16_t>(v[4]),
      static_cast<int16_t>(v[4]), static_cast<int16_t>(v[5]), static_cast<int16_t>(v[5]),
      static_cast<int16_t>(v[6]), static_cast<int16_t>(v[6]), static_cast<int16_t>(v[7]),
      static_cast<int16_t>(v[7]));
}

inline __m256i Sixteen(const int* v) {
  return _mm256_setr_epi16(
      static_cast<int16_t>(v[0]), static_cast<int16_t>(v[1]), static_cast<int16_t>(v[2]),
      static_cast<int16_t>(v[3]), static_cast<int16_t>(v[4]), static_cast<int16_t>(v[5]),
      static_cast<int16_t>(v[6]), static_cast<int16_t>(v[7]), static_cast<int16_t>(v[8]),
      static_cast<int16_t>(v[9]), static_cast<int16_t>(v[10]), static_cast<int16_t>(v[11]),
      static_cast<int16_t>(v[12]), static_cast<int16_t>(v[13]), static_cast<int16_t>(v[14]),
      static_cast<int16_t>(v[15]));
}

struct Q4KDecoder {
  using Block = BlockQ4_K;
  static constexpr bool kHasMin = true;
  static constexpr bool kHasOffset = false;
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i* mins16, __m256i*,
                     float* d, float* dmin) {
    int sc[8], mn[8];
    for (int g = 0; g < 8; ++g) UnpackScaleMinK4(b.scales, g, &sc[g], &mn[g]);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int p = 0; p < 4; ++p) {
      const __m256i bytes = LoadU256(b.qs + 32 * p);
      q[2 * p] = _mm256_and_si256(bytes, low4);
      q[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4);
    }
    for (int g = 0; g < 8; ++g) scale16[g] = _mm256_set1_epi16(static_cast<int16_t>(sc[g]));
    *mins16 = PairUp(mn);
    *d = LoadF16(b.d);
    *dmin = LoadF16(b.dmin);
  }
};

struct Q5KDecoder {
  using Block = BlockQ5_K;
  static constexpr bool kHasMin = true;
  static constexpr bool kHasOffset = false;
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i* mins16, __m256i*,
                     float* d, float* dmin) {
    int sc[8], mn[8];
    for (int g = 0; g < 8; ++g) UnpackScaleMinK4(b.scales, g, &sc[g], &mn[g]);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i high_bits = LoadU256(b.qh);
    for (int p = 0; p < 4; ++p) {
      const __m256i bytes = LoadU256(b.qs + 32 * p);
      const __m256i h0 = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * p), one);
      const __m256i h1 = _mm256_and_si256(_mm256_srli_epi16(high_bits, 2 * p + 1), one);
      q[2 * p] = _mm256_or_si256(_mm256_and_si256(bytes, low4), _mm256_slli_epi16(h0, 4));
      q[2 * p + 1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), low4),
                                     _mm256_slli_epi16(h1, 4));
    }
    for (int g = 0; g < 8; ++g) scale16[g] = _mm256_set1_epi16(static_cast<int16_t>(sc[g]));
    *mins16 = PairUp(mn);
    *d = LoadF16(b.d);
    *dmin = LoadF16(b.dmin);
  }
};

struct Q6KDecoder {
  using Block = BlockQ6_K;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasOffset = true;  // level = u - 32
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i*, __m256i* offset16,
                     float* d, float*) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    const __m256i two = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = LoadU256(b.ql + 64 * h);
      const __m256i ql1 = LoadU256(b.ql + 64 * h + 32);
      const __m256i qh = LoadU256(b.qh + 32 * h);
      auto high = [&](int shift) {
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift), two), 4);
      };
      q[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), high(0));
      q[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), high(2));
      q[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), high(4));
      q[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4), high(6));
    }
    int sc[16], off[16];
    for (int g = 0; g < 16; ++g) {
      sc[g] = b.scales[g];
      off[g] = 32 * sc[g];
    }
    for (int c = 0; c < 8; ++c) scale16[c] = TwoGroupScales(sc[2 * c], sc[2 * c + 1]);
    *offset16 = Sixteen(off);
    *d = LoadF16(b.d);
  }
};

struct Q2KDecoder {
  using Block = BlockQ2_K;
  static constexpr bool kHasMin = true;
  static constexpr bool kHasOffset = false;
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i* mins16, __m256i*,
                     float* d, float* dmin) {
    const __m256i three = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = LoadU256(b.qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        q[4 * h + s] = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * s), three);
      }
    }
    int sc[16], mn[16];
    for (int g = 0; g < 16; ++g) {
      sc[g] = b.scales[g] & 0xf;
      mn[g] = b.scales[g] >> 4;
    }
    for (int c = 0; c < 8; ++c) scale16[c] = TwoGroupScales(sc[2 * c], sc[2 * c + 1]);
    *mins16 = Sixteen(mn);
    *d = LoadF16(b.d);
    *dmin = LoadF16(b.dmin);
  }
};

struct Q3KDecoder {
  using Block = BlockQ3_K;
  static constexpr bool kHasMin = false;
  static constexpr bool kHasOffset = true;  // level = u - 4, u = low2 + 4 * hbit
  static void Decode(const Block& b, __m256i* q, __m256i* scale16, __m256i*, __m256i* offset16,
                     float* d, float*) {
    const __m256i three = _mm256_set1_epi8(3);
    const __m256i one = _mm256_set1_epi8(1);
    const __m256i hmask = LoadU256(b.hmask);
    for (int h = 0; h < 2; ++h) {
      const __m256i bytes = LoadU256(b.qs + 32 * h);
      for (int s = 0; s < 4; ++s) {
        const int c = 4 * h + s;
        const __m256i low2 = _mm256_and_si256(_mm256_srli_epi16(bytes, 2 * s), three);
        const __m256i hbit = _mm256_and_si256(_mm256_srli_epi16(hmask, c), one);
        q[c] = _mm256_or_si256(low2, _mm256_slli_epi16(hbit, 2));
      }
    }
    int sc[16], off[16];
    for (int g = 0; g < 16; ++g) {
      sc[g] = Q3KScale(b.scales, g);
      off[g] = 4 * sc[g];
    }
    for (int c = 0; c < 8; ++c) scale16[c] = TwoGroupScales(sc[2 * c], sc[2 * c + 1]);
    *offset16 = Sixteen(off);
    *d = LoadF16(b.d);
  }
};

// IQ4_XS levels are signed (-127..113): the sign trick per chunk, so it has its own kernel.
struct Iq4XsKernel {
  template <int nt>
  static void Dot(const uint8_t* w, const uint8_t* const* act, int64_t nb, float* out) {
    const auto* x = reinterpret_cast<const BlockIq4Xs*>(w);
    const __m256i table = _mm256_broadcastsi128_si256(LoadU128(kIq4nlValues));
    __m256 acc[nt];
    for (int t = 0; t < nt; ++t) acc[t] = _mm256_setzero_ps();
    __m256i q[8], abs_q[8], scale16[8];
    for (int64_t i = 0; i < nb; ++i) {
      for (int g = 0; g < 8; ++g) {
        q[g] = _mm256_shuffle_epi8(table, UnpackNibbles16(x[i].qs + 16 * g));
        abs_q[g] = _mm256_sign_epi8(q[g], q[g]);
        scale16[g] = _mm256_set1_epi16(static_cast<int16_t>(Iq4XsScale(x[i], g)));
      }
      const float d = LoadF16(x[i].d);
      for (int t = 0; t < nt; ++t) {
        const BlockQ8_K& a = ActBlock(act[t], i);
        __m256i isum = _mm256_setzero_si256();
        for (int g = 0; g < 8; ++g) {
          const __m256i signed_a = _mm256_sign_epi8(LoadU256(a.qs + 32 * g), q[g]);
          const __m256i p16 = _mm256_maddubs_epi16(abs_q[g], signed_a);
          isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, scale16[g]));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(a.d * d), _mm256_cvtepi32_ps(isum), acc[t]);
      }
    }
    for (int t = 0; t < nt; ++t) out[t] = HsumPs(acc[t]);
  }
};

template <typename Kernel>
void Rows(const RowsArgs& a, int64_t row_begin, int64_t row_end) {
  TiledRows<Kernel, kTile>(a, row_begin, row_end, a.cols / kQkK);
}

constexpr int Id(GgmlType t) { return static_cast<int>(t); }

}  // namespace

void FillAvx2KQuantKernels(KernelTable* t) {
  t->rows[Id(GgmlType::kQ2_K)] = Rows<KKernel<Q2KDecoder>>;
  t->rows[Id(GgmlType::kQ3_K)] = Rows<KKernel<Q3KDecoder>>;
  t->rows[Id(GgmlType::kQ4_K)] = Rows<KKernel<Q4KDecoder>>;
  t->rows[Id(GgmlType::kQ5_K)] = Rows<KKernel<Q5KDecoder>>;
  t->rows[Id(GgmlType::kQ6_K)] = Rows<KKernel<Q6KDecoder>>;
  t->rows[Id(GgmlType::kIQ4_XS)] = Rows<Iq4XsKernel>;
}

}  // namespace sluice

#endif  // __x86_64__
