#include "diffusion/tiles.h"

#include <algorithm>
#include <cstdint>

#include "core/base/check.h"

namespace sluice::diffusion {

std::vector<int> TileStarts(int n, int tile) {
  if (tile >= n) return {0};
  const int overlap = std::max(1, tile / 4);
  std::vector<int> starts;
  for (int s = 0;; s += tile - overlap) {
    if (s + tile >= n) {
      starts.push_back(n - tile);
      break;
    }
    starts.push_back(s);
  }
  return starts;
}

int TileCount(int h, int w, int tile) {
  return static_cast<int>(TileStarts(h, tile).size() * TileStarts(w, tile).size());
}

namespace {

// The blend weight of output pixel `y` (of `size` pixels) of tile `i` along an axis: a ramp from
// 0 to 1 across the overlap with each neighbour, 1 elsewhere. Neighbours' ramps sum to 1.
float Ramp(const std::vector<int>& starts, int i, int tile_px, int y) {
  float w = 1.0f;
  if (i > 0) {
    const int ov = (starts[i - 1] * 8 + tile_px) - starts[i] * 8;
    if (y < ov) w = std::min(w, (y + 0.5f) / ov);
  }
  if (i + 1 < static_cast<int>(starts.size())) {
    const int ov = (starts[i] * 8 + tile_px) - starts[i + 1] * 8;
    if (y >= tile_px - ov) w = std::min(w, (tile_px - y - 0.5f) / ov);
  }
  return w;
}

}  // namespace

Status DecodeInTiles(const float* latent, int h, int w, int zc, int oc, int tile,
                     const TileDecodeFn& decode, float* image) {
  CHECK(tile >= 8) << tile;
  if (tile >= h && tile >= w) return decode(latent, h, w, image);
  const int th = std::min(tile, h), tw = std::min(tile, w);
  const std::vector<int> ys = TileStarts(h, th), xs = TileStarts(w, tw);
  const int64_t W = static_cast<int64_t>(w) * 8;
  std::vector<float> acc(static_cast<size_t>(h) * 8 * W * oc, 0.0f), wsum(acc.size() / oc, 0.0f);
  std::vector<float> sub(static_cast<size_t>(th) * tw * zc),
      out(static_cast<size_t>(th) * 8 * tw * 8 * oc);
  for (size_t ty = 0; ty < ys.size(); ++ty) {
    for (size_t tx = 0; tx < xs.size(); ++tx) {
      for (int y = 0; y < th; ++y) {
        const float* src = latent + (static_cast<int64_t>(ys[ty] + y) * w + xs[tx]) * zc;
        std::copy(src, src + static_cast<int64_t>(tw) * zc,
                  sub.data() + static_cast<size_t>(y) * tw * zc);
      }
      RETURN_IF_ERROR(decode(sub.data(), th, tw, out.data()));
      for (int y = 0; y < th * 8; ++y) {
        const float wy = Ramp(ys, static_cast<int>(ty), th * 8, y);
        for (int x = 0; x < tw * 8; ++x) {
          const float wgt = wy * Ramp(xs, static_cast<int>(tx), tw * 8, x);
          const int64_t p = (static_cast<int64_t>(ys[ty]) * 8 + y) * W + xs[tx] * 8 + x;
          wsum[p] += wgt;
          for (int c = 0; c < oc; ++c) {
            acc[p * oc + c] += wgt * out[(static_cast<size_t>(y) * tw * 8 + x) * oc + c];
          }
        }
      }
    }
  }
  for (size_t p = 0; p < wsum.size(); ++p) {
    for (int c = 0; c < oc; ++c) image[p * oc + c] = acc[p * oc + c] / wsum[p];
  }
  return Status::Ok();
}

}  // namespace sluice::diffusion
