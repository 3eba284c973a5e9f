// The synthetic demo model that `sluice chat` and `sluice run` use when no -m is given (random
// weights: the text is gibberish by design; the expert I/O pattern is real).
//
// Where it lives, first match wins:
//   1. $SLUICE_DEMO_DIR/demo.sluice, when SLUICE_DEMO_DIR is set;
//   2. <repo>/demo/demo.sluice, when the binary runs from a build directory inside the repository
//      (found by walking up from /proc/self/exe to the directory holding demo.sh);
//   3. ./demo/demo.sluice under the current directory.
// When the file is missing it is written by running this same binary as
// `sluice synth --preset demo --out PATH` (a small archive, seconds to write), so the demo needs no
// download and no other setup.
//
// Non-goals: sizing the demo to the free disk (that is `sluice demo`'s bigger archive).
// Thread-safety: call from the main thread (it may fork and wait).
#pragma once

#include <string>

#include "core/base/status.h"

namespace sluice::cli {

// The synth preset written for the demo (synth/synth_presets.h).
inline constexpr const char* kDemoPreset = "demo";

struct DemoModel {
  std::string path;      // the archive to open
  bool created = false;  // true when this call wrote it
};

// The default location (rules above), whether or not the file exists.
std::string DemoModelPath();

// DemoModelPath(), written first when missing. Errors: the directory cannot be created, or the
// synth child failed (its exit code and the command line are in the message).
Result<DemoModel> EnsureDemoModel();

// The same for `sluice diffuse` without -m: a synthetic SD-Turbo-shaped checkpoint
// (demo/sd-turbo.safetensors, ~2.6 GB, random weights) written with `sluice synth --preset
// sd-turbo` when missing; ResourceExhausted naming the numbers when the disk cannot hold it.
Result<DemoModel> EnsureDiffusionDemoModel();

}  // namespace sluice::cli
