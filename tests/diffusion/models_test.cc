// The networks against golden outputs an independent implementation computed
// (scripts/diffusion_golden.py: PyTorch's own conv2d, group_norm, layer_norm, softmax attention and
// interpolate on the same F16 weights, in float32): tiny configurations with the real block
// structure and tensor names of each family. CLIP (OpenAI and OpenCLIP layouts, last and
// penultimate layer, pooled projection), the UNet of SD 1.x (conv projections, fixed heads),
// SD 2.x (linear projections, 64-channel-style heads) and SDXL (no attention at the top level,
// transformer depth 2, the label embedding) on a batch of two at two timesteps, and the VAE
// decoder.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffusion/clip_text.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"
#include "tests/diffusion/diffusers_folder.h"
#include "tests/support/temp_dir.h"

namespace sluice::diffusion {
namespace {

std::string Golden(const std::string& name) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/diffusion/golden/" + name;
}

const nlohmann::json& Models() {
  static const nlohmann::json* j = [] {
    std::ifstream in(Golden("models.json"));
    std::stringstream ss;
    ss << in.rdbuf();
    return new nlohmann::json(nlohmann::json::parse(ss.str()));
  }();
  return *j;
}

std::vector<float> Floats(const nlohmann::json& j) { return j.get<std::vector<float>>(); }

// max |got - want| / (max |want|): one relative error over the whole output.
double RelError(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  return err / std::max(scale, 1e-30);
}

std::unique_ptr<Checkpoint> OpenGolden(const std::string& name) {
  auto c = Checkpoint::Open(Golden(name));
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? std::move(*c) : nullptr;
}

TEST(DiffusionModels, ClipOpenAiLastLayer) {
  auto ckpt = OpenGolden("clip_openai.safetensors");
  ASSERT_NE(ckpt, nullptr);
  WeightReader r(*ckpt);
  auto m = ClipTextModel::Load(r, {.layout = ClipLayout::kOpenAi,
                                   .prefix = "te.",
                                   .width = 32,
                                   .layers = 3,
                                   .heads = 2,
                                   .quick_gelu = true,
                                   .vocab = 1000});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const auto& g = Models()["clip_openai"];
  auto out = (*m)->Encode(g["ids"].get<std::vector<int32_t>>(), 0, true, false, nullptr);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_LT(RelError(out->hidden, Floats(g["hidden"])), 1e-5);
}

// The OpenCLIP golden encoder, penultimate layer + final norm and the pooled projection.
void ExpectOpenClipGolden(const std::string& file, ClipLayout layout, const std::string& prefix) {
  auto ckpt = OpenGolden(file);
  ASSERT_NE(ckpt, nullptr);
  WeightReader r(*ckpt);
  auto m = ClipTextModel::Load(r, {.layout = layout,
                                   .prefix = prefix,
                                   .width = 32,
                                   .layers = 3,
                                   .heads = 4,
                                   .quick_gelu = false,
                                   .projection_dim = 24,
                                   .vocab = 1000});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const auto& g = Models()["clip_openclip"];
  auto pool = ThreadPool::Create(2);
  auto out = (*m)->Encode(g["ids"].get<std::vector<int32_t>>(), 1, true, true, pool->get());
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_LT(RelError(out->hidden, Floats(g["hidden"])), 1e-5) << file;
  EXPECT_LT(RelError(out->pooled, Floats(g["pooled"])), 1e-5) << file;
}

TEST(DiffusionModels, ClipOpenClipPenultimateAndPooled) {
  ExpectOpenClipGolden("clip_openclip.safetensors", ClipLayout::kOpenClip, "te.");
}

// The same encoder in Hugging Face's names (a diffusers SDXL text_encoder_2: q/k/v split, the
// projection a Linear beside text_model), read in the OpenAI layout with GELU: the same outputs.
TEST(DiffusionModels, ClipOpenClipInHuggingFaceNames) {
  ExpectOpenClipGolden("clip_openclip_hf.safetensors", ClipLayout::kOpenAi, "text_model.");
}

UNetConfig TinyUNet(const std::string& name) {
  UNetConfig c;
  c.model_channels = 32;
  c.channel_mult = {1, 2};
  if (name == "sd1") {
    c.num_res_blocks = 1;
    c.transformer_depth = {1, 0};
    c.context_dim = 32;
    c.num_heads = 2;
  } else if (name == "sd2") {
    c.num_res_blocks = 1;
    c.transformer_depth = {1, 1};
    c.context_dim = 48;
    c.num_heads = 0;
    c.head_dim = 16;
    c.linear_proj = true;
  } else {
    c.num_res_blocks = 2;
    c.transformer_depth = {0, 2};
    c.middle_depth = 2;
    c.context_dim = 40;
    c.num_heads = 0;
    c.head_dim = 16;
    c.linear_proj = true;
    c.adm_in_channels = 24;
  }
  return c;
}

class UNetGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(UNetGolden, MatchesTheReference) {
  const std::string name = GetParam();
  auto ckpt = OpenGolden("unet_" + name + ".safetensors");
  ASSERT_NE(ckpt, nullptr);
  WeightReader r(*ckpt);
  auto u = UNet::Load(r, TinyUNet(name));
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  const auto& g = Models()["unet_" + name];
  const std::vector<float> x = Floats(g["x"]), ctx = Floats(g["context"]), y = Floats(g["y"]);
  const std::vector<double> t = g["t"].get<std::vector<double>>();
  const int n_ctx = 7;
  std::vector<float> out(x.size());
  auto pool = ThreadPool::Create(2);
  ASSERT_TRUE((*u)->Forward(x.data(), 2, 8, 8, t.data(), ctx.data(), n_ctx,
                            y.empty() ? nullptr : y.data(), out.data(), pool->get())
                  .ok());
  EXPECT_LT(RelError(out, Floats(g["out"])), 2e-5) << name;
  // One image alone gives the same bits as in the batch; one thread the same as two.
  std::vector<float> one(x.size() / 2);
  ASSERT_TRUE((*u)->Forward(x.data() + x.size() / 2, 1, 8, 8, t.data() + 1,
                            ctx.data() + ctx.size() / 2, n_ctx,
                            y.empty() ? nullptr : y.data() + y.size() / 2, one.data(), nullptr)
                  .ok());
  EXPECT_EQ(one, std::vector<float>(out.begin() + static_cast<std::ptrdiff_t>(out.size() / 2),
                                    out.end()));
}

INSTANTIATE_TEST_SUITE_P(Families, UNetGolden, ::testing::Values("sd1", "sd2", "sdxl"));

// The same UNets and VAE from a diffusers folder (their tensors under the names the golden script
// gives them, tests/diffusion/diffusers_folder.h): the names sluice maps back must be the ones the
// networks load, to the same outputs.
class DiffusersGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(DiffusersGolden, TheFolderGivesTheReferenceOutputs) {
  const std::string name = GetParam();
  testing::TempDir dir;
  testing_sd::WriteDiffusersFolder(dir.path(),
                                   {{Golden("unet_" + name + ".safetensors"), "unet_" + name},
                                    {Golden("vae.safetensors"), "vae"},
                                    {Golden("clip_openai.safetensors"), "clip_openai"}});
  auto ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ((*ckpt)->file_paths().size(), 3u);
  WeightReader r(**ckpt);
  auto u = UNet::Load(r, TinyUNet(name));
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  const auto& g = Models()["unet_" + name];
  const std::vector<float> x = Floats(g["x"]), ctx = Floats(g["context"]), y = Floats(g["y"]);
  const std::vector<double> t = g["t"].get<std::vector<double>>();
  std::vector<float> out(x.size());
  ASSERT_TRUE((*u)->Forward(x.data(), 2, 8, 8, t.data(), ctx.data(), 7,
                            y.empty() ? nullptr : y.data(), out.data(), nullptr)
                  .ok());
  EXPECT_LT(RelError(out, Floats(g["out"])), 2e-5) << name;
  VaeConfig c;
  c.ch = 32;
  c.ch_mult = {1, 2};
  c.num_res_blocks = 1;
  auto v = VaeDecoder::Load(r, c);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const auto& gv = Models()["vae"];
  const std::vector<float> lat = Floats(gv["latent"]);
  std::vector<float> img(8 * 8 * 3);
  ASSERT_TRUE((*v)->Decode(lat.data(), 4, 4, img.data(), nullptr).ok());
  EXPECT_LT(RelError(img, Floats(gv["image"])), 2e-5);
}

INSTANTIATE_TEST_SUITE_P(Families, DiffusersGolden, ::testing::Values("sd1", "sd2", "sdxl"));

TEST(DiffusionModels, VaeDecoder) {
  auto ckpt = OpenGolden("vae.safetensors");
  ASSERT_NE(ckpt, nullptr);
  WeightReader r(*ckpt);
  VaeConfig c;
  c.ch = 32;
  c.ch_mult = {1, 2};
  c.num_res_blocks = 1;
  auto v = VaeDecoder::Load(r, c);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  const auto& g = Models()["vae"];
  const std::vector<float> lat = Floats(g["latent"]);
  std::vector<float> img(8 * 8 * 3);
  ASSERT_TRUE((*v)->Decode(lat.data(), 4, 4, img.data(), nullptr).ok());
  EXPECT_LT(RelError(img, Floats(g["image"])), 2e-5);
}

TEST(DiffusionModels, AWrongShapeNamesTheTensorAndBothShapes) {
  auto ckpt = OpenGolden("vae.safetensors");
  ASSERT_NE(ckpt, nullptr);
  WeightReader r(*ckpt);
  VaeConfig c;
  c.ch = 64;  // not what the file has
  c.ch_mult = {1, 2};
  c.num_res_blocks = 1;
  auto v = VaeDecoder::Load(r, c);
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find(
                "vae.safetensors: tensor 'first_stage_model.decoder.conv_in.weight' has shape [64, "
                "4, 3, 3]; expected [128, 4, 3, 3]"),
            std::string::npos)
      << v.status().ToString();
}

}  // namespace
}  // namespace sluice::diffusion
