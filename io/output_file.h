// The files sluice writes (archives, GGUF shards) go through a temporary file beside the final
// path, renamed over it only when complete. This file holds the rules around that:
//   - the final path must be a regular file or not exist: `convert in.gguf /dev/null` as root
//     used to rename a regular file over /dev/null;
//   - the temporary file is held under an exclusive flock while it is written, so a later run
//     can tell a partial file left by a killed run (SIGKILL, power loss) from one being written
//     right now, and removes the former (saying so) before it writes;
//   - the checks run before any expensive work.
//
// Thread-safety: functions of the filesystem; safe to call from any thread.
#pragma once

#include <string>

#include "core/base/status.h"

namespace sluice {

// InvalidArgument when `path` exists and is not a regular file (a directory, a device, a FIFO),
// or when its directory does not exist. Symlinks are followed (a link to a regular file is fine).
Status CheckOutputPath(const std::string& path);

// Removes `<path><marker>XXXXXX` files beside `path` that no process holds a lock on (partial
// files of interrupted runs), logging each with its size. marker: ".tmp-" (archives) or ".tmp."
// (GGUF shards).
void RemoveStaleTempFiles(const std::string& path, const std::string& marker);

// Creates `<path><marker>XXXXXX` (mode 0644, O_CLOEXEC), locked with flock(LOCK_EX) until closed.
// Returns the fd and sets *temp_path. Runs CheckOutputPath and RemoveStaleTempFiles first.
Result<int> CreateTempOutput(const std::string& path, const std::string& marker,
                             std::string* temp_path);

}  // namespace sluice
