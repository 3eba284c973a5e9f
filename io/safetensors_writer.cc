#include "io/safetensors_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <set>

#include "core/base/saturating.h"
#include "io/output_file.h"

namespace sluice {

Result<SafetensorsWriter> SafetensorsWriter::Create(const std::string& path) {
  RETURN_IF_ERROR(CheckOutputPath(path));
  SafetensorsWriter w;
  w.path_ = path;
  return w;
}

SafetensorsWriter::SafetensorsWriter(SafetensorsWriter&& o) noexcept
    : path_(std::move(o.path_)),
      temp_path_(std::move(o.temp_path_)),
      fd_(o.fd_),
      metadata_(std::move(o.metadata_)),
      tensors_(std::move(o.tensors_)),
      data_bytes_(o.data_bytes_),
      header_bytes_(o.header_bytes_),
      written_(o.written_),
      begun_(o.begun_) {
  o.fd_ = -1;
  o.temp_path_.clear();
}

SafetensorsWriter::~SafetensorsWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

Status SafetensorsWriter::Declare(const std::string& name, SafetensorsDtype dtype,
                                  std::vector<int64_t> shape) {
  CHECK(!begun_) << "Declare after Begin";
  for (const SafetensorsTensor& t : tensors_) {
    if (t.name == name) return InvalidArgument(path_, ": tensor '", name, "' declared twice");
  }
  uint64_t bytes = static_cast<uint64_t>(SafetensorsDtypeBytes(dtype));
  for (int64_t d : shape) {
    if (d < 0) return InvalidArgument(path_, ": tensor '", name, "' has a negative dimension");
    bytes = SatMul(bytes, static_cast<uint64_t>(d));
  }
  if (bytes == UINT64_MAX || SatAdd(data_bytes_, bytes) == UINT64_MAX) {
    return InvalidArgument(path_, ": tensor '", name, "' is too large");
  }
  SafetensorsTensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.offset = data_bytes_;
  t.nbytes = bytes;
  data_bytes_ += bytes;
  tensors_.push_back(std::move(t));
  return Status::Ok();
}

uint64_t SafetensorsWriter::file_bytes() const { return 8 + header_bytes_ + data_bytes_; }

Status SafetensorsWriter::Begin() {
  CHECK(!begun_);
  nlohmann::ordered_json header;
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  for (const SafetensorsTensor& t : tensors_) {
    header[t.name] = {{"dtype", SafetensorsDtypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {t.offset, t.offset + t.nbytes}}};
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');
  header_bytes_ = text.size();
  ASSIGN_OR_RETURN(fd_, CreateTempOutput(path_, ".tmp-", &temp_path_));
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header_bytes_ >> (8 * i));
  begun_ = true;
  RETURN_IF_ERROR(Write(len, 8));
  RETURN_IF_ERROR(Write(text.data(), text.size()));
  written_ = 0;  // count data bytes only from here
  return Status::Ok();
}

Status SafetensorsWriter::Write(const void* data, uint64_t bytes) {
  CHECK(begun_ && fd_ >= 0);
  const char* p = static_cast<const char*>(data);
  uint64_t left = bytes;
  while (left > 0) {
    const ssize_t n = ::write(fd_, p, std::min<uint64_t>(left, 1 << 30));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(temp_path_, ": write: ", ErrnoString(errno));
    }
    p += n;
    left -= static_cast<uint64_t>(n);
  }
  written_ += bytes;
  return Status::Ok();
}

Status SafetensorsWriter::Finish() {
  CHECK(begun_ && fd_ >= 0);
  if (written_ != data_bytes_) {
    return Internal(path_, ": ", written_, " data bytes written, ", data_bytes_, " declared");
  }
  if (::fsync(fd_) != 0) return IoError(temp_path_, ": fsync: ", ErrnoString(errno));
  ::close(fd_);
  fd_ = -1;
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return IoError("rename ", temp_path_, " -> ", path_, ": ", ErrnoString(errno));
  }
  temp_path_.clear();
  return Status::Ok();
}

}  // namespace sluice
