// The model files sluice has mapped, for the one failure a mapping cannot report as a Status: the
// file shrinking underneath it (another process truncating or rewriting the model while sluice
// runs). Touching a page past the new end raises SIGBUS; InstallMappedFileFaultHandler() turns
// that into a clear error naming the file and the offset (then exits, since the access cannot be
// resumed), instead of a bare "Bus error". The engine also compares the files' sizes between
// steps (CheckMappedFileSizes), so a truncation between two tokens is an ordinary error.
//
// Thread-safety: Register/Unregister from any thread (a mutex); the handler reads the table
// lock-free (entries are published with release stores and never reused while mapped).
#pragma once

#include <cstdint>
#include <string>

#include "core/base/status.h"

namespace sluice {

// At most this many files are tracked at once (GGUF shards + archives of one process).
inline constexpr int kMaxMappedFiles = 256;

// Records [base, base + bytes) as a mapping of `path` (opened as `fd` for size checks, or -1).
// Returns a handle for Unregister, or -1 when the table is full (the mapping is then not covered).
int RegisterMappedFile(const void* base, uint64_t bytes, const std::string& path, int fd);
void UnregisterMappedFile(int handle);

// Corrupt naming the file when a registered file (with an fd) is now smaller than its mapping.
Status CheckMappedFileSizes();

// SIGBUS inside a registered mapping: prints "sluice: error: <path> shrank while mapped: the page
// at offset N is gone ..." and exits with status 1. Other SIGBUS: the default action.
void InstallMappedFileFaultHandler();

}  // namespace sluice
