// Decoding a latent in overlapping tiles (the KL-VAE's --vae-tiling and TAESD's): each tile of
// `tile` latent pixels a side is decoded alone, and the tiles' images are blended linearly
// across their overlaps, as stable-diffusion.cpp's --vae-tiling and diffusers'
// enable_vae_tiling do. The decoder then needs the activations of one tile instead of the whole
// image. Not the same numbers as a whole decode: a tile's convolutions (and the VAE's mid-block
// attention) see only their tile, so tiles differ from the whole image near their edges; the
// blend hides the seams.
// Thread-safety: pure; `decode` is called once per tile, in row-major tile order.
#pragma once

#include <functional>
#include <vector>

#include "core/base/status.h"

namespace sluice::diffusion {

// Where tiles of `tile` start along an axis of n latent pixels: every tile - tile / 4, the last
// flush with the end ({0} when one tile covers it).
std::vector<int> TileStarts(int n, int tile);
int TileCount(int h, int w, int tile);

// Decodes latent (h * w, z_channels) of one tile (th * tw latent pixels) into image
// (8 th * 8 tw, out_channels).
using TileDecodeFn = std::function<Status(const float* latent, int th, int tw, float* image)>;

// latent (h * w, z_channels) -> image (8h * 8w, out_channels) through `decode` per tile of at
// most `tile` (>= 8) latent pixels a side, overlapping by a quarter. A tile that covers the
// latent decodes it whole (one call, the same bits as calling decode directly).
Status DecodeInTiles(const float* latent, int h, int w, int z_channels, int out_channels, int tile,
                     const TileDecodeFn& decode, float* image);

}  // namespace sluice::diffusion
