// Checkpoint: the tensors of a Stable Diffusion model file, by name, whatever the container:
// single-file safetensors (the original key names: model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.* / conditioner.embedders.*) or GGUF as stable-diffusion.cpp writes it (the
// same names, any GGML type). Shapes are PyTorch's order (outermost first) for both.
//
// WeightReader turns names into what the networks compute on, checking each tensor's shape and
// type against what the network expects and failing with the file, the tensor, the expected and
// the found shape: Linear and convolution weights are views of the mapped bytes (no copy; F32,
// F16, BF16 and the quantized types the kernels support), vectors (biases, norms, embeddings
// looked up row by row) are converted to f32 copies it owns.
//
// Non-goals: the diffusers folder layout (its own key names; not supported yet), LoRA.
// Thread-safety: immutable after Open; a WeightReader is used by one thread while loading.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/base/status.h"
#include "core/ops/linear.h"
#include "diffusion/ops.h"
#include "io/gguf_reader.h"
#include "io/safetensors.h"

namespace sluice::diffusion {

struct CkptTensor {
  std::string name;
  bool supported = false;  // a type the kernels read (else: `dtype` says what it is)
  GgmlType type = GgmlType::kF32;
  std::string dtype;              // as the file names it ("F16", "q8_0", "I64")
  std::vector<int64_t> shape;     // PyTorch order
  const uint8_t* data = nullptr;  // in the file's mapping
  uint64_t offset = 0;            // in the file
  uint64_t nbytes = 0;
};

class Checkpoint {
 public:
  // By the file's first bytes: GGUF magic, else safetensors.
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& path);

  const std::string& path() const { return path_; }
  const CkptTensor* Find(std::string_view name) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  const std::vector<CkptTensor>& tensors() const { return tensors_; }
  uint64_t file_bytes() const { return file_bytes_; }
  // A safetensors __metadata__ value, or "" (GGUF: a string metadata value).
  std::string MetadataValue(const std::string& key) const;
  // Every string-valued metadata entry (safetensors __metadata__, GGUF string keys).
  std::vector<std::pair<std::string, std::string>> StringMetadata() const;
  // Returns the mapping's pages to the system (they stay in the page cache): what was read
  // through the mapping (loading, a token embedding's rows) stops counting in our RSS.
  void DropPages() const;

 private:
  Checkpoint() = default;
  std::string path_;
  std::unique_ptr<SafetensorsFile> safetensors_;
  std::unique_ptr<GgufFile> gguf_;
  std::vector<CkptTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  uint64_t file_bytes_ = 0;
  const uint8_t* mapped_ = nullptr;  // the whole file
};

// "[320, 4, 3, 3]".
std::string ShapeString(const std::vector<int64_t>& shape);

class WeightReader {
 public:
  explicit WeightReader(const Checkpoint& ckpt) : ckpt_(&ckpt) {}
  // A reader of no file: every request is recorded (name and shape, once each, in order) and
  // answered with placeholders the networks never compute on. `sluice synth` runs the networks'
  // Load functions with it to list exactly the tensors a checkpoint of a configuration has.
  static WeightReader Recorder() { return WeightReader(); }
  struct Requested {
    std::string name;
    std::vector<int64_t> shape;
  };
  const std::vector<Requested>& requested() const { return requested_; }

  // A (rows, cols) weight: shape [rows, cols] (or [rows, cols, 1, 1], a 1x1 convolution).
  Result<Matrix> Linear(const std::string& name, int64_t rows, int64_t cols);
  // A 1x1 convolution used as a Linear: shape [rows, cols, 1, 1] (a [rows, cols] tensor is
  // accepted when reading; recorded as the 4-D shape).
  Result<Matrix> Conv1x1(const std::string& name, int64_t rows, int64_t cols);
  // Rows [first, first + rows) of a [total_rows, cols] weight (OpenCLIP's fused in_proj).
  Result<Matrix> LinearRows(const std::string& name, int64_t total_rows, int64_t first,
                            int64_t rows, int64_t cols);
  // `prefix`.weight [c_out, c_in, k, k] and `prefix`.bias [c_out] (none when !bias).
  Result<Conv2dWeights> Conv(const std::string& prefix, int c_in, int c_out, int k,
                             bool bias = true);
  // A vector of n values as f32 (owned by the reader).
  Result<const float*> Vector(const std::string& name, int64_t n);
  // A [rows, cols] tensor as f32 rows (embedding tables), or transposed to [cols, rows].
  Result<const float*> Table(const std::string& name, int64_t rows, int64_t cols);
  Result<Matrix> TransposedF32(const std::string& name, int64_t rows, int64_t cols);

  // A (rows, cols) table read a few rows at a time (token embeddings): a view of the file's
  // mapping even when matrices are placed (below), so only the rows used are ever read.
  Result<Matrix> MappedRows(const std::string& name, int64_t rows, int64_t cols);

  // Bytes of f32 copies made so far.
  uint64_t owned_bytes() const { return owned_bytes_; }

  // Streaming (diffusion/weight_stream.h). A block is the tensors whose names start with
  // `prefix` (the longest registered prefix wins); the networks register one per unit of work
  // they compute at once, in the order they compute them, and keep its number. Returns the
  // number of a prefix registered before.
  int Block(const std::string& prefix);
  const std::vector<std::string>& blocks() const { return blocks_; }
  // Matrices (Linear, Conv, LinearRows) point at `base` + their file offset from now on: the
  // address range a stream reads each block into. Vectors are still copied from the mapping.
  void PlaceMatrices(const uint8_t* base) { placed_ = base; }

 private:
  WeightReader() = default;
  Result<const CkptTensor*> Get(const std::string& name, const std::vector<int64_t>& shape);
  Result<std::vector<float>*> ToF32(const CkptTensor& t);
  bool recording() const { return ckpt_ == nullptr; }

  const uint8_t* MatrixData(const CkptTensor& t) const {
    return placed_ != nullptr && !recording() ? placed_ + t.offset : t.data;
  }

  const Checkpoint* ckpt_ = nullptr;  // null: recording
  const uint8_t* placed_ = nullptr;
  std::vector<std::string> blocks_;
  std::unordered_map<std::string, int> block_index_;
  std::vector<Requested> requested_;
  std::deque<std::vector<float>> owned_;
  uint64_t owned_bytes_ = 0;
};

}  // namespace sluice::diffusion
