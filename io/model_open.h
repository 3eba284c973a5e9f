// OpenModelFile: opens a model whatever its container, by the magic in its first bytes:
//   "GGUF"      -> GgufModelFile (io/gguf_model_file.h; any shard of a split GGUF opens them all)
//   "SLUICEAR"  -> ArchiveReader (io/archive_reader.h)
// Anything else is an error naming the file and the bytes found. This is the one entry point the
// CLI and the engine use, so a command accepts either format without asking which.
//
// Thread-safety: reentrant.
#pragma once

#include <memory>
#include <string>

#include "core/base/status.h"
#include "io/model_file.h"

namespace sluice {

enum class ModelFormat { kGguf, kArchive };

// Sniffs the magic of `path` (NotFound, IoError, or Corrupt for an unknown magic).
Result<ModelFormat> DetectModelFormat(const std::string& path);

Result<std::unique_ptr<ModelFile>> OpenModelFile(const std::string& path);

}  // namespace sluice
