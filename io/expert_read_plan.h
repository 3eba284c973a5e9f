// How the expert cache reads one expert into a slot: matrices contiguous in the file are read
// together, every read is aligned outward to kIoAlignment (O_DIRECT), and the reads sit back to
// back in the slot. An archive expert (gate|up|down in one 4 KiB-aligned block) is one read; a
// GGUF expert (a slice of each of three *_exps tensors) is three.
//
// Non-goals: issuing the reads (io/expert_cache.cc). Thread-safety: pure function.
#pragma once

#include <array>
#include <cstdint>

#include "core/base/status.h"
#include "io/model_file.h"

namespace sluice {

struct ExpertRead {
  int file_index = 0;
  uint64_t offset = 0;       // file offset, aligned down to kIoAlignment
  uint64_t length = 0;       // aligned up to kIoAlignment (may run past the end of the file)
  uint64_t slot_offset = 0;  // where the read lands in the slot (aligned)
  uint64_t needed = 0;       // bytes of this read that must arrive (up to the last matrix byte)
};

struct ExpertReadPlan {
  int n_reads = 0;
  std::array<ExpertRead, 3> reads;
  std::array<uint64_t, 3> matrix_slot_offset{};  // by ExpertMatrix
  uint64_t slot_bytes = 0;                       // sum of read lengths
  // With a checksum: the hashed span [hash_slot_offset, + hash_bytes) (the block, gate..down).
  bool has_checksum = false;
  uint64_t hash_slot_offset = 0;
  uint64_t hash_bytes = 0;
  uint64_t xxh3 = 0;
};

// Errors: a checksummed expert whose matrices are not one contiguous run (the checksum covers a
// single span), or an extent of 0 or more than kMaxIoRequestBytes bytes.
Result<ExpertReadPlan> PlanExpertRead(const ExpertLocation& loc);

}  // namespace sluice
