// XXH3-64 from xxhash.h compiled with AVX2 (this file only gets -mavx2; see io/CMakeLists.txt).
// XXH_INLINE_ALL makes every xxhash function static to this file, so none of them can be picked
// by the linker for a caller on a CPU without AVX2; it is reached only through io/xxh3.cc's
// dispatch.
#define XXH_INLINE_ALL
#define XXH_VECTOR XXH_AVX2
#include <xxhash.h>

#include <cstddef>
#include <cstdint>

namespace sluice {

uint64_t Xxh3Avx2Impl(const void* data, size_t size) { return XXH3_64bits(data, size); }

}  // namespace sluice
