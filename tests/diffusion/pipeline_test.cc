// Text to image end to end on the tiny variants of the synthetic presets (every block and tensor
// name of SD 1.5, SD-Turbo and SDXL-Turbo at small widths): each loads as its family with the
// structure it was written with; the same seed gives the same image, at any thread count, and
// another seed another image; the random weights keep activations in range (the image is not
// flat or saturated); emphasis changes the conditioning only where weights are not 1; the PNG
// round-trips with its parameters; bad requests are refused with the reason.
#include "diffusion/pipeline.h"

#include <gtest/gtest.h>

#include <cmath>

#include "diffusion/png.h"
#include "io/safetensors_writer.h"
#include "synth/sd_synth.h"
#include "tests/support/temp_dir.h"

namespace sluice::diffusion {
namespace {

class Pipeline : public ::testing::TestWithParam<std::string> {
 protected:
  static std::string ModelPath(const std::string& preset) {
    static testing::TempDir* dir = new testing::TempDir();
    const std::string path = dir->File(preset + ".safetensors");
    static std::map<std::string, bool> written;
    if (!written[preset]) {
      auto p = FindSdPreset(preset, /*tiny=*/true);
      CHECK(p.ok()) << p.status().ToString();
      auto r = WriteSdCheckpoint(path, *p, {});
      CHECK(r.ok()) << r.status().ToString();
      written[preset] = true;
    }
    return path;
  }
  static std::unique_ptr<DiffusionModel> Load(const std::string& preset) {
    auto m = DiffusionModel::Load(ModelPath(preset), std::nullopt);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? std::move(*m) : nullptr;
  }
  static GenerateOptions Options() {
    GenerateOptions o;
    o.prompt = "a photo of a (cat:1.2) on a mat";
    o.negative_prompt = "blurry";
    o.width = 64;
    o.height = 64;
    o.steps = 3;
    o.cfg_scale = 5.0f;
    o.sampler = SamplerKind::kEulerAncestral;
    o.seed = 7;
    return o;
  }
};

TEST_P(Pipeline, LoadsAsTheFamilyItWasWrittenAs) {
  auto preset = FindSdPreset(GetParam(), true);
  ASSERT_TRUE(preset.ok());
  auto m = Load(GetParam());
  ASSERT_NE(m, nullptr);
  const DiffusionConfig& want = preset->config;
  const DiffusionConfig& got = m->config();
  EXPECT_EQ(got.family, want.family);
  EXPECT_EQ(got.unet.channel_mult, want.unet.channel_mult);
  EXPECT_EQ(got.unet.transformer_depth, want.unet.transformer_depth);
  EXPECT_EQ(got.unet.middle_depth, want.unet.middle_depth);
  EXPECT_EQ(got.unet.num_res_blocks, want.unet.num_res_blocks);
  EXPECT_EQ(got.unet.context_dim, want.unet.context_dim);
  EXPECT_EQ(got.unet.linear_proj, want.unet.linear_proj);
  EXPECT_EQ(got.unet.adm_in_channels, want.unet.adm_in_channels);
  EXPECT_EQ(got.vae.ch_mult, want.vae.ch_mult);
  EXPECT_FLOAT_EQ(got.vae.scale_factor, want.vae.scale_factor);
  ASSERT_EQ(got.encoders.size(), want.encoders.size());
  for (size_t i = 0; i < got.encoders.size(); ++i) {
    EXPECT_EQ(got.encoders[i].config.width, want.encoders[i].config.width);
    EXPECT_EQ(got.encoders[i].config.layers, want.encoders[i].config.layers);
    EXPECT_EQ(got.encoders[i].skip, want.encoders[i].skip);
    EXPECT_EQ(got.encoders[i].pad_id, want.encoders[i].pad_id);
  }
  // Every tensor of the file is one the networks read (besides SD 2.x's unused projection).
  auto specs = SdTensorSpecs(want);
  ASSERT_TRUE(specs.ok());
  EXPECT_EQ(m->checkpoint().tensors().size(), specs->size());
}

TEST_P(Pipeline, SameSeedSameImageAtAnyThreadCount) {
  auto m = Load(GetParam());
  ASSERT_NE(m, nullptr);
  auto two = ThreadPool::Create(2);
  auto one = ThreadPool::Create(1);
  GenerateTimings t;
  auto a = Generate(*m, Options(), two->get(), {}, &t);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(t.unet_evaluations, 3);
  auto b = Generate(*m, Options(), one->get(), {}, nullptr);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->rgb, b->rgb);
  GenerateOptions other = Options();
  other.seed = 8;
  auto c = Generate(*m, other, two->get(), {}, nullptr);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->rgb, c->rgb);
  // Sane activations: neither a flat image nor one clipped to black and white.
  double mean = 0, var = 0;
  int clipped = 0;
  for (uint8_t v : a->rgb) mean += v / static_cast<double>(a->rgb.size());
  for (uint8_t v : a->rgb) {
    var += (v - mean) * (v - mean) / a->rgb.size();
    clipped += v == 0 || v == 255;
  }
  EXPECT_GT(std::sqrt(var), 5.0);
  EXPECT_LT(clipped, static_cast<int>(a->rgb.size()) / 2);
}

INSTANTIATE_TEST_SUITE_P(Presets, Pipeline, ::testing::Values("sd15", "sd-turbo", "sdxl-turbo"));

TEST(PipelineDetails, EmphasisChangesTheConditioningOnlyWhereWeighted) {
  auto p = FindSdPreset("sd15", true);
  ASSERT_TRUE(p.ok());
  testing::TempDir dir;
  ASSERT_TRUE(WriteSdCheckpoint(dir.File("m.safetensors"), *p, {}).ok());
  auto m = DiffusionModel::Load(dir.File("m.safetensors"), std::nullopt);
  ASSERT_TRUE(m.ok());
  auto enc = [&](const std::string& s) {
    auto c = EncodePrompt(**m, s, false, 64, 64, nullptr, nullptr, nullptr);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? c->context : std::vector<float>();
  };
  EXPECT_EQ(enc("a cat"), enc("a (cat:1.0)"));
  EXPECT_NE(enc("a cat"), enc("a (cat:1.5)"));
  EXPECT_NE(enc("a cat"), enc("a dog"));
}

TEST(PipelineDetails, Sd2PredictionIsDetectedAndCanBeOverridden) {
  auto p = FindSdPreset("sd-turbo", true);
  ASSERT_TRUE(p.ok());
  testing::TempDir dir;
  ASSERT_TRUE(WriteSdCheckpoint(dir.File("m.safetensors"), *p, {}).ok());
  auto eps = DiffusionModel::Load(dir.File("m.safetensors"), std::nullopt);
  ASSERT_TRUE(eps.ok());
  EXPECT_EQ((*eps)->config().prediction, Prediction::kEps);  // as stable-diffusion.cpp says
  auto v = DiffusionModel::Load(dir.File("m.safetensors"), Prediction::kV);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ((*v)->config().prediction, Prediction::kV);
  GenerateOptions o;
  o.prompt = "x";
  o.width = o.height = 64;
  o.steps = 2;
  auto a = Generate(**eps, o, nullptr, {}, nullptr);
  auto b = Generate(**v, o, nullptr, {}, nullptr);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->rgb, b->rgb);
}

TEST(PipelineDetails, BadRequestsAndFilesAreRefused) {
  auto p = FindSdPreset("sd15", true);
  ASSERT_TRUE(p.ok());
  testing::TempDir dir;
  ASSERT_TRUE(WriteSdCheckpoint(dir.File("m.safetensors"), *p, {}).ok());
  auto m = DiffusionModel::Load(dir.File("m.safetensors"), std::nullopt);
  ASSERT_TRUE(m.ok());
  GenerateOptions o;
  o.prompt = "x";
  o.width = 100;  // not a multiple of 64
  o.height = 64;
  auto r = Generate(**m, o, nullptr, {}, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("multiples of 64"), std::string::npos)
      << r.status().ToString();
  o.width = 64;
  o.steps = 0;
  EXPECT_FALSE(Generate(**m, o, nullptr, {}, nullptr).ok());

  // A safetensors file that is no Stable Diffusion model.
  auto w = SafetensorsWriter::Create(dir.File("other.safetensors"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w->Declare("lm_head.weight", SafetensorsDtype::kF32, {2, 2}).ok());
  ASSERT_TRUE(w->Begin().ok());
  const float z[4] = {};
  ASSERT_TRUE(w->Write(z, sizeof(z)).ok());
  ASSERT_TRUE(w->Finish().ok());
  auto bad = DiffusionModel::Load(dir.File("other.safetensors"), std::nullopt);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(bad.status().message().find("other.safetensors"), std::string::npos);
}

TEST(PipelineDetails, PngRoundTripsWithItsParameters) {
  testing::TempDir dir;
  std::vector<uint8_t> rgb(16 * 8 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  const std::string params = "a cat\nNegative prompt: dog\nSteps: 3, Sampler: Euler a, Seed: 7";
  ASSERT_TRUE(WritePng(dir.File("a.png"), 16, 8, rgb, {{"parameters", params}}).ok());
  auto png = ReadPng(dir.File("a.png"));
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  EXPECT_EQ(png->width, 16);
  EXPECT_EQ(png->height, 8);
  EXPECT_EQ(png->rgb, rgb);
  ASSERT_EQ(png->text.size(), 1u);
  EXPECT_EQ(png->text[0].first, "parameters");
  EXPECT_EQ(png->text[0].second, params);
  EXPECT_EQ(dir.List().size(), 1u) << "no temporary file left";
  EXPECT_FALSE(WritePng(dir.path(), 16, 8, rgb, {}).ok()) << "a directory is not an output";
}

}  // namespace
}  // namespace sluice::diffusion
