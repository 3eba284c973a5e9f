// PNG output (libpng): 8-bit RGB, with the generation parameters in a tEXt chunk named
// "parameters" the way AUTOMATIC1111 writes them (and ComfyUI, Civitai and others read them):
//   <prompt>
//   Negative prompt: <negative>                  (omitted when empty)
//   Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, Model: <name>, ...
// The file is written to a locked temporary beside the path and renamed over it only when
// complete (io/output_file.h): an interrupted run never leaves a partial PNG.
//
// Thread-safety: functions of the filesystem.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/base/status.h"

namespace sluice::diffusion {

// The PNG's bytes, in memory (the server's b64_json images). rgb: (height, width, 3). text:
// (keyword, text) chunks, Latin-1 keywords.
Result<std::string> EncodePng(int width, int height, const std::vector<uint8_t>& rgb,
                              const std::vector<std::pair<std::string, std::string>>& text);

// EncodePng's bytes written to `path` (temporary file, fsync, rename).
Status WritePng(const std::string& path, int width, int height, const std::vector<uint8_t>& rgb,
                const std::vector<std::pair<std::string, std::string>>& text);

// Reads a PNG back (8-bit RGB) with its text chunks, for tests and `sluice verify`-style checks.
struct PngImage {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;
  std::vector<std::pair<std::string, std::string>> text;
};
Result<PngImage> ReadPng(const std::string& path);

}  // namespace sluice::diffusion
