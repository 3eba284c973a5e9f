// ModelFile: what the engine needs from a model on disk, whatever the container.
// Two implementations: GgufModelFile (io/gguf_model_file.h: a GGUF, possibly split in shards, read
// as it is) and ArchiveModelFile (io/archive_reader.h: sluice's streaming archive).
//
// Dense tensors (attention, embeddings, norms, router, shared experts) are memory-mapped and
// exposed as pointers. Routed experts are NOT mapped for compute: the engine reads them through
// the expert cache (moe/expert_cache.h, over io/weight_cache.h), which asks LocateExpert() where
// each one lives.
//
// Thread-safety: all const methods may be called concurrently after Open() returns.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/ggml_type.h"
#include "io/metadata.h"

namespace sluice {

struct TensorInfo {
  std::string name;  // GGUF name, e.g. "blk.0.attn_q.weight"
  GgmlType type = GgmlType::kF32;
  int n_dims = 0;                         // 1..4
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // GGUF order: ne[0] = elements per row (innermost)
  uint64_t nbytes = 0;                    // bytes of the whole tensor
  const uint8_t* data = nullptr;  // mapped bytes of a dense tensor; nullptr for routed experts
  uint64_t xxh3 = 0;              // checksum of the bytes (archive only; 0 with has_checksum false)
  bool has_checksum = false;

  int64_t rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

// The three matrices of every routed expert of one layer, as 3-D tensors of shape
// (ne[0] = in, ne[1] = out, ne[2] = n_expert) exactly as GGUF's *_exps tensors describe them:
//   gate: (n_embd, n_ff, n_expert)   up: (n_embd, n_ff, n_expert)   down: (n_ff, n_embd, n_expert)
struct ExpertTensors {
  TensorInfo gate, up, down;  // data == nullptr
};

enum class ExpertMatrix : int { kGate = 0, kUp = 1, kDown = 2 };

// Where one (layer, expert)'s bytes live.
struct ExpertLocation {
  struct Extent {
    int file_index = 0;   // index into ModelFile::file_paths()
    uint64_t offset = 0;  // absolute byte offset in that file
    uint64_t bytes = 0;   // exact bytes of this expert's slice of the matrix
  };
  std::array<Extent, 3> matrices;  // indexed by ExpertMatrix
  // Archive: one xxh3-64 over the whole contiguous block (gate|up|down, block_bytes long starting
  // at matrices[kGate].offset). GGUF: no checksum.
  bool has_checksum = false;
  uint64_t xxh3 = 0;
};

class ModelFile {
 public:
  virtual ~ModelFile() = default;

  virtual const std::string& path() const = 0;
  // All files whose bytes this model uses (one per GGUF shard; one for an archive).
  virtual const std::vector<std::string>& file_paths() const = 0;
  virtual const Metadata& metadata() const = 0;

  // Dense (non-routed-expert) tensors, in file order, with mapped data.
  virtual const std::vector<TensorInfo>& dense_tensors() const = 0;
  const TensorInfo* FindDense(std::string_view name) const;

  // Routed experts: nullopt for a layer without routed experts (e.g. DeepSeek's dense layers).
  virtual std::optional<ExpertTensors> expert_tensors(int layer) const = 0;
  // CHECK-fails for a layer without experts or an expert id out of range (programmer error).
  virtual ExpertLocation LocateExpert(int layer, int expert) const = 0;
  // Total bytes of all routed experts (the streamed part of the model).
  virtual uint64_t expert_bytes_total() const = 0;
  // Total bytes of dense tensors (what must be resident).
  uint64_t dense_bytes_total() const;
  // The whole read-only mapping of file `file_index`, or nullptr when the implementation does not
  // map whole files. Used only by the naive mmap baseline (`sluice bench --compare mmap`), which
  // computes on experts straight from the page cache as llama.cpp does by default.
  virtual const uint8_t* mapped_file(int file_index) const {
    (void)file_index;
    return nullptr;
  }
};

}  // namespace sluice
