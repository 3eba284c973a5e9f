#include "io/model_open.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/archive_format.h"
#include "io/archive_reader.h"
#include "io/gguf_model_file.h"
#include "io/gguf_reader.h"

namespace sluice {
namespace {

std::string Escaped(const char* bytes, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += StrCat("\\x", "0123456789abcdef"[c >> 4], "0123456789abcdef"[c & 15]);
    }
  }
  return out;
}

}  // namespace

Result<ModelFormat> DetectModelFormat(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound(path, ": no such file");
    return IoError(path, ": open: ", ErrnoString(err));
  }
  char magic[8] = {};
  ssize_t n;
  do {
    n = ::pread(fd, magic, sizeof(magic), 0);
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (n < 0) return IoError(path, ": read: ", ErrnoString(err));
  const size_t got = static_cast<size_t>(n);
  if (got >= 4 && std::memcmp(magic, kGgufMagic, 4) == 0) return ModelFormat::kGguf;
  if (got >= sizeof(kArchiveMagic) &&
      std::memcmp(magic, kArchiveMagic, sizeof(kArchiveMagic)) == 0) {
    return ModelFormat::kArchive;
  }
  return Corrupt(path,
                 ": magic at offset 0: expected 'GGUF' (a GGUF model) or 'SLUICEAR' (a "
                 "sluice archive), found '",
                 Escaped(magic, got), "'", got < sizeof(magic) ? " (file too short)" : "");
}

Result<std::unique_ptr<ModelFile>> OpenModelFile(const std::string& path) {
  ASSIGN_OR_RETURN(const ModelFormat format, DetectModelFormat(path));
  switch (format) {
    case ModelFormat::kGguf: {
      ASSIGN_OR_RETURN(std::unique_ptr<GgufModelFile> file, GgufModelFile::Open(path));
      return std::unique_ptr<ModelFile>(std::move(file));
    }
    case ModelFormat::kArchive: {
      ASSIGN_OR_RETURN(std::unique_ptr<ArchiveReader> file, ArchiveReader::Open(path));
      return std::unique_ptr<ModelFile>(std::move(file));
    }
  }
  return Internal(path, ": unhandled model format");
}

}  // namespace sluice
