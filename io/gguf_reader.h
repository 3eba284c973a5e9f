// GGUF reader: parses one GGUF file (version 2 or 3, little-endian) into its metadata, its tensor
// table and the position of every tensor's bytes, and keeps the file memory-mapped read-only.
//
// On-disk layout (all integers little-endian):
//   offset 0    char[4]  magic "GGUF"
//          4    uint32   version: 2 or 3 (same layout; 3 only added big-endian files, which we
//                        refuse; 1 had 32-bit counts and is refused as unsupported)
//          8    uint64   tensor_count
//         16    uint64   metadata_kv_count
//         24    kv[metadata_kv_count]  (io/metadata_codec.h: key string, uint32 type, value)
//               tensor_info[tensor_count]:
//                 uint64 name_length, char name[name_length]
//                 uint32 n_dims (1..4), uint64 ne[n_dims] (ne[0] = elements per row)
//                 uint32 ggml type id, uint64 offset (relative to the data section, a multiple
//                 of the alignment)
//               zero padding up to a multiple of `general.alignment` (uint32, default 32)
//   data_offset tensor data
//
// Every count, length, shape and offset is checked against the file size (with overflow-checked
// arithmetic) before it is used; a malformed file gives a Corrupt/Unsupported Status naming the
// file, the field and its byte offset. Nothing is ever read outside the file.
//
// Non-goals: writing (io/gguf_writer.h), split shards (io/gguf_split.h), deciding which tensors
// are routed experts (io/gguf_model_file.h).
//
// Thread-safety: ParseGguf is reentrant. A GgufFile is immutable after Open(); all its methods may
// be called concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/base/status.h"
#include "io/metadata.h"
#include "io/read_only_mapping.h"

namespace sluice {

inline constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr uint64_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;
inline constexpr std::string_view kGgufAlignmentKey = "general.alignment";

struct GgufTensorInfo {
  std::string name;
  GgmlType type = GgmlType::kF32;
  int n_dims = 0;                         // 1..4
  std::array<int64_t, 4> ne{1, 1, 1, 1};  // ne[0] = elements per row; unused dims are 1
  uint64_t relative_offset = 0;           // as stored: from the start of the data section
  uint64_t file_offset = 0;               // absolute: data_offset + relative_offset
  uint64_t nbytes = 0;                    // RowBytes(type, ne[0]) * ne[1] * ne[2] * ne[3]
  uint64_t info_offset = 0;               // where this tensor's info record starts (for errors)
};

// Everything the header says, with every tensor already checked to lie inside the file.
struct GgufLayout {
  uint32_t version = 0;
  uint64_t alignment = kGgufDefaultAlignment;
  Metadata metadata;
  std::vector<GgufTensorInfo> tensors;  // in file order
  uint64_t data_offset = 0;             // absolute start of the data section (aligned)
  uint64_t file_size = 0;
};

// Parses a whole GGUF image of `size` bytes held in memory. `source` names it in errors.
// Reads only inside [data, data + size).
Result<GgufLayout> ParseGguf(const uint8_t* data, uint64_t size, const std::string& source);

// One GGUF file, mapped read-only for as long as the object lives.
class GgufFile {
 public:
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return layout_.version; }
  uint64_t alignment() const { return layout_.alignment; }
  uint64_t data_offset() const { return layout_.data_offset; }
  uint64_t file_size() const { return layout_.file_size; }
  const Metadata& metadata() const { return layout_.metadata; }
  const std::vector<GgufTensorInfo>& tensors() const { return layout_.tensors; }

  // nullptr when absent.
  const GgufTensorInfo* FindTensor(std::string_view name) const;
  // The mapped bytes of `tensor` (one of tensors()): nbytes long, valid while this file lives.
  const uint8_t* TensorData(const GgufTensorInfo& tensor) const {
    return mapped_ + tensor.file_offset;
  }
  const uint8_t* mapped_data() const { return mapped_; }

 private:
  GgufFile() = default;

  std::string path_;
  GgufLayout layout_;
  std::unordered_map<std::string, size_t> index_;  // tensor name -> position in tensors()
  std::unique_ptr<ReadOnlyMapping> mapping_;
  const uint8_t* mapped_ = nullptr;  // mapping_->data()
};

}  // namespace sluice
