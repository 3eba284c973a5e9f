// `sluice bench -m SD_CHECKPOINT`: text to image at several --ram budgets (--budgets, 0 = fully
// resident), one image each, between two measurements of the device's random-read bandwidth on
// the checkpoint file: seconds per image and per step, per component, peak RSS against the
// budget, bytes read per step, achieved read GB/s, time waiting on reads, the ratio to the
// resident run and to the step's bound max(resident step, bytes per step / device GB/s).
// --json prints one object (docs/bench.md); an SVG plots time against budget.
#pragma once

#include <string>
#include <vector>

namespace sluice::cli {

// Reads the flags listed in DiffusionBenchFlags(); returns the exit code.
int RunDiffusionBenchCommand(const std::string& path);
const std::vector<const char*>& DiffusionBenchFlags();

}  // namespace sluice::cli
