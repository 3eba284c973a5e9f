#include "io/read_only_mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/mapped_files.h"

namespace sluice {

Result<std::unique_ptr<ReadOnlyMapping>> ReadOnlyMapping::Map(const std::string& path,
                                                              uint64_t min_size,
                                                              const std::string& what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(path, ": no such file");
    return IoError(path, ": open: ", ErrnoString(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return IoError(path, ": fstat: ", ErrnoString(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return InvalidArgument(path, ": not a regular file");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < min_size) {
    ::close(fd);
    return Corrupt(path, ": ", what, " at offset 0: needs ", min_size, " bytes, file has ", size);
  }
  void* mapped = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_err = errno;
  if (mapped == MAP_FAILED) {
    ::close(fd);
    return IoError(path, ": mmap of ", size, " bytes: ", ErrnoString(map_err));
  }
  std::unique_ptr<ReadOnlyMapping> m(new ReadOnlyMapping());
  m->data_ = static_cast<const uint8_t*>(mapped);
  m->size_ = size;
  m->fd_ = fd;
  m->handle_ = RegisterMappedFile(mapped, size, path, fd);
  return m;
}

ReadOnlyMapping::~ReadOnlyMapping() {
  UnregisterMappedFile(handle_);
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace sluice
