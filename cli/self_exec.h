// Running this same binary as a child (`/proc/self/exe COMMAND ARGS...`), for commands that are
// compositions of other commands (`sluice demo`, the demo model's `sluice synth`). The child
// inherits stdin, stdout and stderr, so its streaming output and progress bars reach the user
// as they are produced.
// Thread-safety: call from the main thread (fork + wait).
#pragma once

#include <string>
#include <vector>

#include "core/base/status.h"

namespace sluice::cli {

// Runs `sluice args...` and waits. Returns the child's exit code (128 + signal when killed);
// an error only when the child could not be started or waited for.
Result<int> RunSelf(const std::vector<std::string>& args);

// "sluice synth --preset demo --out x" for messages.
std::string CommandLine(const std::vector<std::string>& args);

}  // namespace sluice::cli
