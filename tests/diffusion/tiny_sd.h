// Helpers the diffusion tests share: a tiny synthetic checkpoint of a preset, the generation
// options they run, and the smallest weight budget a checkpoint streams within.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "diffusion/pipeline.h"
#include "synth/sd_synth.h"
#include "tests/support/temp_dir.h"

namespace sluice::diffusion::testing_sd {

// Writes the tiny variant of `preset` (every block and tensor name, small widths) to `path`.
inline void WriteTinyCheckpoint(const std::string& preset, const std::string& path) {
  auto p = FindSdPreset(preset, /*tiny=*/true);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE(WriteSdCheckpoint(path, *p, {}).ok());
}

// 64x64, guided (CFG 5, a negative prompt), an emphasised prompt, euler_a.
inline GenerateOptions TinyOptions(uint64_t seed, int steps) {
  GenerateOptions o;
  o.prompt = "a photo of a (cat:1.2) on a mat";
  o.negative_prompt = "blurry";
  o.width = 64;
  o.height = 64;
  o.steps = steps;
  o.cfg_scale = 5.0f;
  o.sampler = SamplerKind::kEulerAncestral;
  o.seed = seed;
  return o;
}

// The plan's minimum weight budget (from a load whose budget holds everything); 0 on failure.
inline uint64_t MinWeightBudget(const std::string& path) {
  auto all = DiffusionModel::Load(path, DiffusionLoadOptions{.weight_budget = 1ull << 40});
  EXPECT_TRUE(all.ok()) << all.status().ToString();
  return all.ok() ? (*all)->stream()->plan().min_budget : 0;
}

}  // namespace sluice::diffusion::testing_sd
