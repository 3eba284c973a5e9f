// SafetensorsWriter: writes a .safetensors file (layout in io/safetensors.h) tensor by tensor,
// for `sluice synth --format safetensors` and tests. The header is written first, so every
// tensor's name, dtype and shape is declared up front (Declare), then the data follows in the
// declared order (Write, possibly in pieces). The header is padded with spaces to a multiple of 8
// bytes, as the reference writer does, so the data starts aligned. The file goes to a locked
// temporary beside the final path and is renamed over it by Finish only when complete
// (io/output_file.h): an interrupted write never leaves a partial file under the final name.
//
// Thread-safety: none.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/safetensors.h"

namespace sluice {

class SafetensorsWriter {
 public:
  // Checks the output path (a regular file or absent).
  static Result<SafetensorsWriter> Create(const std::string& path);
  SafetensorsWriter(SafetensorsWriter&&) noexcept;
  SafetensorsWriter& operator=(SafetensorsWriter&&) = delete;
  ~SafetensorsWriter();  // removes an unfinished temporary file

  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  // Declares the next tensor (before Begin). InvalidArgument for a duplicate name or a size
  // that overflows.
  Status Declare(const std::string& name, SafetensorsDtype dtype, std::vector<int64_t> shape);
  // Writes the header; then Write the tensors' bytes in declared order.
  Status Begin();
  Status Write(const void* data, uint64_t bytes);
  // Checks every declared byte was written, syncs and renames into place.
  Status Finish();
  // Bytes of the whole file (known after the declarations).
  uint64_t file_bytes() const;

 private:
  SafetensorsWriter() = default;
  std::string path_, temp_path_;
  int fd_ = -1;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsTensor> tensors_;  // offsets relative to the data buffer
  uint64_t data_bytes_ = 0;
  uint64_t header_bytes_ = 0;
  uint64_t written_ = 0;
  bool begun_ = false;
};

}  // namespace sluice
