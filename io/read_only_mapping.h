// ReadOnlyMapping: a regular file opened and mapped read-only for as long as the object lives, and
// registered for the clear SIGBUS report should it shrink while mapped (core/base/mapped_files.h).
// What the GGUF and safetensors readers share: NotFound for a missing path, InvalidArgument for
// something that is not a regular file, Corrupt when the file is shorter than the format's
// smallest header (`what` names it in the message), IoError for the system calls.
//
// Thread-safety: immutable after Map.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/base/status.h"

namespace sluice {

class ReadOnlyMapping {
 public:
  static Result<std::unique_ptr<ReadOnlyMapping>> Map(const std::string& path, uint64_t min_size,
                                                      const std::string& what);
  ~ReadOnlyMapping();
  ReadOnlyMapping(const ReadOnlyMapping&) = delete;
  ReadOnlyMapping& operator=(const ReadOnlyMapping&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  ReadOnlyMapping() = default;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  int fd_ = -1;      // kept open so the size can be checked (CheckMappedFileSizes)
  int handle_ = -1;  // RegisterMappedFile
};

}  // namespace sluice
