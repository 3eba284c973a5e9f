// Routing traces: write/read round trip, every corruption and truncation gives an error naming the
// file and offset, the recorder handles batched (layer-major) calls, the replay hook checks the
// shape and its end, and --routing values parse.
#include "moe/routing_trace.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "moe/routing_spec.h"
#include "moe/routing_trace_hooks.h"
#include "moe/synthetic_routing.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

class TraceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    dir_ = fs::path(tmp ? tmp : "/tmp") / ("sluice_trace_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static RoutingShape Shape() {
    RoutingShape s;
    s.n_layer = 5;
    s.moe_layers = {1, 2, 4};
    s.n_expert = 40;
    s.k = 3;
    return s;
  }
  // A trace with a mix of full and short routes (k < shape.k).
  static RoutingTrace MakeTrace(int64_t n_token) {
    RoutingTrace gen = SyntheticRouting(SyntheticRoutingParams{}, Shape()).Generate(n_token);
    RoutingTraceHeader h = gen.header();
    h.source = "unit test";
    std::vector<Route> routes;
    for (int64_t t = 0; t < n_token; ++t) {
      for (int m = 0; m < 3; ++m) {
        Route r = gen.route(t, m);
        if ((t + m) % 4 == 0) r.k = 2;
        routes.push_back(r);
      }
    }
    return RoutingTrace::FromRoutes(h, routes);
  }
  static std::vector<uint8_t> ReadBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
  }
  static void WriteBytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  // Writes `bytes` to a new file and expects Read to fail with all of `needles` in the message.
  void ExpectReadError(const std::string& name, const std::vector<uint8_t>& bytes,
                       std::vector<std::string> needles) {
    std::string path = Path(name);
    WriteBytes(path, bytes);
    Result<RoutingTrace> r = RoutingTrace::Read(path);
    ASSERT_FALSE(r.ok()) << name << " should not read";
    needles.push_back(path);
    for (const std::string& n : needles) {
      EXPECT_NE(r.status().message().find(n), std::string::npos)
          << name << ": '" << n << "' missing from: " << r.status().message();
    }
  }

  fs::path dir_;
};

// Header bytes of Shape() with source "unit test": 48 fixed + 3 layer ids + 9 bytes of source.
constexpr uint64_t kHeaderBytes = 48 + 3 * 4 + 9;
constexpr uint64_t kRecordBytes = 3 * 3 * (2 + 4);

TEST_F(TraceTest, RoundTrip) {
  RoutingTrace trace = MakeTrace(37);
  std::string path = Path("a.trace");
  ASSERT_TRUE(WriteRoutingTrace(path, trace).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(fs::file_size(path), kHeaderBytes + 37 * kRecordBytes);
  Result<RoutingTrace> back = RoutingTrace::Read(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->n_token(), 37);
  EXPECT_EQ(back->header().source, "unit test");
  EXPECT_EQ(back->shape().moe_layers, (std::vector<int>{1, 2, 4}));
  EXPECT_EQ(back->shape().n_layer, 5);
  EXPECT_EQ(back->shape().n_expert, 40);
  EXPECT_EQ(back->shape().k, 3);
  for (int64_t t = 0; t < 37; ++t) {
    for (int m = 0; m < 3; ++m) {
      const Route& a = trace.route(t, m);
      const Route& b = back->route(t, m);
      ASSERT_EQ(a.k, b.k) << "token " << t << " layer " << m;
      for (int j = 0; j < a.k; ++j) {
        EXPECT_EQ(a.ids[j], b.ids[j]);
        EXPECT_EQ(std::memcmp(&a.weights[j], &b.weights[j], 4), 0) << "weights bit-exact";
      }
    }
  }
}

TEST_F(TraceTest, LayoutIsTheDocumentedOne) {
  std::string path = Path("layout.trace");
  ASSERT_TRUE(WriteRoutingTrace(path, MakeTrace(2)).ok());
  std::vector<uint8_t> b = ReadBytes(path);
  auto u32 = [&](size_t off) {
    uint32_t v;
    std::memcpy(&v, &b[off], 4);
    return v;
  };
  EXPECT_EQ(std::string(b.begin(), b.begin() + 8), "SLUITRCE");
  EXPECT_EQ(u32(8), 1u);             // version
  EXPECT_EQ(u32(12), kHeaderBytes);  // header_bytes
  EXPECT_EQ(u32(16), 5u);            // n_layer
  EXPECT_EQ(u32(20), 3u);            // n_moe_layer
  EXPECT_EQ(u32(24), 40u);           // n_expert
  EXPECT_EQ(u32(28), 3u);            // k
  EXPECT_EQ(u32(32), 2u);            // n_token (low half)
  EXPECT_EQ(u32(40), 9u);            // source bytes
  EXPECT_EQ(u32(48), 1u);            // first MoE layer
  // Token 0, MoE index 0 has k = 2 ((0 + 0) % 4 == 0): third id slot is 0xFFFF.
  uint16_t third;
  std::memcpy(&third, &b[kHeaderBytes + 4], 2);
  EXPECT_EQ(third, 0xFFFF);
}

TEST_F(TraceTest, CorruptionsNameFileAndOffset) {
  std::string good = Path("good.trace");
  ASSERT_TRUE(WriteRoutingTrace(good, MakeTrace(4)).ok());
  const std::vector<uint8_t> bytes = ReadBytes(good);

  ExpectReadError("short.trace", std::vector<uint8_t>(bytes.begin(), bytes.begin() + 20),
                  {"truncated", "offset 0"});
  std::vector<uint8_t> b = bytes;
  b[0] = 'X';
  ExpectReadError("magic.trace", b, {"magic", "offset 0"});
  b = bytes;
  b[8] = 2;
  ExpectReadError("version.trace", b, {"version 2", "offset 8"});
  b = bytes;
  b[28] = 17;  // k above kMaxExpertsPerToken
  ExpectReadError("k.trace", b, {"k 17", "offset 28"});
  b = bytes;
  b[20] = 9;  // n_moe_layer > n_layer
  ExpectReadError("nmoe.trace", b, {"n_moe_layer 9", "offset 20"});
  b = bytes;
  b[52] = 0;  // second MoE layer id 2 -> 0: not ascending
  ExpectReadError("layers.trace", b, {"entry 1", "offset 52"});

  // Cut inside token 2.
  uint64_t cut = kHeaderBytes + 2 * kRecordBytes + 7;
  ExpectReadError("cut.trace", std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut),
                  {"truncated", "4 tokens", "inside token 2",
                   "offset " + std::to_string(kHeaderBytes + 2 * kRecordBytes)});
  b = bytes;
  b.push_back(0);
  ExpectReadError("trailing.trace", b, {"1 trailing bytes"});

  // Token 1, MoE index 1 (layer 2): its id slots start at header + record + 3 * 6.
  const uint64_t route_off = kHeaderBytes + kRecordBytes + 18;
  b = bytes;
  b[route_off] = 40;  // id 40 = n_expert
  b[route_off + 1] = 0;
  ExpectReadError("id.trace", b, {"expert id 40", "offset " + std::to_string(route_off)});
  b = bytes;
  std::memcpy(&b[route_off + 2], &b[route_off], 2);  // slot 1 = slot 0
  ExpectReadError("dup.trace", b, {"repeats", "offset " + std::to_string(route_off + 2)});
  b = bytes;
  b[route_off] = 0xFF;  // slot 0 unused, slot 1 used
  b[route_off + 1] = 0xFF;
  ExpectReadError("gap.trace", b, {"unused slot", "offset " + std::to_string(route_off + 2)});
  b = bytes;
  float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(&b[route_off + 6], &nan, 4);  // weight of slot 0
  ExpectReadError("nan.trace", b, {"not finite", "offset " + std::to_string(route_off + 6)});

  Result<RoutingTrace> missing = RoutingTrace::Read(Path("nope.trace"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.trace"), std::string::npos);
}

TEST_F(TraceTest, UnfinishedWriterLeavesNoFile) {
  std::string path = Path("unfinished.trace");
  {
    RoutingTraceHeader h;
    h.shape = Shape();
    auto w = RoutingTraceWriter::Create(path, h);
    ASSERT_TRUE(w.ok());
    RoutingTrace t = MakeTrace(1);
    ASSERT_TRUE((*w)->AppendToken(&t.route(0, 0), 3).ok());
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

// The engine routes a prompt batch layer by layer (all tokens at layer 1, then at layer 2...),
// then decodes token by token: the recorder must write tokens in order either way.
TEST_F(TraceTest, RecorderHandlesBatchedAndSingleTokens) {
  RoutingTrace trace = MakeTrace(12);
  std::string path = Path("rec.trace");
  auto rec = TraceRecorderHook::Create(path, Shape(), "recorder test");
  ASSERT_TRUE(rec.ok()) << rec.status().ToString();
  for (int m = 0; m < 3; ++m) {  // prompt batch of 8 tokens
    for (int t = 0; t < 8; ++t) {
      Route r = trace.route(t, m);
      (*rec)->OnRoute(Shape().moe_layers[m], t, {}, &r);
    }
  }
  EXPECT_EQ((*rec)->tokens_recorded(), 8);
  for (int t = 8; t < 12; ++t) {
    for (int m = 0; m < 3; ++m) {
      Route r = trace.route(t, m);
      (*rec)->OnRoute(Shape().moe_layers[m], t, {}, &r);
    }
  }
  ASSERT_TRUE((*rec)->Finish().ok());
  Result<RoutingTrace> back = RoutingTrace::Read(path);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->header().source, "recorder test");
  ASSERT_EQ(back->n_token(), 12);
  for (int t = 0; t < 12; ++t) {
    for (int m = 0; m < 3; ++m) {
      ASSERT_EQ(back->route(t, m).k, trace.route(t, m).k);
      for (int j = 0; j < trace.route(t, m).k; ++j) {
        EXPECT_EQ(back->route(t, m).ids[j], trace.route(t, m).ids[j]);
      }
    }
  }
}

TEST_F(TraceTest, RecorderReportsIncompleteTokens) {
  RoutingTrace trace = MakeTrace(2);
  auto rec = TraceRecorderHook::Create(Path("inc.trace"), Shape(), "");
  ASSERT_TRUE(rec.ok());
  for (int m = 0; m < 3; ++m) {
    Route r = trace.route(0, m);
    (*rec)->OnRoute(Shape().moe_layers[m], 0, {}, &r);
  }
  Route r = trace.route(1, 0);
  (*rec)->OnRoute(1, 1, {}, &r);  // token 1 only at layer 1
  Status st = (*rec)->Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("token 1 has no route at layer 2"), std::string::npos)
      << st.message();
  EXPECT_FALSE(fs::exists(Path("inc.trace")));
}

TEST_F(TraceTest, ReplayChecksShapeAndEnd) {
  auto trace = std::make_shared<const RoutingTrace>(MakeTrace(5));
  RoutingShape other = Shape();
  other.n_expert = 64;
  auto bad = TraceReplayHook::Create(trace, "t.trace", other, TraceReplayHook::EndMode::kError);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("n_expert 40 vs 64"), std::string::npos)
      << bad.status().message();
  EXPECT_NE(bad.status().message().find("t.trace"), std::string::npos);
  other = Shape();
  other.moe_layers = {1, 2, 3};
  EXPECT_FALSE(TraceReplayHook::Create(trace, "t", other, TraceReplayHook::EndMode::kError).ok());
  other = Shape();
  other.k = 2;  // the trace's k (3) is above the model's
  EXPECT_FALSE(TraceReplayHook::Create(trace, "t", other, TraceReplayHook::EndMode::kError).ok());
  other.k = 8;  // a smaller trace k is fine
  EXPECT_TRUE(TraceReplayHook::Create(trace, "t", other, TraceReplayHook::EndMode::kError).ok());

  auto replay =
      TraceReplayHook::Create(trace, "t.trace", Shape(), TraceReplayHook::EndMode::kError);
  ASSERT_TRUE(replay.ok());
  EXPECT_TRUE((*replay)->CheckLength(5).ok());
  Status too_long = (*replay)->CheckLength(6);
  ASSERT_FALSE(too_long.ok());
  EXPECT_NE(too_long.message().find("has 5 tokens, this run needs 6"), std::string::npos);
  for (int t = 0; t < 5; ++t) {
    Route r;
    (*replay)->OnRoute(4, t, {}, &r);
    EXPECT_EQ(r.k, trace->route(t, 2).k);
    EXPECT_EQ(r.ids[0], trace->route(t, 2).ids[0]);
  }
  Route untouched;
  untouched.k = 1;
  untouched.ids[0] = 39;
  (*replay)->OnRoute(4, 5, {}, &untouched);
  EXPECT_EQ(untouched.ids[0], 39) << "past the end the router's route stays";
  ASSERT_FALSE((*replay)->status().ok());
  EXPECT_NE((*replay)->status().message().find("routing trace ended"), std::string::npos);

  auto cycle = TraceReplayHook::Create(trace, "t", Shape(), TraceReplayHook::EndMode::kCycle);
  ASSERT_TRUE(cycle.ok());
  EXPECT_TRUE((*cycle)->CheckLength(1000).ok());
  Route r;
  (*cycle)->OnRoute(2, 12, {}, &r);  // 12 mod 5 = 2
  EXPECT_EQ(r.ids[0], trace->route(2, 1).ids[0]);
  EXPECT_TRUE((*cycle)->status().ok());
}

TEST_F(TraceTest, RoutingSpecParses) {
  auto model = ParseRoutingSpec("model");
  ASSERT_TRUE(model.ok());
  EXPECT_EQ(model->kind, RoutingSpec::Kind::kModel);
  auto syn = ParseRoutingSpec("synthetic:reuse=0.3,seed=5");
  ASSERT_TRUE(syn.ok()) << syn.status().ToString();
  EXPECT_EQ(syn->kind, RoutingSpec::Kind::kSynthetic);
  EXPECT_DOUBLE_EQ(syn->synthetic.reuse, 0.3);
  EXPECT_EQ(syn->synthetic.seed, 5u);
  EXPECT_TRUE(ParseRoutingSpec("synthetic").ok());
  auto tr = ParseRoutingSpec("trace:/x/y.trace,cycle");
  ASSERT_TRUE(tr.ok());
  EXPECT_EQ(tr->trace_path, "/x/y.trace");
  EXPECT_TRUE(tr->cycle);
  EXPECT_EQ(tr->ToString(), "trace:/x/y.trace,cycle");
  EXPECT_DOUBLE_EQ(tr->predict, kDefaultPredictAccuracy);
  auto pr = ParseRoutingSpec("trace:/x/y.trace,predict=0.9,cycle");
  ASSERT_TRUE(pr.ok()) << pr.status().ToString();
  EXPECT_EQ(pr->trace_path, "/x/y.trace");
  EXPECT_TRUE(pr->cycle);
  EXPECT_DOUBLE_EQ(pr->predict, 0.9);
  EXPECT_EQ(pr->ToString(), "trace:/x/y.trace,cycle,predict=0.9");
  EXPECT_FALSE(ParseRoutingSpec("trace:/x/y.trace,predict=2").ok());
  EXPECT_FALSE(ParseRoutingSpec("trace:/x/y.trace,predict=abc").ok());
  EXPECT_FALSE(ParseRoutingSpec("trace:").ok());
  EXPECT_FALSE(ParseRoutingSpec("synthetic:reuse=2").ok());
  EXPECT_FALSE(ParseRoutingSpec("random").ok());

  Metadata md("m.sluice");
  md.SetString(kMetaDefaultRouting, "synthetic:seed=3");
  auto resolved = ResolveRoutingSpec("", md);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->kind, RoutingSpec::Kind::kSynthetic);
  EXPECT_EQ(resolved->synthetic.seed, 3u);
  EXPECT_EQ(ResolveRoutingSpec("model", md)->kind, RoutingSpec::Kind::kModel);
  EXPECT_EQ(ResolveRoutingSpec("", Metadata("x"))->kind, RoutingSpec::Kind::kModel);
}

// Synthetic routing recorded through MakeRouting replays to the same routes.
TEST_F(TraceTest, MakeRoutingRecordsAndReplays) {
  std::string path = Path("made.trace");
  auto spec = ParseRoutingSpec("synthetic:seed=11");
  ASSERT_TRUE(spec.ok());
  auto setup = MakeRouting(*spec, Shape(), path, "synthetic test");
  ASSERT_TRUE(setup.ok()) << setup.status().ToString();
  ASSERT_NE(setup->hook, nullptr);
  std::vector<Route> used;
  for (int t = 0; t < 6; ++t) {
    for (int layer : Shape().moe_layers) {
      Route r;
      setup->hook->OnRoute(layer, t, {}, &r);
      used.push_back(r);
    }
  }
  ASSERT_TRUE(setup->Finish().ok());
  auto replay = MakeRouting(*ParseRoutingSpec("trace:" + path), Shape(), "", "");
  ASSERT_TRUE(replay.ok()) << replay.status().ToString();
  size_t i = 0;
  for (int t = 0; t < 6; ++t) {
    for (int layer : Shape().moe_layers) {
      Route r;
      replay->hook->OnRoute(layer, t, {}, &r);
      ASSERT_EQ(r.k, used[i].k);
      for (int j = 0; j < r.k; ++j) EXPECT_EQ(r.ids[j], used[i].ids[j]);
      ++i;
    }
  }
  EXPECT_TRUE(replay->status().ok());
}

}  // namespace
}  // namespace sluice
