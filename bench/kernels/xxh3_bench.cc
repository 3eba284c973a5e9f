// Xxh3/<path>/<where>: checking one expert (7,077,888 bytes, a Qwen3.5-397B expert) with the
// library's xxh3 (baseline) or the run-time-chosen AVX2 build (io/xxh3.h). "dram" cycles through
// 64 copies (453 MB, far past the L3) like an expert just read from storage; "cache" hashes one
// copy again and again. Read the real time per expert (Time column); compare the paths within
// one run (docs/benchmarks.md).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "io/xxh3.h"

namespace sluice {
namespace {

constexpr size_t kExpertBytes = 7077888;

void BM_Xxh3(benchmark::State& state, Xxh3Fn fn, int copies) {
  if (fn == nullptr) {
    state.SkipWithError("this CPU has no AVX2");
    return;
  }
  static std::vector<uint8_t> buffer = [] {
    std::vector<uint8_t> b(kExpertBytes * 64);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 131 + (i >> 13));
    return b;
  }();
  int next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        fn(buffer.data() + static_cast<size_t>(next) * kExpertBytes, kExpertBytes));
    next = (next + 1) % copies;
  }
}

const bool registered = [] {
  for (auto [where, copies] : {std::pair{"dram", 64}, std::pair{"cache", 1}}) {
    benchmark::RegisterBenchmark((std::string("Xxh3/library/") + where).c_str(), BM_Xxh3,
                                 &Xxh3Library, copies);
    benchmark::RegisterBenchmark((std::string("Xxh3/avx2/") + where).c_str(), BM_Xxh3, Xxh3Avx2Fn(),
                                 copies);
  }
  return true;
}();

}  // namespace
}  // namespace sluice
