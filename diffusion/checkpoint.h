// Checkpoint: the tensors of a Stable Diffusion model, by name, whatever the container:
// single-file safetensors (the original key names: model.diffusion_model.*, first_stage_model.*,
// cond_stage_model.* / conditioner.embedders.*), GGUF as stable-diffusion.cpp writes it (the
// same names, any GGML type), or a diffusers folder (unet/, vae/, text_encoder/,
// text_encoder_2/, each a safetensors file, fp16 variants too; its names are mapped to the
// original ones by diffusion/diffusers_names.h, so the networks see one naming). Shapes are
// PyTorch's order (outermost first).
//
// WeightReader turns names into what the networks compute on, checking each tensor's shape and
// type against what the network expects and failing with the file, the tensor, the expected and
// the found shape: Linear and convolution weights are views of the mapped bytes (no copy; F32,
// F16, BF16 and the quantized types the kernels support), vectors (biases, norms, embeddings
// looked up row by row) are converted to f32 copies it owns.
//
// Non-goals: LoRA; diffusers folders in .bin (pickle) files.
// Thread-safety: immutable after Open; a WeightReader is used by one thread while loading.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
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
  uint64_t offset = 0;            // in its file
  uint64_t nbytes = 0;
  int file = 0;                // index into Checkpoint::file_paths()
  uint64_t placed_offset = 0;  // in the files laid end to end (file_bytes() in all)
};

class Checkpoint {
 public:
  // A directory is a diffusers folder; a file is GGUF by its magic, else safetensors.
  static Result<std::unique_ptr<Checkpoint>> Open(const std::string& path);

  const std::string& path() const { return path_; }  // the file or the folder
  // The files the tensors are in (one, or a folder's components: unet first).
  const std::vector<std::string>& file_paths() const { return file_paths_; }
  // Where each file starts when they are laid end to end, page aligned (CkptTensor::
  // placed_offset = base + offset): the streaming layer's placed region.
  const std::vector<uint64_t>& file_bases() const { return file_bases_; }
  // The largest file (the UNet's): where to measure the device.
  const std::string& largest_file() const { return largest_file_; }
  uint64_t largest_file_bytes() const { return largest_file_bytes_; }
  // A diffusers folder's tokenizer/merges.txt, or "".
  const std::string& tokenizer_merges() const { return tokenizer_merges_; }
  const CkptTensor* Find(std::string_view name) const;
  bool Has(std::string_view name) const { return Find(name) != nullptr; }
  const std::vector<CkptTensor>& tensors() const { return tensors_; }
  // The file's bytes; a folder's files laid end to end (file_bases()).
  uint64_t file_bytes() const { return file_bytes_; }
  // A safetensors __metadata__ value, or "" (GGUF: a string metadata value). A diffusers folder
  // adds "diffusers.<component>.<key>" for the string values of each component's config.json
  // (text_encoder.hidden_act, ...).
  std::string MetadataValue(const std::string& key) const;
  // Every string-valued metadata entry (safetensors __metadata__, GGUF string keys).
  std::vector<std::pair<std::string, std::string>> StringMetadata() const;
  // Returns the mapping's pages to the system (they stay in the page cache): what was read
  // through the mapping (loading, a token embedding's rows) stops counting in our RSS.
  void DropPages() const;

 private:
  Checkpoint() = default;
  // Appends the tensors of one file, renamed by `rename` (null: as they are).
  Status AddFile(
      const std::string& path,
      const std::function<std::vector<std::string>(const std::vector<std::string>&)>& rename);
  static Result<std::unique_ptr<Checkpoint>> OpenDiffusers(const std::string& dir);

  struct File {
    std::unique_ptr<SafetensorsFile> safetensors;
    std::unique_ptr<GgufFile> gguf;
    const uint8_t* mapped = nullptr;  // the whole file
    uint64_t bytes = 0;
  };
  std::string path_;
  std::vector<File> files_;
  std::vector<std::string> file_paths_;
  std::vector<uint64_t> file_bases_;
  std::string largest_file_, tokenizer_merges_;
  uint64_t largest_file_bytes_ = 0;
  std::vector<CkptTensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::pair<std::string, std::string>> folder_metadata_;
  uint64_t file_bytes_ = 0;
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
    return placed_ != nullptr && !recording() ? placed_ + t.placed_offset : t.data;
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
