#include "bench/decode_bench.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/base/aligned_buffer.h"
#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/threads/thread_pool.h"

namespace sluice {
namespace {

// Sums 64-bit words with 4 independent accumulators so the loop is bound by memory, not by the
// add latency.
uint64_t SumWords(const uint64_t* p, int64_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

}  // namespace

double MeasureDramReadGBps(int threads, uint64_t bytes) {
  AlignedBuffer buffer(bytes, AllocOptions{.huge_pages = true});
  if (buffer.data() == nullptr) return 0;
  std::memset(buffer.data(), 1, bytes);  // fault every page in before timing
  ThreadPool pool(threads);
  const int64_t words = static_cast<int64_t>(bytes / sizeof(uint64_t));
  const uint64_t* data = reinterpret_cast<const uint64_t*>(buffer.data());
  constexpr int64_t kChunkWords = 1 << 16;  // 512 KiB per work item
  const int64_t chunks = (words + kChunkWords - 1) / kChunkWords;
  std::vector<uint64_t> sums(chunks);
  double best = 0;
  for (int pass = 0; pass < 5; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    pool.ParallelFor(chunks, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const int64_t first = c * kChunkWords;
        sums[c] = SumWords(data + first, std::min(kChunkWords, words - first));
      }
    });
    const double seconds = Seconds(start, Clock::now());
    best = std::max(best, static_cast<double>(bytes) / seconds / 1e9);
  }
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  // Every byte is 1: the sum proves every word was read (and keeps the loop from being elided).
  CHECK_EQ(total, 0x0101010101010101ull * static_cast<uint64_t>(words));
  return best;
}

Result<DecodeBenchReport> MeasureDecodeBench(const Engine& engine, uint64_t dram_buffer_bytes) {
  const EngineCounters c = engine.counters();
  if (c.decoded_tokens == 0 || c.prompt_tokens != 0) {
    return InvalidArgument("decode bench: counters must cover decode steps only (",
                           c.decoded_tokens, " decoded, ", c.prompt_tokens, " prompt tokens)");
  }
  const ModelConfig& cfg = engine.config();
  DecodeBenchReport r;
  r.threads = engine.options().threads > 0
                  ? engine.options().threads
                  : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  r.decoded_tokens = c.decoded_tokens;
  r.decode_seconds = c.decode_ns / 1e9;
  r.tok_per_s = r.decoded_tokens / r.decode_seconds;
  r.dense_bytes_per_token = engine.weights().bytes_per_token();
  r.expert_bytes_per_token = c.moe.expert_bytes_used / c.decoded_tokens;
  // The decoded tokens sat at positions n_past - N .. n_past - 1; the one at position p reads
  // p + 1 rows of k and v in every layer.
  const int64_t last = engine.n_past() - 1, first = last - c.decoded_tokens + 1;
  const double rows = (first + 1 + last + 1) / 2.0;
  const uint64_t row_bytes = static_cast<uint64_t>(cfg.k_dim() + cfg.v_dim()) *
                             KvTypeBytes(engine.options().kv_type) * cfg.n_layer;
  r.kv_bytes_per_token = static_cast<uint64_t>(rows * row_bytes);
  const double weight_bytes = double(r.dense_bytes_per_token + r.expert_bytes_per_token);
  r.weight_GBps = weight_bytes * r.tok_per_s / 1e9;
  r.dram_GBps = MeasureDramReadGBps(r.threads, dram_buffer_bytes);
  r.dram_ratio = r.dram_GBps > 0 ? r.weight_GBps / r.dram_GBps : 0;
  r.bound_tok_per_s = r.dram_GBps * 1e9 / (weight_bytes + r.kv_bytes_per_token);
  r.cache_misses = c.cache.misses;
  r.io_wait_ns = c.moe.expert_wait_ns;
  return r;
}

std::string FormatDecodeBench(const DecodeBenchReport& r) {
  return StrCat(
      "decode: ", r.decoded_tokens, " tokens in ", r.decode_seconds, " s = ", r.tok_per_s,
      " tok/s (", r.threads, " threads)\n", "bytes per token: dense ",
      FormatBytes(r.dense_bytes_per_token), " + experts ", FormatBytes(r.expert_bytes_per_token),
      " (weights) + KV ", FormatBytes(r.kv_bytes_per_token), "\n", "weights read: ", r.weight_GBps,
      " GB/s; DRAM read bandwidth measured now: ", r.dram_GBps, " GB/s; ratio ", r.dram_ratio, "\n",
      "bound: ", r.bound_tok_per_s, " tok/s; achieved/bound ", r.tok_per_s / r.bound_tok_per_s,
      "\n", "expert cache misses while decoding: ", r.cache_misses, ", I/O wait ",
      r.io_wait_ns / 1e6, " ms\n");
}

}  // namespace sluice
