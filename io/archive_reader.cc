#include "io/archive_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/base/byte_size.h"
#include "core/base/mapped_files.h"
#include "core/base/str_cat.h"
#include "io/archive_layout.h"
#include "io/metadata_codec.h"

namespace sluice {
namespace {

// Printable rendering of 8 magic bytes: "SLUICEAR" or "GGUF\x03\x00\x00\x00".
std::string ShowBytes(const char* bytes, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

Status ReadExact(int fd, const std::string& path, uint64_t offset, uint64_t bytes, void* dest) {
  uint64_t done = 0;
  while (done < bytes) {
    ssize_t n = pread(fd, static_cast<uint8_t*>(dest) + done, bytes - done,
                      static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return IoError(path, ": read of ", bytes, " bytes at offset ", offset,
                     " failed: ", ErrnoString(errno));
    }
    if (n == 0) {
      return Corrupt(path, ": truncated: expected ", bytes, " bytes at offset ", offset,
                     ", found end of file after ", done);
    }
    done += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

// "field 'dense_offset' (header offset 88): expected ..., found ..."
#define HEADER_FIELD(f) #f, offsetof(ArchiveHeader, f), header_.f

Status FieldError(const std::string& path, const char* field, size_t at, uint64_t found,
                  const std::string& expected) {
  return Corrupt(path, ": header field '", field, "' at offset ", at, ": expected ", expected,
                 ", found ", found);
}

}  // namespace

bool ArchiveReader::LooksLikeArchive(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char magic[sizeof(kArchiveMagic)] = {};
  ssize_t n = pread(fd, magic, sizeof(magic), 0);
  close(fd);
  return n == static_cast<ssize_t>(sizeof(magic)) &&
         std::memcmp(magic, kArchiveMagic, sizeof(magic)) == 0;
}

Result<std::unique_ptr<ArchiveReader>> ArchiveReader::Open(const std::string& path,
                                                           const ArchiveOpenOptions& options) {
  std::unique_ptr<ArchiveReader> r(new ArchiveReader());
  r->path_ = path;
  r->file_paths_ = {path};
  r->fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (r->fd_ < 0) {
    if (errno == ENOENT) return NotFound(path, ": no such file");
    return IoError(path, ": open failed: ", ErrnoString(errno));
  }
  struct stat st;
  if (fstat(r->fd_, &st) != 0) return IoError(path, ": fstat failed: ", ErrnoString(errno));
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  RETURN_IF_ERROR(r->ReadIndex(file_size));
  void* map = mmap(nullptr, file_size, PROT_READ, MAP_SHARED, r->fd_, 0);
  if (map == MAP_FAILED) {
    return IoError(path, ": mmap of ", file_size, " bytes failed: ", ErrnoString(errno));
  }
  r->map_ = static_cast<const uint8_t*>(map);
  r->map_bytes_ = file_size;
  r->mapped_handle_ = RegisterMappedFile(map, file_size, path, r->fd_);
  // Experts are read with O_DIRECT by the cache; tell the kernel not to read ahead around the
  // rare mapped access (verify, the mmap baseline) of that region.
  madvise(const_cast<uint8_t*>(r->map_) + r->header_.expert_offset, r->header_.expert_bytes,
          MADV_RANDOM);
  for (size_t i = 0; i < r->dense_.size(); ++i) {
    r->dense_[i].data = r->map_ + r->dense_entries_[i].offset;
    if (options.verify_dense) RETURN_IF_ERROR(r->VerifyDenseTensor(i));
  }
  return r;
}

ArchiveReader::~ArchiveReader() {
  UnregisterMappedFile(mapped_handle_);
  if (map_ != nullptr) munmap(const_cast<uint8_t*>(map_), map_bytes_);
  if (fd_ >= 0) close(fd_);
}

Status ArchiveReader::ReadIndex(uint64_t file_size) {
  if (file_size < sizeof(ArchiveHeader)) {
    return Corrupt(path_, ": truncated: the file is ", file_size, " bytes, shorter than the ",
                   sizeof(ArchiveHeader), "-byte archive header");
  }
  RETURN_IF_ERROR(ReadExact(fd_, path_, 0, sizeof(header_), &header_));
  if (std::memcmp(header_.magic, kArchiveMagic, sizeof(kArchiveMagic)) != 0) {
    return Corrupt(path_, ": bad magic at offset 0: expected '",
                   ShowBytes(kArchiveMagic, sizeof(kArchiveMagic)), "', found '",
                   ShowBytes(header_.magic, sizeof(header_.magic)),
                   "' (not a sluice archive; GGUF files start with 'GGUF')");
  }
  if (header_.version != kArchiveVersion) {
    return Unsupported(path_, ": archive format version at offset ",
                       offsetof(ArchiveHeader, version), ": expected ", kArchiveVersion, ", found ",
                       header_.version, " (re-create it with this build's convert)");
  }
  if (header_.header_bytes != sizeof(ArchiveHeader)) {
    return FieldError(path_, HEADER_FIELD(header_bytes), std::to_string(sizeof(ArchiveHeader)));
  }
  if (header_.metadata_offset != sizeof(ArchiveHeader)) {
    return FieldError(path_, HEADER_FIELD(metadata_offset), std::to_string(sizeof(ArchiveHeader)));
  }
  // Bound the index before allocating for it: each term is checked against the limit first so
  // the sums cannot overflow.
  const uint64_t limit = kArchiveMaxIndexBytes;
  if (header_.metadata_bytes > limit) {
    return FieldError(path_, HEADER_FIELD(metadata_bytes), StrCat("at most ", limit));
  }
  uint64_t expected_dir = AlignUp(header_.metadata_offset + header_.metadata_bytes, 8);
  if (header_.directory_offset != expected_dir) {
    return FieldError(path_, HEADER_FIELD(directory_offset), std::to_string(expected_dir));
  }
  if (header_.directory_bytes > limit ||
      header_.directory_offset + header_.directory_bytes > limit) {
    return FieldError(path_, HEADER_FIELD(directory_bytes), StrCat("at most ", limit));
  }
  const uint64_t index_end = header_.directory_offset + header_.directory_bytes;
  if (index_end > file_size) {
    return Corrupt(path_, ": truncated: header and directory end at offset ", index_end,
                   " but the file is ", file_size, " bytes");
  }
  std::string index(index_end, '\0');
  RETURN_IF_ERROR(ReadExact(fd_, path_, 0, index_end, index.data()));
  uint64_t found = ComputeIndexXxh3(reinterpret_cast<const uint8_t*>(index.data()), index_end);
  if (found != header_.index_xxh3) {
    return Corrupt(path_, ": header/metadata/directory checksum mismatch over bytes [0, ",
                   index_end, "): expected xxh3 ", Hex64(header_.index_xxh3), " (stored at offset ",
                   kIndexXxh3FieldOffset, "), found ", Hex64(found),
                   "; the archive's directory is corrupt");
  }
  // The index is intact: the remaining checks catch truncation and writer bugs.
  if (file_size != header_.file_bytes) {
    return Corrupt(path_, file_size < header_.file_bytes ? ": truncated" : ": wrong size",
                   ": the header (offset ", offsetof(ArchiveHeader, file_bytes),
                   ") says the file is ", header_.file_bytes, " bytes, found ", file_size,
                   " bytes");
  }
  uint64_t min_dense = AlignUp(index_end, kArchiveAlignment);
  if (header_.dense_offset != min_dense) {
    return FieldError(path_, HEADER_FIELD(dense_offset), std::to_string(min_dense));
  }
  if (header_.dense_bytes > file_size - header_.dense_offset) {
    return FieldError(path_, HEADER_FIELD(dense_bytes), StrCat("at most ", file_size - min_dense));
  }
  uint64_t min_expert = AlignUp(header_.dense_offset + header_.dense_bytes, kArchiveAlignment);
  if (header_.expert_offset != min_expert) {
    return FieldError(path_, HEADER_FIELD(expert_offset), std::to_string(min_expert));
  }
  if (header_.expert_offset > file_size ||
      header_.expert_bytes != file_size - header_.expert_offset) {
    return FieldError(path_, HEADER_FIELD(expert_bytes),
                      std::to_string(file_size - std::min(file_size, header_.expert_offset)));
  }
  uint64_t consumed = 0;
  ASSIGN_OR_RETURN(metadata_, DecodeMetadataKv(reinterpret_cast<const uint8_t*>(index.data()) +
                                                   header_.metadata_offset,
                                               header_.metadata_bytes, header_.metadata_count,
                                               path_, header_.metadata_offset, &consumed));
  if (consumed != header_.metadata_bytes) {
    return FieldError(path_, HEADER_FIELD(metadata_bytes),
                      StrCat(consumed, " (the bytes its ", header_.metadata_count, " pairs use)"));
  }
  return ParseDirectory(index);
}

}  // namespace sluice
