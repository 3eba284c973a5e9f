// Kernel benchmarks against the speed of light (docs/benchmarks.md, "Kernels (issue 3)").
//
//   DramRead/threads:N          streaming read of a 1 GiB buffer: the DRAM read bandwidth
//   MatVec/<type>/<rows>x<cols>/threads:N
//                                one token; counters weight_GBps (weight bytes / time),
//                                dram_GBps (DRAM read bandwidth at the same thread count, measured
//                                right before this benchmark's timed loop) and dram_ratio
//                                (weight_GBps / dram_GBps). Measuring both in the same minute
//                                matters on a VM: the host's memory bandwidth drifts by +-20%.
//   MatMul32/<type>/1024x4096/threads:N, MatVec32/...
//                                32 tokens in one MatMul vs 32 MatVec calls (tokens_per_s)
//   HotMatMul/<type>/1024x4096/tokens:N
//                                compute speed: one thread, cache-resident weights (tokens_per_s)
//   MatMulN/<type>/<rows>x<cols>/tokens:N
//                                prompt-processing shape: N tokens x one expert-shaped matrix on
//                                all threads (tokens_per_s, GFLOPS = 2 rows cols N / time), the
//                                figure to set beside llama.cpp's mul_mat on the same shape
//
// Except in HotMatMul, weights are RAM-resident, never cache-resident: each call reads the next of
// several copies of the matrix spanning 512 MiB (16x the last-level cache of the machines we
// target), so every byte comes from DRAM, as it does for experts in a real model.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/base/ggml_type.h"
#include "core/kernels/dispatch.h"
#include "core/kernels/matmul.h"
#include "core/quant/quantize.h"
#include "core/threads/thread_pool.h"

namespace sluice {
namespace {

constexpr uint64_t kWorkingSetBytes = 512ull << 20;
constexpr uint64_t kDramBufferBytes = 1ull << 30;

int AllThreads() { return std::max(1u, std::thread::hardware_concurrency()); }

ThreadPool* Pool(int threads) {
  static std::map<int, std::unique_ptr<ThreadPool>> pools;
  auto& pool = pools[threads];
  if (!pool) pool = std::make_unique<ThreadPool>(threads);
  return pool.get();
}

// Sum of all 64-bit words of [p, p + n): one cache line per step, with the same 1 KiB software
// prefetch the kernels use, so the reference is the best streaming read a core achieves (a plain
// loop reached ~10% less than Q8_0 MatVec on one thread).
uint64_t SumWords(const uint64_t* p, int64_t n) {
  uint64_t s[8] = {};
  for (int64_t i = 0; i + 8 <= n; i += 8) {
    __builtin_prefetch(p + i + 128);
    for (int k = 0; k < 8; ++k) s[k] += p[i + k];
  }
  return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

const AlignedBuffer& DramBuffer() {
  static AlignedBuffer buffer = [] {
    AlignedBuffer b(kDramBufferBytes, AllocOptions{.huge_pages = true});
    std::memset(b.data(), 1, b.size());  // fault the pages in before any timing
    return b;
  }();
  return buffer;
}

// One pass over the DRAM buffer split across the pool's threads.
void ReadDramBuffer(ThreadPool* pool) {
  const AlignedBuffer& buffer = DramBuffer();
  const auto* words = reinterpret_cast<const uint64_t*>(buffer.data());
  const int64_t chunks = 64;
  const int64_t chunk_words = static_cast<int64_t>(buffer.size() / 8) / chunks;
  pool->ParallelFor(chunks, [&](int64_t begin, int64_t end) {
    uint64_t s = 0;
    for (int64_t c = begin; c < end; ++c) s += SumWords(words + c * chunk_words, chunk_words);
    benchmark::DoNotOptimize(s);
  });
}

// Best of a few passes, in GB/s: the denominator of the dram_ratio counters.
double MeasureDramGBps(int threads) {
  ThreadPool* pool = Pool(threads);
  double best = 0;
  for (int pass = 0; pass < 3; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    ReadDramBuffer(pool);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(kDramBufferBytes) / seconds / 1e9);
  }
  return best;
}

void BM_DramRead(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  ThreadPool* pool = Pool(threads);
  for (auto _ : state) ReadDramBuffer(pool);
  state.counters["GBps"] = benchmark::Counter(static_cast<double>(kDramBufferBytes) / 1e9,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// Weight copies of one (type, rows, cols): random Gaussian rows quantized once, tiled to fill
// the matrix, then the matrix replicated to span kWorkingSetBytes.
struct Weights {
  uint64_t matrix_bytes = 0;
  int copies = 0;
  AlignedBuffer buffer;
};

// Only the most recent matrix is kept (benchmarks run grouped by type and shape): 512 MiB each.
const Weights& GetWeights(GgmlType type, int64_t rows, int64_t cols) {
  static std::string cached_key;
  static std::unique_ptr<Weights> entry;
  const std::string key =
      std::string(TypeName(type)) + std::to_string(rows) + "x" + std::to_string(cols);
  if (entry && key == cached_key) return *entry;
  entry.reset();
  cached_key = key;
  entry = std::make_unique<Weights>();
  const uint64_t row_bytes = RowBytes(type, cols);
  entry->matrix_bytes = row_bytes * static_cast<uint64_t>(rows);
  entry->copies = static_cast<int>(std::max<uint64_t>(2, kWorkingSetBytes / entry->matrix_bytes));
  entry->buffer =
      AlignedBuffer(entry->matrix_bytes * entry->copies, AllocOptions{.huge_pages = true});
  constexpr int kDistinctRows = 16;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> row(cols);
  std::vector<uint8_t> quantized(row_bytes * kDistinctRows);
  for (int r = 0; r < kDistinctRows; ++r) {
    for (float& v : row) v = dist(rng);
    if (IsGridType(type)) {  // no quantizer for the grid formats: random valid blocks
      RandomGridBlocks(type, static_cast<uint64_t>(r) + 1, 0.05f, cols / kQkK,
                       quantized.data() + r * row_bytes);
    } else {
      QuantizeRow(type, row.data(), quantized.data() + r * row_bytes, cols);
    }
  }
  uint8_t* base = entry->buffer.data();
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(base + r * row_bytes, quantized.data() + (r % kDistinctRows) * row_bytes,
                row_bytes);
  }
  for (int c = 1; c < entry->copies; ++c) {
    std::memcpy(base + c * entry->matrix_bytes, base, entry->matrix_bytes);
  }
  return *entry;
}

std::vector<float> Activations(int64_t n) {
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

void SetWeightCounters(benchmark::State& state, double bytes_per_iteration, double dram_gbps) {
  state.counters["weight_GBps"] =
      benchmark::Counter(bytes_per_iteration / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["dram_GBps"] = dram_gbps;
  state.counters["dram_ratio"] = benchmark::Counter(bytes_per_iteration / 1e9 / dram_gbps,
                                                    benchmark::Counter::kIsIterationInvariantRate);
}

void BM_MatVec(benchmark::State& state, GgmlType type, int64_t rows, int64_t cols) {
  const int threads = static_cast<int>(state.range(0));
  const Weights& w = GetWeights(type, rows, cols);
  const std::vector<float> x = Activations(cols);
  std::vector<float> y(rows);
  ThreadPool* pool = Pool(threads);
  const double dram_gbps = MeasureDramGBps(threads);
  int copy = 0;
  for (auto _ : state) {
    MatVec(type, w.buffer.data() + copy * w.matrix_bytes, rows, cols, x.data(), y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % w.copies;
  }
  SetWeightCounters(state, static_cast<double>(w.matrix_bytes), dram_gbps);
  state.SetLabel(IsaName(ActiveIsa()));
}

constexpr int64_t kBatch = 32;

void BM_MatMul32(benchmark::State& state, GgmlType type, int64_t rows, int64_t cols) {
  const int threads = static_cast<int>(state.range(0));
  const Weights& w = GetWeights(type, rows, cols);
  const std::vector<float> x = Activations(cols * kBatch);
  std::vector<float> y(rows * kBatch);
  ThreadPool* pool = Pool(threads);
  int copy = 0;
  for (auto _ : state) {
    MatMul(type, w.buffer.data() + copy * w.matrix_bytes, rows, cols, x.data(), kBatch, y.data(),
           pool);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % w.copies;
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(IsaName(ActiveIsa()));
}

// The alternative to MatMul32: one MatVec per token over the same (DRAM-resident) weights.
void BM_MatVec32(benchmark::State& state, GgmlType type, int64_t rows, int64_t cols) {
  const int threads = static_cast<int>(state.range(0));
  const Weights& w = GetWeights(type, rows, cols);
  const std::vector<float> x = Activations(cols * kBatch);
  std::vector<float> y(rows * kBatch);
  ThreadPool* pool = Pool(threads);
  int copy = 0;
  for (auto _ : state) {
    for (int64_t t = 0; t < kBatch; ++t) {
      MatVec(type, w.buffer.data() + copy * w.matrix_bytes, rows, cols, x.data() + t * cols,
             y.data() + t * rows, pool);
      copy = (copy + 1) % w.copies;
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tokens_per_s"] =
      benchmark::Counter(kBatch, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(IsaName(ActiveIsa()));
}

// The kernels' compute speed: one thread, the same copy of the weights every call (2-3 MiB, so
// it stays in the last-level cache), `tokens` tokens per MatMul call.
void BM_HotMatMul(benchmark::State& state, GgmlType type, int64_t rows, int64_t cols) {
  const int64_t tokens = state.range(0);
  const Weights& w = GetWeights(type, rows, cols);
  const std::vector<float> x = Activations(cols * tokens);
  std::vector<float> y(rows * tokens);
  for (auto _ : state) {
    MatMul(type, w.buffer.data(), rows, cols, x.data(), tokens, y.data(), nullptr);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(
      static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(IsaName(ActiveIsa()));
}

// N tokens in one MatMul call on all threads, DRAM-resident weights (as MatMul32).
void BM_MatMulN(benchmark::State& state, GgmlType type, int64_t rows, int64_t cols) {
  const int64_t tokens = state.range(0);
  const Weights& w = GetWeights(type, rows, cols);
  const std::vector<float> x = Activations(cols * tokens);
  std::vector<float> y(rows * tokens);
  ThreadPool* pool = Pool(AllThreads());
  int copy = 0;
  for (auto _ : state) {
    MatMul(type, w.buffer.data() + copy * w.matrix_bytes, rows, cols, x.data(), tokens, y.data(),
           pool);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % w.copies;
  }
  state.counters["tokens_per_s"] = benchmark::Counter(
      static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOPS"] =
      benchmark::Counter(2.0 * static_cast<double>(rows) * static_cast<double>(cols) *
                             static_cast<double>(tokens) / 1e9,
                         benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(IsaName(ActiveIsa()));
}

struct Shape {
  int64_t rows;
  int64_t cols;
};

}  // namespace
}  // namespace sluice

int main(int argc, char** argv) {
  using namespace sluice;
  benchmark::Initialize(&argc, argv);
  DramBuffer();  // allocate and fault in the 1 GiB buffer before anything is timed
  const int all = AllThreads();
  const std::vector<int> thread_counts = all > 1 ? std::vector<int>{1, all} : std::vector<int>{1};
  auto* dram = benchmark::RegisterBenchmark("DramRead", BM_DramRead);
  for (int threads : thread_counts) dram->Arg(threads);
  dram->ArgName("threads")->UseRealTime()->Unit(benchmark::kMillisecond);

  const GgmlType types[] = {
      GgmlType::kQ4_K,    GgmlType::kQ8_0,   GgmlType::kQ4_0,  GgmlType::kQ6_K,
      GgmlType::kQ5_K,    GgmlType::kQ3_K,   GgmlType::kQ2_K,  GgmlType::kIQ4_XS,
      GgmlType::kIQ4_NL,  GgmlType::kMXFP4,  GgmlType::kQ4_1,  GgmlType::kQ5_0,
      GgmlType::kQ5_1,    GgmlType::kF16,    GgmlType::kBF16,  GgmlType::kF32,
      GgmlType::kIQ2_XXS, GgmlType::kIQ2_XS, GgmlType::kIQ2_S, GgmlType::kIQ3_XXS,
      GgmlType::kIQ3_S,   GgmlType::kIQ1_S,  GgmlType::kIQ1_M};
  // Expert-shaped matrices: Qwen3.5-397B up/gate (4096 -> 1024) and down (1024 -> 4096),
  // DeepSeek-V3 up/gate (7168 -> 2048). rows x cols = out x in.
  const Shape shapes[] = {{1024, 4096}, {4096, 1024}, {2048, 7168}};
  for (GgmlType type : types) {
    for (const Shape& shape : shapes) {
      const std::string name = std::string("MatVec/") + TypeName(type) + "/" +
                               std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
      auto* b = benchmark::RegisterBenchmark(name.c_str(), BM_MatVec, type, shape.rows, shape.cols);
      for (int threads : thread_counts) b->Arg(threads);
      b->ArgName("threads")->UseRealTime()->Unit(benchmark::kMicrosecond);
    }
  }
  for (GgmlType type : types) {
    const Shape shape{1024, 4096};
    const std::string suffix = std::string("/") + TypeName(type) + "/1024x4096";
    auto* mm = benchmark::RegisterBenchmark(("MatMul32" + suffix).c_str(), BM_MatMul32, type,
                                            shape.rows, shape.cols);
    auto* mv = benchmark::RegisterBenchmark(("MatVec32" + suffix).c_str(), BM_MatVec32, type,
                                            shape.rows, shape.cols);
    for (int threads : thread_counts) {
      mm->Arg(threads);
      mv->Arg(threads);
    }
    mm->ArgName("threads")->UseRealTime()->Unit(benchmark::kMicrosecond);
    mv->ArgName("threads")->UseRealTime()->Unit(benchmark::kMicrosecond);
  }
  for (GgmlType type : types) {
    const std::string name = std::string("HotMatMul/") + TypeName(type) + "/1024x4096";
    benchmark::RegisterBenchmark(name.c_str(), BM_HotMatMul, type, 1024, 4096)
        ->Arg(1)
        ->Arg(kBatch)
        ->ArgName("tokens")
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  // Issue 17's sweep: the formats prompts meet in expert files, at the expert shapes.
  const GgmlType prompt_types[] = {GgmlType::kQ4_K,    GgmlType::kQ8_0,  GgmlType::kQ6_K,
                                   GgmlType::kIQ4_XS,  GgmlType::kQ4_0,  GgmlType::kIQ2_XXS,
                                   GgmlType::kIQ3_XXS, GgmlType::kIQ1_S, GgmlType::kMXFP4,
                                   GgmlType::kQ2_K,    GgmlType::kQ3_K,  GgmlType::kQ5_K};
  for (GgmlType type : prompt_types) {
    for (const Shape& shape : shapes) {
      const std::string name = std::string("MatMulN/") + TypeName(type) + "/" +
                               std::to_string(shape.rows) + "x" + std::to_string(shape.cols);
      benchmark::RegisterBenchmark(name.c_str(), BM_MatMulN, type, shape.rows, shape.cols)
          ->Arg(1)
          ->Arg(8)
          ->Arg(32)
          ->Arg(128)
          ->Arg(512)
          ->ArgName("tokens")
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
