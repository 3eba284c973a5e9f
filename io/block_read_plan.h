// How the weight cache reads one block into a slot: parts contiguous in the file are read
// together, every read is aligned outward to kIoAlignment (O_DIRECT), and the reads sit back to
// back in the slot. A block the archive wrote contiguously (gate|up|down, 4 KiB aligned) is one
// read; a routed FFN straight from GGUF (a slice of each of three *_exps tensors) is three.
//
// Non-goals: issuing the reads (io/weight_cache.cc). Thread-safety: pure function.
#pragma once

#include <array>
#include <cstdint>

#include "core/base/status.h"
#include "io/weight_block.h"

namespace sluice {

struct BlockRead {
  int file_index = 0;
  uint64_t offset = 0;       // file offset, aligned down to kIoAlignment
  uint64_t length = 0;       // aligned up to kIoAlignment (may run past the end of the file)
  uint64_t slot_offset = 0;  // where the read lands in the slot (aligned)
  uint64_t needed = 0;       // bytes of this read that must arrive (up to the last part byte)
};

struct BlockReadPlan {
  int n_reads = 0;
  std::array<BlockRead, kMaxBlockParts> reads;
  std::array<uint64_t, kMaxBlockParts> part_slot_offset{};  // by part index
  uint64_t slot_bytes = 0;                                  // sum of read lengths
  uint64_t data_bytes = 0;  // bytes of the parts themselves (slot_bytes minus alignment padding)
  // With a checksum: the hashed span [hash_slot_offset, + hash_bytes) (first to last part byte).
  bool has_checksum = false;
  uint64_t hash_slot_offset = 0;
  uint64_t hash_bytes = 0;
  uint64_t xxh3 = 0;
};

// Errors: no parts or more than kMaxBlockParts, a checksummed block whose parts are not one
// contiguous run (the checksum covers a single span), a part of 0 bytes, a read of more than
// kMaxIoRequestBytes, or an offset + size that overflows.
Result<BlockReadPlan> PlanBlockRead(const WeightBlock& block);

}  // namespace sluice
