// Xxh3_64: XXH3-64 of a buffer (seed 0), bit-identical to libxxhash's XXH3_64bits, on the
// widest vector unit the CPU has. Debian's libxxhash is built for baseline x86-64 (SSE2, about
// 6.7 GB/s here); checking each expert after its read is on the decode's critical path, so the
// same algorithm from xxhash.h is compiled a second time with AVX2 (io/xxh3_avx2.cc) and chosen
// at run time. SLUICE_ISA=scalar (the kernels' override, core/kernels/dispatch.h) keeps the
// library's.
//
// Thread-safety: pure function.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

uint64_t Xxh3_64(const void* data, size_t size);

// The implementation Xxh3_64 uses: "avx2" or "library".
const char* Xxh3PathName();

// For tests: the library's function and the AVX2 build (nullptr when not compiled in or the CPU
// lacks AVX2).
uint64_t Xxh3Library(const void* data, size_t size);
using Xxh3Fn = uint64_t (*)(const void* data, size_t size);
Xxh3Fn Xxh3Avx2Fn();

}  // namespace sluice
