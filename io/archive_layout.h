// ArchivePlan -> ArchiveLayout: what an archive will hold (declared by the caller before writing)
// and where every byte of it goes, computed up front so the writer can stream tensors and expert
// blocks to their final offsets in any order. Also serialises the index (header + metadata +
// directory) once the checksums are known. Byte layout: io/archive_format.h,
// docs/archive-format.md.
//
// Non-goals: writing files (io/archive_writer.h), reading them (io/archive_reader.h).
// Thread-safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/archive_format.h"
#include "io/metadata.h"
#include "io/model_file.h"

namespace sluice {

// One layer's routed experts, declared as GGUF declares its *_exps tensors.
struct ArchiveExpertLayerPlan {
  int layer = 0;  // block index ("blk.N")
  // gate/up/down: name, type, n_dims = 3, ne = (in, out, n_expert); every matrix's ne[2] must be
  // the same n_expert. nbytes, data and the checksum fields are ignored.
  ExpertTensors tensors;
};

struct ArchivePlan {
  Metadata metadata;              // written verbatim (GGUF KV encoding)
  std::vector<TensorInfo> dense;  // name, type, n_dims, ne; file order; names unique
  std::vector<ArchiveExpertLayerPlan> expert_layers;  // strictly increasing layer
};

struct ArchiveLayout {
  ArchiveHeader header{};                       // every field except index_xxh3
  std::string metadata_kv;                      // header.metadata_bytes bytes
  std::vector<DenseEntry> dense;                // xxh3 filled in by the writer
  std::vector<ExpertLayerEntry> expert_layers;  // in plan order
  std::string strings;                          // the directory's string table

  uint64_t index_bytes() const { return header.directory_offset + header.directory_bytes; }
  // Bytes the caller supplies: all dense tensors plus all expert blocks (padding excluded).
  uint64_t payload_bytes = 0;
};

// Validates the plan (unique non-empty names, known types, 1..4 dims, whole blocks per row,
// consistent expert counts, increasing layers) and computes every offset. Errors name the tensor.
Result<ArchiveLayout> ComputeArchiveLayout(const ArchivePlan& plan);

// Header + metadata + padding + directory (index_bytes() long) with `expert_xxh3` (one per expert
// block, in directory order) and index_xxh3 computed over the result.
std::string SerializeArchiveIndex(const ArchiveLayout& layout,
                                  const std::vector<uint64_t>& expert_xxh3);

// xxh3-64 of an index buffer with the index_xxh3 field read as zero (writer and reader share it).
uint64_t ComputeIndexXxh3(const uint8_t* index, uint64_t index_bytes);

}  // namespace sluice
