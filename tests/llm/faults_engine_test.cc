// Faults under the whole engine while it decodes (issue 16): an I/O error, a short read, a
// corrupted read, a read that takes seconds, and the file truncated underneath. Every case ends in
// the tokens the fault-free run gives, or in a clear error naming the file, the offset and the
// cause; never a crash, a hang or a wrong token. Both I/O backends (io_uring skips where the
// kernel refuses it).
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "core/ops/argmax.h"
#include "io/gguf_convert.h"
#include "io/io_probe.h"
#include "io/model_open.h"
#include "llm/engine.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

enum class Fault { kNone, kEio, kShortRead, kCorrupt, kSlow, kTruncate };

// Acts on the first read that starts once armed (decode reads after the prompt).
class OneFault : public IoFaultInjector {
 public:
  explicit OneFault(Fault fault) : fault_(fault) {}
  void Arm() { armed_.store(true); }
  int64_t OnRead(int, uint64_t, uint64_t length, uint8_t* dest, int64_t result) override {
    if (!armed_.load() || fired_.exchange(true)) return result;
    switch (fault_) {
      case Fault::kEio:
        return -EIO;
      case Fault::kShortRead:  // the backend reads the rest: nothing may change
        return result > 4096 ? 4096 : result;
      case Fault::kCorrupt:
        if (result > 100) dest[100] ^= 0x40;
        return result;
      case Fault::kSlow:
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
        return result;
      default:
        (void)length;
        return result;
    }
  }
  bool fired() const { return fired_.load(); }

 private:
  const Fault fault_;
  std::atomic<bool> armed_{false}, fired_{false};
};

struct Outcome {
  Status status;
  std::vector<int32_t> tokens;
};

class FaultsUnderTheEngine : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  void SetUp() override {
    TinyModelSpec spec;
    spec.n_expert = 16;  // a cache of a few slots misses on most tokens
    ASSERT_TRUE(WriteTinyModel(gguf_, spec).ok());
    ASSERT_TRUE(ConvertGgufToArchive(gguf_, archive_).ok());
    if (GetParam() == IoBackendKind::kUring && !ProbeIo(archive_).uring_ok) {
      GTEST_SKIP() << "io_uring unavailable here: " << ProbeIo(archive_).uring_reason;
    }
    auto probe = Engine::Open(archive_, {.threads = 1});
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    budget_ = (*probe)->memory_plan().minimum_budget_bytes;
    reference_ = Run(Fault::kNone).tokens;
    ASSERT_EQ(reference_.size(), 24u);
  }

  // 8 prompt tokens, then 24 greedy tokens with the fault armed.
  Outcome Run(Fault fault) {
    OneFault injector(fault);
    Outcome out;
    auto engine = Engine::Open(
        archive_,
        {.ram_budget_bytes = budget_, .threads = 1, .io = GetParam(), .io_faults = &injector});
    if (!engine.ok()) {
      out.status = engine.status();
      return out;
    }
    Engine& e = **engine;
    std::vector<int32_t> prompt = {3, 14, 15, 9, 26, 5, 35, 8};
    out.status = e.Prefill(prompt);
    if (!out.status.ok()) return out;
    injector.Arm();
    for (int i = 0; i < 24 && out.status.ok(); ++i) {
      if (fault == Fault::kTruncate && i == 2) {
        // Cut the file inside the expert region, under the running engine.
        EXPECT_EQ(truncate(archive_.c_str(), truncate_at_), 0);
      }
      out.tokens.push_back(ArgMax(e.logits()));
      out.status = e.Decode(out.tokens.back());
    }
    if (fault != Fault::kNone && fault != Fault::kTruncate) {
      EXPECT_TRUE(injector.fired()) << "no read after the prompt: the test proves nothing";
    }
    return out;
  }

  // The error names the file, an offset and the cause.
  void ExpectClearError(const Outcome& o, const std::string& cause) {
    ASSERT_FALSE(o.status.ok());
    const std::string& m = o.status.message();
    EXPECT_NE(m.find(archive_), std::string::npos) << m;
    EXPECT_NE(m.find("offset "), std::string::npos) << m;
    EXPECT_NE(m.find(cause), std::string::npos) << m;
    // The tokens before the fault are the fault-free ones.
    for (size_t i = 0; i + 1 < o.tokens.size(); ++i) EXPECT_EQ(o.tokens[i], reference_[i]) << i;
  }

  TempDir dir_;
  const std::string gguf_ = dir_.File("m.gguf"), archive_ = dir_.File("m.sluice");
  uint64_t budget_ = 0;
  off_t truncate_at_ = 0;
  std::vector<int32_t> reference_;
};

TEST_P(FaultsUnderTheEngine, ErrorsNameFileOffsetAndCause) {
  ExpectClearError(Run(Fault::kEio), "Input/output error");
  ExpectClearError(Run(Fault::kCorrupt), "xxh3 expected");  // caught by the checksum
}

TEST_P(FaultsUnderTheEngine, ShortAndSlowReadsChangeNothing) {
  for (Fault f : {Fault::kShortRead, Fault::kSlow}) {  // the rest is read again; it only waits
    Outcome o = Run(f);
    ASSERT_TRUE(o.status.ok()) << o.status.ToString();
    EXPECT_EQ(o.tokens, reference_);
  }
}

TEST_P(FaultsUnderTheEngine, AFileTruncatedUnderneathIsAnErrorOrStillRight) {
  auto reader = OpenModelFile(archive_);
  ASSERT_TRUE(reader.ok());
  // Halfway into the first expert layer: most experts are gone.
  const ExpertLocation first = (*reader)->LocateExpert(0, 0);
  truncate_at_ = static_cast<off_t>(first.matrices[0].offset + (*reader)->expert_bytes_total() / 4);
  Outcome o = Run(Fault::kTruncate);
  if (o.status.ok()) {
    EXPECT_EQ(o.tokens, reference_) << "every expert it needed was still cached";
  } else {
    ExpectClearError(o, "truncated");
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, FaultsUnderTheEngine,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) { return IoBackendKindName(info.param); });

}  // namespace
}  // namespace sluice::testing
