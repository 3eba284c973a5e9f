// ConvertGgufToArchive: repacks a GGUF model (one file or split shards) into a sluice archive
// (docs/archive-format.md): metadata verbatim, every dense tensor, and every routed expert as one
// contiguous 4 KiB-aligned block gate|up|down with an xxh3 checksum, so the engine then reads an
// expert with one O_DIRECT read and verifies it. Bytes are copied unchanged: no type conversion.
// `sluice convert` is a thin wrapper around this.
//
// Never leaves partial output: the ArchiveWriter writes under a temporary name, checks free space
// before writing (ResourceExhausted naming the need and what is free), and renames only on
// success; an error or a cancel deletes the temporary file.
//
// Non-goals: re-quantizing, archive -> GGUF. Thread-safety: one conversion per call; the
// function itself is reentrant.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/base/status.h"
#include "io/archive_writer.h"

namespace sluice {

struct ConvertOptions {
  // Called after each tensor and each expert with (payload bytes written, payload bytes total).
  std::function<void(uint64_t done, uint64_t total)> on_progress;
  // When it becomes true the conversion stops at the next tensor or expert with Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  ArchiveWriterOptions writer;  // free-space check, preallocation, fsync
};

struct ConvertStats {
  uint64_t dense_tensors = 0;
  uint64_t expert_layers = 0;
  uint64_t experts = 0;        // (layer, expert) blocks written
  uint64_t payload_bytes = 0;  // dense + expert bytes copied
  uint64_t file_bytes = 0;     // size of the archive
};

Result<ConvertStats> ConvertGgufToArchive(const std::string& gguf_path,
                                          const std::string& archive_path,
                                          const ConvertOptions& options = {});

}  // namespace sluice
