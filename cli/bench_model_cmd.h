// The model benchmark of `sluice bench` (everything but --io-only, which cli/cmd_bench.cc runs
// itself): flags -> bench/bench_model.h runs -> bench/bench_report.h output. Kept in its own file
// so the two benchmarks of one command stay separate.
#pragma once

#include <string>
#include <vector>

#include "core/base/status.h"

namespace sluice::cli {

// Reads the flags listed in ModelBenchFlags(); returns the exit code.
int RunModelBenchCommand();

// The model the benchmark flags name: -m, --preset (written when missing) or the demo model.
Result<std::string> BenchModelPath();

// The flags RunModelBenchCommand reads, for the command's --help (a function: the command is
// registered during static initialisation, when another file's globals may not exist yet).
const std::vector<const char*>& ModelBenchFlags();

}  // namespace sluice::cli
