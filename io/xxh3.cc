#include "io/xxh3.h"

#include <xxhash.h>

#include <cstdlib>
#include <cstring>

namespace sluice {

#if defined(__x86_64__) || defined(_M_X64)
uint64_t Xxh3Avx2Impl(const void* data, size_t size);  // io/xxh3_avx2.cc
#endif

namespace {

Xxh3Fn ChooseAvx2() {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) return &Xxh3Avx2Impl;
#endif
  return nullptr;
}

Xxh3Fn Chosen() {
  static const Xxh3Fn fn = [] {
    const char* isa = std::getenv("SLUICE_ISA");
    if (isa != nullptr && std::strcmp(isa, "scalar") == 0) return &Xxh3Library;
    Xxh3Fn avx2 = ChooseAvx2();
    return avx2 != nullptr ? avx2 : &Xxh3Library;
  }();
  return fn;
}

}  // namespace

uint64_t Xxh3Library(const void* data, size_t size) { return XXH3_64bits(data, size); }

Xxh3Fn Xxh3Avx2Fn() { return ChooseAvx2(); }

uint64_t Xxh3_64(const void* data, size_t size) { return Chosen()(data, size); }

const char* Xxh3PathName() { return Chosen() == &Xxh3Library ? "library" : "avx2"; }

}  // namespace sluice
