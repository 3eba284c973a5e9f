// Xxh3_64 on every compiled path equals libxxhash's XXH3_64bits (the scalar twin here), over
// every length class XXH3 treats differently (0, 1-3, 4-8, 9-16, 17-128, 129-240, long inputs,
// stripe and block boundaries) and unaligned starts.
#include "io/xxh3.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>
#include <random>
#include <vector>

namespace sluice {
namespace {

std::vector<size_t> Lengths() {
  std::vector<size_t> n = {0,   1,   2,    3,    4,    7,    8,    9,    15,  16,
                           17,  63,  64,   65,   127,  128,  129,  239,  240, 241,
                           255, 256, 1023, 1024, 1025, 4095, 4096, 65537};
  for (size_t base : {size_t{1} << 20, size_t{7077888}}) {  // 1 MiB, a Qwen3.5 expert
    n.push_back(base - 1);
    n.push_back(base);
    n.push_back(base + 3);
  }
  return n;
}

TEST(Xxh3, EveryPathMatchesTheLibrary) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf(7077888 + 64);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  const Xxh3Fn avx2 = Xxh3Avx2Fn();
  if (avx2 == nullptr) std::printf("AVX2 not available here: only the library path is checked\n");
  for (size_t n : Lengths()) {
    for (size_t offset : {0, 1, 13}) {
      const uint8_t* p = buf.data() + offset;
      const uint64_t want = XXH3_64bits(p, n);
      EXPECT_EQ(Xxh3_64(p, n), want) << n << " at +" << offset;
      EXPECT_EQ(Xxh3Library(p, n), want) << n;
      if (avx2 != nullptr) {
        EXPECT_EQ(avx2(p, n), want) << n << " at +" << offset;
      }
    }
  }
}

TEST(Xxh3, KnownValueOfTheEmptyInput) {
  // XXH3_64bits of zero bytes with seed 0 (xxHash's published test vector).
  EXPECT_EQ(Xxh3_64("", 0), 0x2D06800538D394C2ull);
}

TEST(Xxh3, AChangedByteChangesTheHash) {
  std::vector<uint8_t> buf(100000, 7);
  const uint64_t before = Xxh3_64(buf.data(), buf.size());
  buf[54321] ^= 1;
  EXPECT_NE(Xxh3_64(buf.data(), buf.size()), before);
}

}  // namespace
}  // namespace sluice
