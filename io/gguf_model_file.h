// GgufModelFile: a GGUF model (one file or split shards, io/gguf_split.h) seen through the
// ModelFile interface, so the engine runs a GGUF exactly as the user has it, without conversion.
//
// Which tensors are routed experts, by name (`N` = layer):
//   blk.N.ffn_gate_exps.weight, blk.N.ffn_up_exps.weight, blk.N.ffn_down_exps.weight
//     3-D, ne = [in, out, n_expert]: expert e's slice of a matrix starts at
//     data + e * RowBytes(type, ne[0]) * ne[1] (experts are the outermost dimension).
//   blk.N.ffn_gate.E.weight, blk.N.ffn_up.E.weight, blk.N.ffn_down.E.weight (E = expert)
//     2-D, one tensor per expert, as older Mixtral converters wrote them; each is one slice.
//     expert_tensors() presents them as if stacked (names blk.N.ffn_gate_exps.weight, ...,
//     ne = [in, out, n_expert]), so the engine and the archive see a single naming.
// Every other tensor is dense and exposed with its mapped bytes (including shared experts and
// expert biases). A fused blk.N.ffn_gate_up_exps.weight is refused as Unsupported.
//
// Checked at Open: each expert layer has all three matrices, 3-D (or 2-D per expert with ids
// 0..n-1 and one type/shape per matrix), gate and up of equal shape, down transposed to them,
// the same expert count for all three. Errors name the file and tensor, expected and found.
// GGUF has no checksums: has_checksum is false everywhere.
//
// Non-goals: checking tensors against an architecture's config (moe/), reading experts (the
// expert cache reads the extents LocateExpert returns).
//
// Thread-safety: immutable after Open(); every method may be called concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/gguf_split.h"
#include "io/model_file.h"

namespace sluice {

class GgufModelFile : public ModelFile {
 public:
  // `path`: a GGUF, or any shard of a split GGUF.
  static Result<std::unique_ptr<GgufModelFile>> Open(const std::string& path);

  const std::string& path() const override { return model_->path(); }
  const std::vector<std::string>& file_paths() const override { return model_->shard_paths(); }
  const Metadata& metadata() const override { return model_->metadata(); }
  const std::vector<TensorInfo>& dense_tensors() const override { return dense_; }
  std::optional<ExpertTensors> expert_tensors(int layer) const override;
  ExpertLocation LocateExpert(int layer, int expert) const override;
  uint64_t expert_bytes_total() const override { return expert_bytes_total_; }
  const uint8_t* mapped_file(int file_index) const override;

  // Layers that have routed experts are 0..layer_limit()-1 at most.
  int layer_limit() const { return static_cast<int>(layers_.size()); }
  const GgufModel& gguf() const { return *model_; }

 private:
  struct Layer {
    ExpertTensors tensors;                  // 3-D view (synthesised for per-expert tensors)
    std::vector<ExpertLocation> locations;  // [n_expert]
  };
  GgufModelFile() = default;
  Status Classify();

  std::unique_ptr<GgufModel> model_;
  std::vector<TensorInfo> dense_;
  std::vector<std::optional<Layer>> layers_;  // indexed by layer
  uint64_t expert_bytes_total_ = 0;
};

}  // namespace sluice
