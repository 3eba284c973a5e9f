// Streaming a diffusion model within a weight budget (diffusion/weight_stream.h) on the tiny
// variants of the synthetic presets: at the smallest budget that works, one between and one that
// holds everything, every image equals the resident run's bit for bit, generation after
// generation and after a cancelled one; the stream is told each block's use in the order the
// networks make them (a mismatch would be an error); a budget below the minimum is refused
// naming it.
#include <gtest/gtest.h>

#include "diffusion/pipeline.h"
#include "tests/diffusion/tiny_sd.h"

namespace sluice::diffusion {
namespace {

class Stream : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    path_ = dir_.File("m.safetensors");
    testing_sd::WriteTinyCheckpoint(GetParam(), path_);
  }
  static GenerateOptions Options(uint64_t seed) { return testing_sd::TinyOptions(seed, 3); }
  testing::TempDir dir_;
  std::string path_;
};

TEST_P(Stream, ImagesEqualTheResidentRunAtEveryBudget) {
  auto pool = ThreadPool::Create(2);
  auto resident = DiffusionModel::Load(path_, std::nullopt);
  ASSERT_TRUE(resident.ok()) << resident.status().ToString();
  std::vector<std::vector<uint8_t>> want;
  for (uint64_t seed : {7, 8}) {
    auto img = Generate(**resident, Options(seed), pool->get(), {}, nullptr);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    want.push_back(img->rgb);
  }
  // The plan's minimum and total, from a budget that holds everything.
  auto all = DiffusionModel::Load(path_, DiffusionLoadOptions{.weight_budget = 1ull << 40});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  const StreamPlan whole = (*all)->stream()->plan();
  ASSERT_GT(whole.total_bytes, 0u);
  ASSERT_LT(whole.min_budget, whole.total_bytes);
  EXPECT_EQ(whole.resident_bytes, whole.total_bytes);
  for (uint64_t budget :
       {whole.min_budget, (whole.min_budget + whole.total_bytes) / 2, whole.total_bytes}) {
    auto m = DiffusionModel::Load(path_, DiffusionLoadOptions{.weight_budget = budget});
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    const DiffusionStream& s = *(*m)->stream();
    EXPECT_LE(s.plan().resident_bytes + s.plan().ring_bytes, budget);
    for (int i = 0; i < 2; ++i) {
      auto img = Generate(**m, Options(i == 0 ? 7 : 8), pool->get(), {}, nullptr);
      ASSERT_TRUE(img.ok()) << img.status().ToString();
      EXPECT_EQ(img->rgb, want[i]) << "budget " << budget << ", image " << i;
    }
    const OrderedStreamCounters c = s.counters();
    EXPECT_GT(c.bytes_read, 0u);
    EXPECT_EQ(c.read_errors + c.checksum_failures, 0u);
    if (budget == whole.min_budget) {
      // Something streams: more bytes read than the file's blocks once.
      EXPECT_GT(c.bytes_read, whole.total_bytes);
    } else if (budget == whole.total_bytes) {
      EXPECT_LE(c.bytes_read, whole.total_bytes);  // every block read once, then kept
    }
  }
}

TEST_P(Stream, ACancelledGenerationLeavesTheStreamReadyForTheNext) {
  auto pool = ThreadPool::Create(2);
  auto resident = DiffusionModel::Load(path_, std::nullopt);
  ASSERT_TRUE(resident.ok());
  auto want = Generate(**resident, Options(7), pool->get(), {}, nullptr);
  ASSERT_TRUE(want.ok());
  auto m = DiffusionModel::Load(
      path_, DiffusionLoadOptions{.weight_budget = testing_sd::MinWeightBudget(path_)});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  std::atomic<bool> cancel{false};
  GenerateHooks hooks;
  hooks.cancel = &cancel;
  hooks.on_step = [&](int step, int) {
    if (step >= 1) cancel = true;
  };
  auto stopped = Generate(**m, Options(7), pool->get(), hooks, nullptr);
  ASSERT_FALSE(stopped.ok());
  EXPECT_EQ(stopped.status().code(), StatusCode::kCancelled);
  auto img = Generate(**m, Options(7), pool->get(), {}, nullptr);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->rgb, want->rgb);
}

TEST_P(Stream, TiledDecodingStreamsTheDecoderOncePerTile) {
  auto pool = ThreadPool::Create(2);
  GenerateOptions o = Options(9);
  o.width = 192;
  o.height = 128;
  o.steps = 1;
  o.vae_tile = 8;  // 24 x 16 latent pixels: 4 x 3 tiles
  auto resident = DiffusionModel::Load(path_, std::nullopt);
  ASSERT_TRUE(resident.ok());
  auto want = Generate(**resident, o, pool->get(), {}, nullptr);
  ASSERT_TRUE(want.ok()) << want.status().ToString();
  auto m = DiffusionModel::Load(
      path_, DiffusionLoadOptions{.weight_budget = testing_sd::MinWeightBudget(path_)});
  ASSERT_TRUE(m.ok());
  const OrderedStreamCounters before = (*m)->stream()->counters();
  auto img = Generate(**m, o, pool->get(), {}, nullptr);
  ASSERT_TRUE(img.ok()) << img.status().ToString();
  EXPECT_EQ(img->rgb, want->rgb);
  const uint64_t uses = (*m)->stream()->counters().uses - before.uses;
  const int tiles = VaeDecoder::TileCount(16, 24, 8);
  EXPECT_EQ(tiles, 12);
  uint64_t expect = (*m)->unet().pass().size() + tiles * (*m)->vae().pass().size();
  for (size_t i = 0; i < (*m)->encoders().size(); ++i) {
    const TextEncoderSetup& e = (*m)->config().encoders[i];
    expect += 2 * (*m)->encoders()[i]->pass(e.skip, e.config.projection_dim > 0).size();
  }
  EXPECT_EQ(uses, expect);
}

TEST_P(Stream, QueueDepthAndBackendDoNotChangeTheImage) {
  auto pool = ThreadPool::Create(2);
  auto resident = DiffusionModel::Load(path_, std::nullopt);
  ASSERT_TRUE(resident.ok());
  auto want = Generate(**resident, Options(5), pool->get(), {}, nullptr);
  ASSERT_TRUE(want.ok());
  const uint64_t min = testing_sd::MinWeightBudget(path_);
  ASSERT_GT(min, 0u);
  for (IoBackendKind kind : {IoBackendKind::kPread, IoBackendKind::kAuto}) {
    for (int qd : {1, 4, 32}) {
      auto m = DiffusionModel::Load(
          path_,
          DiffusionLoadOptions{.weight_budget = min, .io = {.kind = kind, .queue_depth = qd}});
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      auto img = Generate(**m, Options(5), pool->get(), {}, nullptr);
      ASSERT_TRUE(img.ok()) << img.status().ToString();
      EXPECT_EQ(img->rgb, want->rgb) << IoBackendKindName(kind) << " QD " << qd;
    }
  }
}

TEST_P(Stream, ABudgetBelowTheMinimumIsRefusedNamingIt) {
  const uint64_t min = testing_sd::MinWeightBudget(path_);
  ASSERT_GT(min, 0u);
  auto m = DiffusionModel::Load(path_, DiffusionLoadOptions{.weight_budget = min - 4096});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(m.status().message().find("below the minimum"), std::string::npos)
      << m.status().ToString();
}

INSTANTIATE_TEST_SUITE_P(Presets, Stream, ::testing::Values("sd15", "sd-turbo", "sdxl-turbo"));

}  // namespace
}  // namespace sluice::diffusion
