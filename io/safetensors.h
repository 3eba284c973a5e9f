// Safetensors reader: parses one .safetensors file (the format of Stable Diffusion checkpoints and
// diffusers folders) and keeps it memory-mapped read-only.
//
// Layout (huggingface/safetensors, docs "format"):
//   offset 0   uint64 little-endian N: the header's length in bytes
//          8   N bytes of UTF-8 JSON: an object whose keys are tensor names, each
//              {"dtype": "F16", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, plus an
//              optional "__metadata__" object of string -> string
//          8+N the data buffer; offsets are relative to its start, `end` exclusive
// Checked before anything is used, each failure naming the file, the tensor and what was expected:
// N within the file (and at most 100 MB, the reference's own limit), the header valid UTF-8 JSON,
// every dtype known, every dimension a non-negative integer, the element count times the dtype's
// size (overflow-checked) equal to end - begin, every range inside the buffer, no two tensors
// overlapping, no duplicate names. Like the reference implementation, a buffer with bytes no
// tensor covers is refused (a sign of a truncated or hand-edited file).
//
// Non-goals: writing (io/safetensors_writer.h), deciding what the tensors mean (diffusion/).
// Thread-safety: ParseSafetensors is reentrant; a SafetensorsFile is immutable after Open.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/status.h"
#include "io/read_only_mapping.h"

namespace sluice {

enum class SafetensorsDtype {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU8,
  kBool,
  kF8E4M3,
  kF8E5M2
};

// "F16" -> kF16 ...; false for unknown names.
bool ParseSafetensorsDtype(std::string_view name, SafetensorsDtype* out);
const char* SafetensorsDtypeName(SafetensorsDtype dtype);
int SafetensorsDtypeBytes(SafetensorsDtype dtype);

inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsTensor {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;  // as stored (row-major, outermost first); empty for a scalar
  uint64_t offset = 0;         // absolute file offset of the first byte
  uint64_t nbytes = 0;
  int64_t elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct SafetensorsLayout {
  std::vector<SafetensorsTensor> tensors;       // in data order
  std::map<std::string, std::string> metadata;  // __metadata__
  uint64_t data_offset = 0;                     // 8 + N
  uint64_t file_size = 0;
};

// Parses a whole file image of `size` bytes. `source` names it in errors.
Result<SafetensorsLayout> ParseSafetensors(const uint8_t* data, uint64_t size,
                                           const std::string& source);

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::vector<SafetensorsTensor>& tensors() const { return layout_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return layout_.metadata; }
  uint64_t file_size() const { return layout_.file_size; }
  // nullptr when absent.
  const SafetensorsTensor* Find(std::string_view name) const;
  // nbytes long, valid while the file lives.
  const uint8_t* Data(const SafetensorsTensor& t) const { return mapped_ + t.offset; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  SafetensorsLayout layout_;
  std::unordered_map<std::string, size_t> index_;
  std::unique_ptr<ReadOnlyMapping> mapping_;
  const uint8_t* mapped_ = nullptr;  // mapping_->data()
};

}  // namespace sluice
