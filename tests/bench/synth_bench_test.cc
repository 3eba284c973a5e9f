// The model benchmark on a small synthetic archive: its figures are consistent with each other
// and with the cache's read size, a recorded routing trace replays to exactly the same reads,
// the device probe reads whole expert blocks, and the JSON carries every documented key.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "bench/bench_memory.h"
#include "bench/bench_model.h"
#include "bench/bench_report.h"
#include "core/base/byte_size.h"
#include "io/model_open.h"
#include "moe/routing_trace.h"
#include "synth/synth.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

class SynthBenchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* tmp = std::getenv("TMPDIR");
    dir_ = fs::path(tmp ? tmp : "/tmp") / ("sluice_bench_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    SynthScale scale;
    scale.layers = 2;
    scale.experts = 16;
    SynthOptions o;
    o.shape = *ScaleSynthShape(*FindSynthPreset("demo"), scale);
    o.pool_bytes = 256 << 10;
    model_ = (dir_ / "bench.sluice").string();
    ASSERT_TRUE(WriteSynthModel(model_, o).ok());
    // gate and up start 64-byte aligned inside the block, the block is read 4 KiB aligned.
    const uint64_t matrix = o.shape.expert_bytes() / 3;  // all three are equal in this shape
    block_read_bytes_ = AlignUp(2 * AlignUp(matrix, 64) + matrix, 4096);
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  // A budget with room for ~12 of the 32 experts: misses on every token.
  static BenchRunOptions Options() {
    BenchRunOptions o;
    o.engine.context_length = 256;
    o.engine.threads = 1;
    o.engine.ram_budget_bytes = (64ull << 20) + (8ull << 20) + 12 * block_read_bytes_;
    o.routing = *ParseRoutingSpec("synthetic:seed=5");
    o.prompt_tokens = 8;
    o.decode_tokens = 12;
    return o;
  }

  static fs::path dir_;
  static std::string model_;
  static uint64_t block_read_bytes_;
};

fs::path SynthBenchTest::dir_;
std::string SynthBenchTest::model_;
uint64_t SynthBenchTest::block_read_bytes_ = 0;

// Next-layer read-ahead with a simulated predictor that is wrong half the time: its figures add
// up (accuracy near the asked one, wasted bytes whole blocks of the wrong guesses read), and the
// ratio against the needed bytes is never above the plain bound ratio.
TEST_F(SynthBenchTest, SpeculativeReadFiguresAreConsistent) {
  BenchRunOptions o = Options();
  o.engine.ram_budget_bytes = (64ull << 20) + (8ull << 20) + 24 * block_read_bytes_;
  o.engine.prefetch_next = 2;
  o.routing = *ParseRoutingSpec("synthetic:seed=5,predict=0.5");
  o.decode_tokens = 40;
  Result<BenchRun> run = RunEngineBench(model_, o);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->prefetch_next, 2);
  // 40 tokens x 2 layers x k predictions; 0.5 accuracy within a wide margin; at most 2 of
  // each layer's read ahead.
  EXPECT_GT(run->prediction_accuracy, 0.3);
  EXPECT_LT(run->prediction_accuracy, 0.7);
  EXPECT_GT(run->speculative_per_token, 0.0);
  EXPECT_LE(run->speculative_per_token, 2.0 * 2);
  // A fraction of whole reads: used reads = fraction x reads is a whole number.
  const double reads = run->speculative_per_token * 40;
  EXPECT_NEAR(run->speculative_used * reads, std::round(run->speculative_used * reads), 1e-6);
  EXPECT_LT(run->speculative_used, 1.0);
  EXPECT_GT(run->wasted_bytes_per_token, 0.0);
  // Wasted bytes are whole blocks: 40 tokens x wasted per token is a multiple of a block read.
  const double wasted_blocks = run->wasted_bytes_per_token * 40 / block_read_bytes_;
  EXPECT_NEAR(wasted_blocks, std::round(wasted_blocks), 1e-6);
  // At most the speculative reads that were not used can be wasted.
  EXPECT_LE(std::round(wasted_blocks),
            std::round(run->speculative_per_token * 40 * (1 - run->speculative_used)) + 1e-9);
  EXPECT_LT(run->wasted_bytes_per_token, run->bytes_read_per_token);
}

TEST_F(SynthBenchTest, FiguresAreConsistent) {
  BenchRunOptions o = Options();
  o.rounds = 3;
  int boundaries = 0;
  o.between_rounds = [&](const ModelFile& m) {
    EXPECT_EQ(m.path(), model_);
    ++boundaries;
    return Status::Ok();
  };
  Result<BenchRun> run = RunEngineBench(model_, o);
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  EXPECT_EQ(run->expert_source, "cache");
  EXPECT_EQ(run->decode_tokens, 12);
  // The rates are the counts over the measured times (computed independently here).
  EXPECT_DOUBLE_EQ(run->decode_tok_s, 12 / run->decode_seconds);
  EXPECT_GT(run->decode_bytes_read, 0u) << "the budget holds 12 of 32 experts: misses";
  EXPECT_EQ(run->decode_bytes_read % block_read_bytes_, 0u) << "every miss reads one block";
  EXPECT_DOUBLE_EQ(run->bytes_read_per_token, run->decode_bytes_read / 12.0);
  EXPECT_NEAR(run->read_GBps, run->decode_bytes_read / run->decode_seconds / 1e9, 1e-9);
  EXPECT_GT(run->hit_rate, 0.0);
  EXPECT_LT(run->hit_rate, 1.0);
  // Disjoint intervals of the decode's wall time: their shares cannot add up to more than it.
  // (How the shares compare with each other depends on the machine's load: no test of that.)
  EXPECT_LE(run->io_wait_fraction + run->attention_fraction + run->dense_ffn_fraction +
                run->expert_compute_fraction + run->verify_fraction,
            1.0);
  EXPECT_LE(run->io_wait_fraction, 1.0);
  EXPECT_LE(run->device_busy_fraction, 1.0 + 1e-9) << "a busy stretch counted twice";
  // Peak RSS holds at least the dense weights, which the default residency copies and touches.
  EXPECT_GE(run->peak_rss_bytes, run->dense_bytes);
#ifndef SLUICE_SANITIZE
  // The budget bounds the product's RSS; ASan's quarantine keeps freed blocks resident and its
  // shadow memory adds to RSS (0.8 MiB over this 82 MiB budget in one run, within it in others).
  EXPECT_LE(run->peak_rss_bytes, run->ram_budget_bytes) << "over the budget it accepted";
#endif
  EXPECT_NE(run->routing.find("synthetic"), std::string::npos);
  // Rounds: called before the first and after each; their tokens and bytes add up.
  EXPECT_EQ(boundaries, 4);
  ASSERT_EQ(run->rounds.size(), 3u);
  int tokens = 0;
  uint64_t bytes = 0;
  double seconds = 0;
  for (const BenchRound& r : run->rounds) {
    tokens += r.tokens;
    bytes += r.bytes_read;
    seconds += r.seconds;
  }
  EXPECT_EQ(tokens, 12);
  EXPECT_EQ(bytes, run->decode_bytes_read);
  EXPECT_DOUBLE_EQ(seconds, run->decode_seconds);
}

// Replaying the recorded routing reproduces the run's reads exactly (same routes, same cache).
TEST_F(SynthBenchTest, RecordedTraceReplaysToTheSameReads) {
  BenchRunOptions o = Options();
  // Without the next-layer read-ahead: its simulated predictor is seeded differently under
  // synthetic and replayed routing, so the two runs would read ahead different wrong guesses.
  // Everything else must be exactly the same, whatever order the reads complete in.
  o.engine.prefetch_next = 0;
  const std::string trace = (dir_ / "bench.trace").string();
  o.record_trace = trace;
  Result<BenchRun> recorded = RunEngineBench(model_, o);
  ASSERT_TRUE(recorded.ok()) << recorded.status().ToString();
  Result<RoutingTrace> t = RoutingTrace::Read(trace);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->n_token(), 8 + 12);
  o.record_trace.clear();
  o.routing = *ParseRoutingSpec("trace:" + trace);
  Result<BenchRun> replayed = RunEngineBench(model_, o);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  EXPECT_EQ(replayed->decode_bytes_read, recorded->decode_bytes_read);
  EXPECT_EQ(replayed->hit_rate, recorded->hit_rate);
  // One token more than the trace holds: refused before running.
  o.decode_tokens = 13;
  Result<BenchRun> too_long = RunEngineBench(model_, o);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.status().message().find("has 20 tokens, this run needs 21"), std::string::npos)
      << too_long.status().message();
}

TEST_F(SynthBenchTest, DeviceProbeReadsWholeBlocks) {
  auto model = OpenModelFile(model_);
  ASSERT_TRUE(model.ok());
  Result<DeviceProbe> p = ProbeDevice(**model, 4, 8 << 20, 1);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->read_bytes, block_read_bytes_);
  EXPECT_GE(p->reads * p->read_bytes, 8u << 20);
}

TEST_F(SynthBenchTest, JsonHasTheDocumentedSchema) {
  BenchReport r;
  r.model_path = "m.sluice";
  r.model_name = "a \"quoted\" name";
  r.synthetic = true;
  r.preset = "demo";
  r.device_before = {
      .GBps = 2.0, .read_bytes = 4096, .queue_depth = 16, .reads = 1, .direct = true};
  r.device_after = {.GBps = 1.0, .read_bytes = 4096, .queue_depth = 16, .reads = 1, .direct = true};
  r.run.decode_tok_s = 2.0;
  r.run.bytes_read_per_token = 0.5e9;
  r.run.read_GBps = 1.0;
  r.run.hit_rate = 0.5;
  r.run.device_busy_fraction = 0.75;
  r.run.ram_budget_bytes = 1 << 30;
  r.sweep = {r.run, r.run};
  r.sweep[1].ram_budget_bytes = 2 << 30;
  const std::string json = BenchReportJson(r);
  for (const char* key : {"schema",
                          "decode_tok_s",
                          "prefill_tok_s",
                          "ttft_s",
                          "bytes_read_per_token",
                          "hit_rate",
                          "read_GBps",
                          "device_GBps",
                          "device_GBps_before",
                          "device_GBps_after",
                          "read_bw_ratio",
                          "bound_tok_s",
                          "bound_ratio",
                          "peak_rss_bytes",
                          "ram_budget_bytes",
                          "io_wait_fraction",
                          "attention_fraction",
                          "dense_ffn_fraction",
                          "expert_compute_fraction",
                          "verify_fraction",
                          "device_busy_fraction",
                          "prefetch_next",
                          "prediction_accuracy",
                          "speculative_reads_per_token",
                          "speculative_used_fraction",
                          "wasted_bytes_per_token",
                          "needed_bound_ratio",
                          "routing",
                          "synthetic",
                          "compare_mmap",
                          "sweep"}) {
    EXPECT_NE(json.find(std::string("\"") + key + "\": "), std::string::npos) << key;
  }
  // device 1.5 GB/s / 0.5 GB per token = 3 tok/s bound; 2 tok/s is 2/3 of it.
  EXPECT_NE(json.find("\"device_GBps\": 1.5"), std::string::npos) << json;
  EXPECT_NE(json.find("\"bound_tok_s\": 3"), std::string::npos) << json;
  EXPECT_NE(json.find("\"bound_ratio\": 0.666667"), std::string::npos) << json;
  EXPECT_NE(json.find("a \\\"quoted\\\" name"), std::string::npos) << "strings escaped";
  EXPECT_NE(json.find("\"compare_mmap\": null"), std::string::npos);
  const std::string svg = SweepSvg(r);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_NE(json.find("\"device_busy_fraction\": 0.75"), std::string::npos) << json;
  const std::string text = BenchReportText(r);
  EXPECT_NE(text.find("random weights"), std::string::npos)
      << "the text says the weights are random";
  EXPECT_NE(text.find("a read in flight 75% of the decode time"), std::string::npos) << text;
}

TEST(BenchMemory, PeakRssAndBalloon) {
  ASSERT_GT(PeakRssBytes(), 0u);
  const uint64_t before = CurrentRssBytes();
  {
    auto balloon = MemoryBalloon::Inflate(64ull << 20);
    if (!balloon.ok()) GTEST_SKIP() << "cannot mlock 64 MiB here: " << balloon.status().message();
    EXPECT_GE(CurrentRssBytes(), before + (60ull << 20)) << "the balloon is resident";
  }
  EXPECT_LT(CurrentRssBytes(), before + (16ull << 20)) << "and released";
  if (ResetPeakRss()) {
    EXPECT_LT(PeakRssBytes(), before + (32ull << 20));
  }
}

}  // namespace
}  // namespace sluice
