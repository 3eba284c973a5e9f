// Options outside their limits are errors that name the option, never an abort (issue 16:
// `--ctx 2^62` wrapped the KV cache size, passed the budget check and then threw in reserve).
#include <gtest/gtest.h>

#include "llm/engine.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

class EngineLimits : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(WriteTinyModel(path_, TinyModelSpec{}).ok()); }
  Status Open(EngineOptions o) {
    o.threads = 1;
    auto e = Engine::Open(path_, o);
    return e.ok() ? Status::Ok() : e.status();
  }
  TempDir dir_;
  const std::string path_ = dir_.File("m.gguf");
};

TEST_F(EngineLimits, HugeContextsAreRefusedWithAndWithoutABudget) {
  for (int64_t ctx : {int64_t{1} << 62, int64_t{1} << 60, kMaxContextLength + 1, int64_t{-5}}) {
    for (uint64_t ram : {uint64_t{0}, uint64_t{12} << 30}) {
      Status s = Open({.ram_budget_bytes = ram, .context_length = ctx});
      ASSERT_FALSE(s.ok()) << ctx;
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
      EXPECT_NE(s.message().find(std::to_string(ctx)), std::string::npos) << s.ToString();
    }
  }
  // The largest allowed context is planned, not wrapped: a budget that cannot hold its KV cache
  // says so with the numbers.
  Status s = Open({.ram_budget_bytes = uint64_t{1} << 30, .context_length = kMaxContextLength});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted) << s.ToString();
  EXPECT_NE(s.message().find("16777216 positions"), std::string::npos) << s.ToString();
}

TEST_F(EngineLimits, BatchSizeAndSequenceCountHaveLimits) {
  for (int batch : {0, -1, kMaxBatchSize + 1}) {
    Status s = Open({.batch_size = batch});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << batch << ": " << s.ToString();
  }
  for (int seqs : {0, kMaxSequences + 1}) {
    Status s = Open({.max_sequences = seqs});
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << seqs << ": " << s.ToString();
  }
  EXPECT_TRUE(Open({.context_length = 64, .batch_size = 1, .max_sequences = 4}).ok());
}

}  // namespace
}  // namespace sluice::testing
