// Test helpers for tests/io: a scratch directory on the build disk, and random archives whose
// bytes are a pure function of (seed, tensor) so tests can recompute what any expert must hold.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/archive_writer.h"

namespace sluice::testing {

// A fresh directory under `parent` (default: $SLUICE_BINARY_DIR, i.e. the build dir on the real
// disk, where O_DIRECT works), removed with its contents on destruction.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent = "");
  ~ScratchDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes for (seed, a, b, c).
void FillBytes(uint64_t seed, uint64_t a, uint64_t b, uint64_t c, uint8_t* out, uint64_t bytes);

// XORs the byte at `offset` of `path` with `mask` in place (twice restores it). Test failures
// (not aborts) when the file cannot be read or written there.
void FlipByte(const std::string& path, uint64_t offset, uint8_t mask = 0x5a);

struct RandomArchiveSpec {
  uint64_t seed = 1;
  int n_dense = 3;
  std::vector<int> expert_layers = {0, 2};  // block indices with experts
  int n_expert = 5;
  int64_t n_embd = 37;  // odd sizes: i8 rows make matrices of odd byte counts
  int64_t n_ff = 23;
  GgmlType expert_type = GgmlType::kI8;
};

// The plan of a random archive (metadata includes general.architecture and block_count).
ArchivePlan RandomArchivePlan(const RandomArchiveSpec& spec);
// Writes it (experts in a shuffled order to exercise any-order writing).
Status WriteRandomArchive(const RandomArchiveSpec& spec, const std::string& path);
// Bytes of matrix k of (layer, expert) as WriteRandomArchive wrote them.
std::vector<uint8_t> ExpertMatrixBytes(const RandomArchiveSpec& spec, int layer, int expert, int k);
std::vector<uint8_t> DenseBytes(const RandomArchiveSpec& spec, int index);

}  // namespace sluice::testing
