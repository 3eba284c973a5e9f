// TAESD, the tiny decoder (diffusion/taesd.h), against the golden output PyTorch's own
// nn.Conv2d / nn.ReLU / nn.Upsample computed (scripts/diffusion_golden.py write_taesd: a decoder
// 8 channels wide, diffusers naming); the taesd_decoder naming (layer i + 1) loads the same
// network; tiles; errors naming the file and what was expected; a generation with --taesd
// streams bit for bit as it runs resident.
#include "diffusion/taesd.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffusion/pipeline.h"
#include "io/safetensors_writer.h"
#include "synth/sd_synth.h"
#include "tests/diffusion/tiny_sd.h"
#include "tests/support/temp_dir.h"

namespace sluice::diffusion {
namespace {

std::string Golden(const std::string& name) {
  return std::string(SLUICE_SOURCE_DIR) + "/tests/diffusion/golden/" + name;
}

nlohmann::json GoldenJson() {
  std::ifstream in(Golden("taesd.json"));
  std::stringstream ss;
  ss << in.rdbuf();
  return nlohmann::json::parse(ss.str());
}

TEST(Taesd, MatchesTheReference) {
  const nlohmann::json g = GoldenJson();
  auto d = TinyDecoder::Open(Golden("taesd.safetensors"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->z_channels(), 4);
  const std::vector<float> lat = g["latent"].get<std::vector<float>>();
  const std::vector<float> want = g["image"].get<std::vector<float>>();
  const int h = g["h"], w = g["w"];
  std::vector<float> img(static_cast<size_t>(64) * h * w * 3);
  ASSERT_EQ(img.size(), want.size());
  auto pool = ThreadPool::Create(2);
  ASSERT_TRUE(pool.ok());
  ASSERT_TRUE((*d)->Decode(lat.data(), h, w, img.data(), pool->get()).ok());
  double err = 0, scale = 0;
  for (size_t i = 0; i < img.size(); ++i) {
    err = std::max(err, std::fabs(static_cast<double>(img[i]) - want[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(want[i])));
  }
  EXPECT_LT(err / scale, 2e-5) << "max |diff| " << err << " of max |want| " << scale;
  // One thread: the same bits.
  std::vector<float> one(img.size());
  ASSERT_TRUE((*d)->Decode(lat.data(), h, w, one.data(), nullptr).ok());
  EXPECT_EQ(img, one);
}

// The golden file's tensors renamed as the original taesd_decoder names them (the clamp is layer
// 0, so every index is one more, no prefix): the same network, the same bits.
TEST(Taesd, TheOriginalNamingLoadsTheSameNetwork) {
  auto src = Checkpoint::Open(Golden("taesd.safetensors"));
  ASSERT_TRUE(src.ok());
  testing::TempDir dir;
  const std::string path = dir.File("taesd_decoder.safetensors");
  {
    auto w = SafetensorsWriter::Create(path);
    ASSERT_TRUE(w.ok());
    const std::string prefix = "decoder.layers.";
    for (const CkptTensor& t : (*src)->tensors()) {
      ASSERT_TRUE(t.name.starts_with(prefix)) << t.name;
      const std::string rest = t.name.substr(prefix.size());
      const size_t dot = rest.find('.');
      const std::string name =
          std::to_string(std::stoi(rest.substr(0, dot)) + 1) + rest.substr(dot);
      ASSERT_TRUE(w->Declare(name, SafetensorsDtype::kF16, t.shape).ok());
    }
    ASSERT_TRUE(w->Begin().ok());
    for (const CkptTensor& t : (*src)->tensors()) ASSERT_TRUE(w->Write(t.data, t.nbytes).ok());
    ASSERT_TRUE(w->Finish().ok());
  }
  auto a = TinyDecoder::Open(Golden("taesd.safetensors"));
  auto b = TinyDecoder::Open(path);
  ASSERT_TRUE(a.ok() && b.ok()) << b.status().ToString();
  const nlohmann::json g = GoldenJson();
  const std::vector<float> lat = g["latent"].get<std::vector<float>>();
  const int h = g["h"], w = g["w"];
  std::vector<float> x(static_cast<size_t>(64) * h * w * 3), y(x.size());
  ASSERT_TRUE((*a)->Decode(lat.data(), h, w, x.data(), nullptr).ok());
  ASSERT_TRUE((*b)->Decode(lat.data(), h, w, y.data(), nullptr).ok());
  EXPECT_EQ(x, y);
}

// Tiles: one that covers the latent is a whole decode; with smaller ones, a pixel only the first
// tile covers is that tile's own decode, and the output stays within the tiles' values.
TEST(Taesd, TilesOfTheLatent) {
  auto d = TinyDecoder::Open(Golden("taesd.safetensors"));
  ASSERT_TRUE(d.ok());
  const int h = 12, w = 20, tile = 8;
  std::vector<float> lat(static_cast<size_t>(h) * w * 4);
  for (size_t i = 0; i < lat.size(); ++i) lat[i] = std::sin(0.37f * static_cast<float>(i));
  const size_t px = static_cast<size_t>(64) * h * w;
  std::vector<float> whole(px * 3), covered(px * 3), tiled(px * 3);
  ASSERT_TRUE((*d)->Decode(lat.data(), h, w, whole.data(), nullptr).ok());
  ASSERT_TRUE((*d)->DecodeTiled(lat.data(), h, w, 32, covered.data(), nullptr).ok());
  EXPECT_EQ(whole, covered);
  ASSERT_TRUE((*d)->DecodeTiled(lat.data(), h, w, tile, tiled.data(), nullptr).ok());
  std::vector<float> first_lat(static_cast<size_t>(tile) * tile * 4);
  for (int y = 0; y < tile; ++y)
    for (int x = 0; x < tile * 4; ++x)
      first_lat[static_cast<size_t>(y) * tile * 4 + x] = lat[static_cast<size_t>(y) * w * 4 + x];
  std::vector<float> first(static_cast<size_t>(64) * tile * tile * 3);
  ASSERT_TRUE((*d)->Decode(first_lat.data(), tile, tile, first.data(), nullptr).ok());
  // Tiles start at 0 and 4 down, 0, 6 and 12 across: output pixels above 32 and left of 48 are
  // the first tile's alone.
  for (int y = 0; y < 32; ++y)
    for (int x = 0; x < 48; ++x)
      for (int c = 0; c < 3; ++c)
        ASSERT_EQ(tiled[(static_cast<size_t>(y) * w * 8 + x) * 3 + c],
                  first[(static_cast<size_t>(y) * tile * 8 + x) * 3 + c])
            << y << "," << x;
  EXPECT_EQ(TileCount(h, w, tile), 2 * 3);
}

TEST(Taesd, AFileWithoutTheDecoderIsRefusedNamingIt) {
  auto d = TinyDecoder::Open(Golden("vae.safetensors"));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("vae.safetensors: not a TAESD decoder: expected the tensor "
                                      "'decoder.layers.0.weight'"),
            std::string::npos)
      << d.status().ToString();
}

TEST(Taesd, SynthWritesWhatTheDecoderLoads) {
  testing::TempDir dir;
  const std::string path = dir.File("taesd.safetensors");
  auto bytes = WriteTaesdCheckpoint(path, {});
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto d = TinyDecoder::Open(path);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->z_channels(), 4);
  // 64 channels. Decoder: conv_in 4->64, 10 Blocks of three 64->64 3x3, three 64->64 upsample
  // convs without bias, conv_out 64->3. Encoder: conv 3->64, 10 Blocks, three stride-2 convs
  // without bias, conv 64->4. Every weight F16.
  const uint64_t conv64 = 64 * 64 * 9;
  const uint64_t decoder = (64 * 4 * 9 + 64) + 30 * (conv64 + 64) + 3 * conv64 + (3 * 64 * 9 + 3);
  const uint64_t encoder = (64 * 3 * 9 + 64) + 30 * (conv64 + 64) + 3 * conv64 + (4 * 64 * 9 + 4);
  const uint64_t params = decoder + encoder;
  const auto ckpt = Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok());
  uint64_t stored = 0;
  for (const CkptTensor& t : (*ckpt)->tensors()) stored += t.nbytes;
  EXPECT_EQ(stored, params * 2);
}

// A generation decoding with TAESD: the same image streamed at the smallest budget as resident,
// and not the VAE's image.
TEST(Taesd, GenerationStreamsBitForBit) {
  testing::TempDir dir;
  const std::string ckpt = dir.File("sd15.safetensors"), taesd = dir.File("taesd.safetensors");
  testing_sd::WriteTinyCheckpoint("sd15", ckpt);
  ASSERT_TRUE(WriteTaesdCheckpoint(taesd, {}).ok());
  const GenerateOptions o = testing_sd::TinyOptions(7, 2);
  auto resident = DiffusionModel::Load(ckpt, DiffusionLoadOptions{.taesd_path = taesd});
  ASSERT_TRUE(resident.ok()) << resident.status().ToString();
  ASSERT_NE((*resident)->tiny_decoder(), nullptr);
  auto a = Generate(**resident, o, nullptr, {}, nullptr);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  const uint64_t min = testing_sd::MinWeightBudget(ckpt);
  ASSERT_GT(min, 0u);
  auto streamed =
      DiffusionModel::Load(ckpt, DiffusionLoadOptions{.weight_budget = min, .taesd_path = taesd});
  ASSERT_TRUE(streamed.ok()) << streamed.status().ToString();
  auto b = Generate(**streamed, o, nullptr, {}, nullptr);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(a->rgb, b->rgb);
  auto vae_model = DiffusionModel::Load(ckpt, DiffusionLoadOptions{});
  ASSERT_TRUE(vae_model.ok());
  auto c = Generate(**vae_model, o, nullptr, {}, nullptr);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->rgb, c->rgb);
}

}  // namespace
}  // namespace sluice::diffusion
