// `sluice bench --serve 1,2,4,8`: the serving benchmark (server/serve_bench.h) at each number of
// concurrent streams, each level on a fresh engine (the same cold cache) between two measurements
// of the device, printed with the bound and the ratios.
#pragma once

#include <vector>

namespace sluice::cli {

// Reads the flags listed in ServeBenchFlags(); returns the exit code.
int RunServeBenchCommand();
const std::vector<const char*>& ServeBenchFlags();

}  // namespace sluice::cli
