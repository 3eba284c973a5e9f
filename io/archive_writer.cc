#include "io/archive_writer.h"

#include "io/output_file.h"

#define XXH_STATIC_LINKING_ONLY
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/base/byte_size.h"
#include "core/base/log.h"

namespace sluice {
namespace {

// Zeros for the <= 63 padding bytes between matrices of an expert block.
const uint8_t kZeros[kArchiveTensorAlignment] = {};

std::string DirectoryOf(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

Status CheckFreeSpace(const std::string& path, uint64_t need) {
  std::string dir = DirectoryOf(path);
  struct statvfs vfs;
  if (statvfs(dir.c_str(), &vfs) != 0) {
    return IoError(path, ": statvfs(", dir, ") failed: ", ErrnoString(errno));
  }
  uint64_t have = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (have < need) {
    return ResourceExhausted(path, ": not enough free space: need ", FormatBytes(need), " (", need,
                             " bytes), have ", FormatBytes(have), " on ", dir);
  }
  return Status::Ok();
}

Status SyncDirectory(const std::string& dir) {
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return IoError(dir, ": open for fsync failed: ", ErrnoString(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  if (rc != 0) return IoError(dir, ": fsync failed: ", ErrnoString(err));
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<ArchiveWriter>> ArchiveWriter::Create(const std::string& path,
                                                             ArchivePlan plan,
                                                             const ArchiveWriterOptions& options) {
  ASSIGN_OR_RETURN(ArchiveLayout layout, ComputeArchiveLayout(plan));
  RETURN_IF_ERROR(CheckOutputPath(path));
  if (options.check_free_space) RETURN_IF_ERROR(CheckFreeSpace(path, layout.header.file_bytes));
  std::unique_ptr<ArchiveWriter> w(new ArchiveWriter(path, std::move(layout)));
  w->sync_ = options.sync;
  ASSIGN_OR_RETURN(w->fd_, CreateTempOutput(path, ".tmp-", &w->temp_path_));
  const uint64_t size = w->file_bytes();
  if (options.preallocate) {
    int rc = posix_fallocate(w->fd_, 0, static_cast<off_t>(size));
    if (rc == ENOSPC) {
      return ResourceExhausted(w->temp_path_, ": fallocate of ", FormatBytes(size),
                               " failed: ", ErrnoString(rc));
    }
    // Other failures (EOPNOTSUPP on some filesystems) only lose the preallocation.
  }
  if (ftruncate(w->fd_, static_cast<off_t>(size)) != 0) {
    return IoError(w->temp_path_, ": ftruncate to ", size, " bytes failed: ", ErrnoString(errno));
  }
  return w;
}

ArchiveWriter::ArchiveWriter(std::string path, ArchiveLayout layout)
    : path_(std::move(path)), layout_(std::move(layout)) {
  dense_xxh3_.assign(layout_.dense.size(), 0);
  dense_done_.assign(layout_.dense.size(), 0);
  expert_xxh3_.assign(layout_.header.expert_block_count, 0);
  expert_done_.assign(layout_.header.expert_block_count, 0);
  for (size_t i = 0; i < layout_.dense.size(); ++i) {
    const ArchiveName& n = layout_.dense[i].name;
    dense_index_.emplace(layout_.strings.substr(n.offset, n.bytes), i);
  }
  for (size_t i = 0; i < layout_.expert_layers.size(); ++i) {
    size_t layer = layout_.expert_layers[i].layer;
    if (layer_slot_.size() <= layer) layer_slot_.resize(layer + 1, -1);
    layer_slot_[layer] = static_cast<int>(i);
  }
}

ArchiveWriter::~ArchiveWriter() {
  if (fd_ >= 0) close(fd_);
  if (!finished_ && !temp_path_.empty()) unlink(temp_path_.c_str());
}

Status ArchiveWriter::WriteAt(uint64_t offset, std::span<const std::span<const uint8_t>> pieces,
                              uint64_t* xxh3, const std::string& what) {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  iovec iov[8];
  CHECK_LE(pieces.size(), 8u);
  int n_iov = 0;
  uint64_t total = 0;
  for (std::span<const uint8_t> p : pieces) {
    if (p.empty()) continue;
    XXH3_64bits_update(&state, p.data(), p.size());
    iov[n_iov++] = {const_cast<uint8_t*>(p.data()), p.size()};
    total += p.size();
  }
  *xxh3 = XXH3_64bits_digest(&state);
  uint64_t done = 0;
  int first = 0;
  while (done < total) {
    ssize_t n = pwritev(fd_, iov + first, n_iov - first, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return IoError(temp_path_, ": writing ", what, " at offset ", offset + done, " (",
                     total - done, " bytes left) failed: ", ErrnoString(n < 0 ? errno : EIO));
    }
    done += static_cast<uint64_t>(n);
    // Skip fully written iovecs and trim the partly written one.
    uint64_t left = static_cast<uint64_t>(n);
    while (first < n_iov && left >= iov[first].iov_len) left -= iov[first++].iov_len;
    if (first < n_iov) {
      iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + left;
      iov[first].iov_len -= left;
    }
  }
  return Status::Ok();
}

Status ArchiveWriter::WriteDense(size_t index, std::span<const uint8_t> bytes) {
  CHECK(!finished_) << "WriteDense after Finish";
  if (index >= layout_.dense.size()) {
    return InvalidArgument(path_, ": dense tensor index ", index, " out of range (",
                           layout_.dense.size(), " declared)");
  }
  const DenseEntry& e = layout_.dense[index];
  std::string name = layout_.strings.substr(e.name.offset, e.name.bytes);
  if (bytes.size() != e.nbytes) {
    return InvalidArgument(path_, ": dense tensor '", name, "': expected ", e.nbytes,
                           " bytes, got ", bytes.size());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dense_done_[index]) {
      return InvalidArgument(path_, ": dense tensor '", name, "' written twice");
    }
    dense_done_[index] = 1;  // claimed; a failed write makes the whole writer unusable anyway
  }
  uint64_t xxh3 = 0;
  std::span<const uint8_t> pieces[1] = {bytes};
  RETURN_IF_ERROR(WriteAt(e.offset, pieces, &xxh3, "dense tensor '" + name + "'"));
  {
    std::lock_guard<std::mutex> lock(mu_);
    dense_xxh3_[index] = xxh3;
  }
  bytes_written_.fetch_add(bytes.size(), std::memory_order_relaxed);
  return Status::Ok();
}

Status ArchiveWriter::WriteDense(std::string_view name, std::span<const uint8_t> bytes) {
  auto it = dense_index_.find(std::string(name));
  if (it == dense_index_.end()) {
    return NotFound(path_, ": dense tensor '", name, "' was not declared in the plan");
  }
  return WriteDense(it->second, bytes);
}

Status ArchiveWriter::AddExpert(int layer, int expert, std::span<const uint8_t> gate,
                                std::span<const uint8_t> up, std::span<const uint8_t> down) {
  CHECK(!finished_) << "AddExpert after Finish";
  if (layer < 0 || static_cast<size_t>(layer) >= layer_slot_.size() || layer_slot_[layer] < 0) {
    return InvalidArgument(path_, ": layer ", layer, " has no experts in the plan");
  }
  const ExpertLayerEntry& e = layout_.expert_layers[layer_slot_[layer]];
  if (expert < 0 || static_cast<uint32_t>(expert) >= e.n_expert) {
    return InvalidArgument(path_, ": expert ", expert, " of layer ", layer, " out of range (",
                           e.n_expert, " experts)");
  }
  std::span<const uint8_t> m[3] = {gate, up, down};
  const char* names[3] = {"gate", "up", "down"};
  for (int k = 0; k < 3; ++k) {
    if (m[k].size() != e.matrices[k].bytes) {
      return InvalidArgument(path_, ": expert (", layer, ", ", expert, ") ", names[k],
                             ": expected ", e.matrices[k].bytes, " bytes, got ", m[k].size());
    }
  }
  uint64_t index = e.first_xxh3_index + static_cast<uint64_t>(expert);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (expert_done_[index]) {
      return InvalidArgument(path_, ": expert (", layer, ", ", expert, ") written twice");
    }
    expert_done_[index] = 1;
  }
  // gate | pad | up | pad | down, the pads zero up to each matrix's 64-byte aligned start.
  uint64_t pad1 = e.matrices[1].offset_in_block - e.matrices[0].bytes;
  uint64_t pad2 = e.matrices[2].offset_in_block - e.matrices[1].offset_in_block - up.size();
  std::span<const uint8_t> pieces[5] = {gate, {kZeros, pad1}, up, {kZeros, pad2}, down};
  uint64_t offset = e.first_block_offset + static_cast<uint64_t>(expert) * e.block_stride;
  uint64_t xxh3 = 0;
  RETURN_IF_ERROR(WriteAt(offset, pieces, &xxh3, StrCat("expert (", layer, ", ", expert, ")")));
  {
    std::lock_guard<std::mutex> lock(mu_);
    expert_xxh3_[index] = xxh3;
  }
  bytes_written_.fetch_add(e.block_bytes, std::memory_order_relaxed);
  return Status::Ok();
}

Status ArchiveWriter::MissingError() const {
  uint64_t missing = 0;
  std::string first;
  for (size_t i = 0; i < dense_done_.size(); ++i) {
    if (dense_done_[i]) continue;
    if (missing++ == 0) {
      const ArchiveName& n = layout_.dense[i].name;
      first = "dense tensor '" + layout_.strings.substr(n.offset, n.bytes) + "'";
    }
  }
  for (const ExpertLayerEntry& e : layout_.expert_layers) {
    for (uint32_t x = 0; x < e.n_expert; ++x) {
      if (expert_done_[e.first_xxh3_index + x]) continue;
      if (missing++ == 0) first = StrCat("expert (", e.layer, ", ", x, ")");
    }
  }
  if (missing == 0) return Status::Ok();
  return InvalidArgument(path_, ": cannot finish: ", first, " was never written (", missing,
                         " tensors/experts missing in all)");
}

Status ArchiveWriter::Finish() {
  CHECK(!finished_) << "Finish called twice";
  std::lock_guard<std::mutex> lock(mu_);
  RETURN_IF_ERROR(MissingError());
  ArchiveLayout layout = layout_;
  for (size_t i = 0; i < layout.dense.size(); ++i) layout.dense[i].xxh3 = dense_xxh3_[i];
  std::string index = SerializeArchiveIndex(layout, expert_xxh3_);
  uint64_t unused = 0;
  std::span<const uint8_t> pieces[1] = {
      {reinterpret_cast<const uint8_t*>(index.data()), index.size()}};
  RETURN_IF_ERROR(WriteAt(0, pieces, &unused, "the header and directory"));
  if (sync_ && fsync(fd_) != 0) {
    return IoError(temp_path_, ": fsync failed: ", ErrnoString(errno));
  }
  if (close(fd_) != 0) {
    fd_ = -1;
    return IoError(temp_path_, ": close failed: ", ErrnoString(errno));
  }
  fd_ = -1;
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    return IoError(temp_path_, ": rename to ", path_, " failed: ", ErrnoString(errno));
  }
  finished_ = true;
  if (sync_) RETURN_IF_ERROR(SyncDirectory(DirectoryOf(path_)));
  return Status::Ok();
}

}  // namespace sluice
