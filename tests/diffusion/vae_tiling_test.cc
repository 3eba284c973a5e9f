// The VAE's tiled decode (VaeDecoder::DecodeTiled) on the tiny SD 1.5 preset's decoder: a tile
// that covers the latent gives the whole decode's bits; with several tiles, every output pixel
// that one tile alone covers is that tile's own decode, and every pixel in an overlap lies between
// the decodes of the tiles that cover it (a convex blend), so seams are blended, never invented.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "diffusion/pipeline.h"
#include "synth/sd_synth.h"
#include "tests/support/temp_dir.h"

namespace sluice::diffusion {
namespace {

TEST(VaeTiling, TilesBlendTheirOwnDecodes) {
  testing::TempDir dir;
  auto p = FindSdPreset("sd15", /*tiny=*/true);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(WriteSdCheckpoint(dir.File("m.safetensors"), *p, {}).ok());
  auto m = DiffusionModel::Load(dir.File("m.safetensors"), std::nullopt);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const VaeDecoder& vae = (*m)->vae();
  const int h = 20, w = 14, zc = vae.config().z_channels, oc = vae.config().out_channels;
  std::mt19937 rng(3);
  std::normal_distribution<float> n01;
  std::vector<float> lat(static_cast<size_t>(h) * w * zc);
  for (float& v : lat) v = n01(rng);
  const size_t n_out = static_cast<size_t>(h) * 8 * w * 8 * oc;
  std::vector<float> whole(n_out), one(n_out);
  ASSERT_TRUE(vae.Decode(lat.data(), h, w, whole.data(), nullptr).ok());
  ASSERT_TRUE(vae.DecodeTiled(lat.data(), h, w, 20, one.data(), nullptr).ok());
  EXPECT_EQ(whole, one);  // one tile covers it

  const int tile = 8;
  std::vector<float> tiled(n_out);
  ASSERT_TRUE(vae.DecodeTiled(lat.data(), h, w, tile, tiled.data(), nullptr).ok());
  const std::vector<int> ys = VaeDecoder::TileStarts(h, tile), xs = VaeDecoder::TileStarts(w, tile);
  ASSERT_GT(ys.size(), 2u);
  ASSERT_GT(xs.size(), 1u);
  EXPECT_EQ(VaeDecoder::TileCount(h, w, tile), static_cast<int>(ys.size() * xs.size()));
  // Each tile decoded alone.
  struct Tile {
    int y0, x0;
    std::vector<float> out;
  };
  std::vector<Tile> tiles;
  for (int y0 : ys) {
    for (int x0 : xs) {
      std::vector<float> sub(static_cast<size_t>(tile) * tile * zc);
      for (int y = 0; y < tile; ++y)
        for (int x = 0; x < tile; ++x)
          for (int c = 0; c < zc; ++c)
            sub[(static_cast<size_t>(y) * tile + x) * zc + c] =
                lat[(static_cast<size_t>(y0 + y) * w + x0 + x) * zc + c];
      Tile t{y0, x0, std::vector<float>(static_cast<size_t>(tile) * 8 * tile * 8 * oc)};
      ASSERT_TRUE(vae.Decode(sub.data(), tile, tile, t.out.data(), nullptr).ok());
      tiles.push_back(std::move(t));
    }
  }
  int single = 0, blended = 0;
  for (int py = 0; py < h * 8; ++py) {
    for (int px = 0; px < w * 8; ++px) {
      for (int c = 0; c < oc; ++c) {
        float lo = 1e30f, hi = -1e30f;
        int covering = 0;
        for (const Tile& t : tiles) {
          const int y = py - t.y0 * 8, x = px - t.x0 * 8;
          if (y < 0 || x < 0 || y >= tile * 8 || x >= tile * 8) continue;
          const float v = t.out[(static_cast<size_t>(y) * tile * 8 + x) * oc + c];
          lo = std::min(lo, v);
          hi = std::max(hi, v);
          ++covering;
        }
        const float got = tiled[(static_cast<size_t>(py) * w * 8 + px) * oc + c];
        ASSERT_GE(covering, 1);
        if (covering == 1) {
          EXPECT_EQ(got, lo) << py << "," << px;
          ++single;
        } else {
          const float eps = 1e-5f * std::max(1.0f, std::abs(hi));
          EXPECT_GE(got, lo - eps) << py << "," << px;
          EXPECT_LE(got, hi + eps) << py << "," << px;
          ++blended;
        }
      }
    }
  }
  EXPECT_GT(single, 0);
  EXPECT_GT(blended, 0);
}

}  // namespace
}  // namespace sluice::diffusion
