#include "io/gguf_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "io/gguf_reader.h"
#include "io/gguf_split.h"
#include "io/metadata_codec.h"
#include "io/output_file.h"

namespace sluice {
namespace {

// Pending bytes are written in pieces of this size: large enough that write() calls cost nothing
// next to the copy, small enough to never matter for memory.
constexpr size_t kWriteBufferBytes = 4 << 20;

template <typename T>
void Put(std::string* out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out->append(bytes, sizeof(T));
}

uint64_t PadTo(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

Status WriteAll(int fd, const char* data, uint64_t bytes, const std::string& path) {
  while (bytes > 0) {
    const ssize_t n = ::write(fd, data, bytes < (1u << 30) ? bytes : (1u << 30));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      if (err == ENOSPC || err == EDQUOT) {
        return ResourceExhausted(path, ": the disk is full: ", ErrnoString(err));
      }
      return IoError(path, ": write: ", ErrnoString(err));
    }
    data += n;
    bytes -= static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

MetaValue U16Value(uint64_t v) {
  MetaValue m;
  m.type = MetaType::kU16;
  m.u = v;
  return m;
}

}  // namespace

Result<uint64_t> GgufTensorBytes(const GgufTensorSpec& spec) {
  if (spec.ne.empty() || spec.ne.size() > static_cast<size_t>(kGgufMaxDims)) {
    return InvalidArgument("tensor '", spec.name, "': ", spec.ne.size(),
                           " dimensions, expected 1..", kGgufMaxDims);
  }
  const GgmlTypeTraits& traits = TypeTraits(spec.type);
  if (spec.ne[0] < 1 || spec.ne[0] % traits.block_elements != 0) {
    return InvalidArgument("tensor '", spec.name, "': ne[0] = ", spec.ne[0],
                           " is not a positive multiple of the ", traits.name, " block of ",
                           traits.block_elements);
  }
  uint64_t bytes = static_cast<uint64_t>(spec.ne[0] / traits.block_elements);
  bool overflow = __builtin_mul_overflow(bytes, static_cast<uint64_t>(traits.block_bytes), &bytes);
  for (size_t d = 1; d < spec.ne.size(); ++d) {
    if (spec.ne[d] < 1) {
      return InvalidArgument("tensor '", spec.name, "': ne[", d, "] = ", spec.ne[d],
                             ", expected >= 1");
    }
    overflow = overflow || __builtin_mul_overflow(bytes, static_cast<uint64_t>(spec.ne[d]), &bytes);
  }
  if (overflow) return InvalidArgument("tensor '", spec.name, "': byte size overflows 64 bits");
  return bytes;
}

Result<std::unique_ptr<GgufWriter>> GgufWriter::Create(const std::string& path,
                                                       const Metadata& metadata,
                                                       std::vector<GgufTensorSpec> tensors,
                                                       const GgufWriterOptions& options) {
  RETURN_IF_ERROR(CheckOutputPath(path));
  std::unique_ptr<GgufWriter> w(new GgufWriter());
  w->path_ = path;
  w->tensors_.reserve(tensors.size());
  for (GgufTensorSpec& spec : tensors) w->tensors_.push_back({.spec = std::move(spec)});
  RETURN_IF_ERROR(w->Plan(metadata, options));
  RETURN_IF_ERROR(w->OpenShards());
  return w;
}

// Assigns tensors to shards, computes every offset, and encodes each shard's header.
Status GgufWriter::Plan(const Metadata& metadata, const GgufWriterOptions& options) {
  if (options.version != 2 && options.version != 3) {
    return InvalidArgument(path_, ": GGUF version ", options.version,
                           " requested, expected 2 or 3");
  }
  if (options.alignment == 0 || (options.alignment & (options.alignment - 1)) != 0) {
    return InvalidArgument(path_, ": alignment ", options.alignment, " is not a power of two");
  }
  if (options.max_tensors_per_shard < 0) {
    return InvalidArgument(path_, ": max_tensors_per_shard ", options.max_tensors_per_shard);
  }
  alignment_ = options.alignment;
  std::unordered_set<std::string_view> names;
  for (Planned& t : tensors_) {
    if (t.spec.name.empty()) return InvalidArgument(path_, ": a tensor has an empty name");
    if (!names.insert(t.spec.name).second) {
      return InvalidArgument(path_, ": tensor '", t.spec.name, "' is declared twice");
    }
    ASSIGN_OR_RETURN(t.nbytes, GgufTensorBytes(t.spec));
  }

  // The model's metadata, minus stale split keys, plus the alignment when it is not the default.
  Metadata base(metadata.source());
  for (const std::string& key : metadata.keys()) {
    if (!key.starts_with("split.") && key != kGgufAlignmentKey) base.Set(key, *metadata.Find(key));
  }
  Metadata alignment_only;
  if (alignment_ != kGgufDefaultAlignment) {
    base.SetU32(std::string(kGgufAlignmentKey), options.alignment);
    alignment_only.SetU32(std::string(kGgufAlignmentKey), options.alignment);
  }

  const bool split = options.max_tensors_per_shard > 0;
  const size_t per_shard = split ? static_cast<size_t>(options.max_tensors_per_shard) : SIZE_MAX;
  const size_t shard_count =
      split ? std::max<size_t>(1, (tensors_.size() + per_shard - 1) / per_shard) : 1;
  if (split && !path_.ends_with(".gguf")) {
    return InvalidArgument(path_,
                           ": a split output path must end in .gguf (shards are named "
                           "NAME-00001-of-0000N.gguf)");
  }
  if (shard_count > 99999) {
    return InvalidArgument(path_, ": ", shard_count, " shards exceeds the limit of 99999");
  }
  shards_.resize(shard_count);
  for (size_t s = 0; s < shard_count; ++s) {
    Shard& shard = shards_[s];
    shard.final_path = split ? GgufSplitPath(path_.substr(0, path_.size() - 5),
                                             static_cast<int>(s + 1), static_cast<int>(shard_count))
                             : path_;
    final_paths_.push_back(shard.final_path);
    const size_t first = s * (split ? per_shard : 0);
    const size_t end = split ? std::min(tensors_.size(), first + per_shard) : tensors_.size();

    Metadata shard_meta = s == 0 ? base : alignment_only;
    if (split) {
      shard_meta.Set(std::string(kGgufSplitNoKey), U16Value(s));
      shard_meta.Set(std::string(kGgufSplitCountKey), U16Value(shard_count));
      shard_meta.SetI32(std::string(kGgufSplitTensorsCountKey),
                        static_cast<int32_t>(tensors_.size()));
    }
    std::string& h = shard.header;
    h.append(kGgufMagic, 4);
    Put<uint32_t>(&h, options.version);
    Put<uint64_t>(&h, end - first);
    Put<uint64_t>(&h, shard_meta.size());
    EncodeMetadataKv(shard_meta, &h);
    uint64_t data_bytes = 0;
    for (size_t i = first; i < end; ++i) {
      Planned& t = tensors_[i];
      t.shard = static_cast<int>(s);
      t.relative_offset = data_bytes;
      data_bytes += PadTo(t.nbytes, alignment_);
      Put<uint64_t>(&h, t.spec.name.size());
      h.append(t.spec.name);
      Put<uint32_t>(&h, static_cast<uint32_t>(t.spec.ne.size()));
      for (int64_t ne : t.spec.ne) Put<uint64_t>(&h, static_cast<uint64_t>(ne));
      Put<uint32_t>(&h, static_cast<uint32_t>(t.spec.type));
      Put<uint64_t>(&h, t.relative_offset);
    }
    h.resize(PadTo(h.size(), alignment_), '\0');
    shard.file_bytes = h.size() + data_bytes;
    total_bytes_ += shard.file_bytes;
  }
  return Status::Ok();
}

// Creates every shard under a temporary name, reserves its space, and writes its header.
Status GgufWriter::OpenShards() {
  for (Shard& shard : shards_) {
    ASSIGN_OR_RETURN(const int fd, CreateTempOutput(shard.final_path, ".tmp.", &shard.temp_path));
    shard.fd = fd;
    // Reserving the whole size now turns a full disk into one clear error before any work.
    if (shard.file_bytes > 0 && ::fallocate(fd, 0, 0, static_cast<off_t>(shard.file_bytes)) != 0) {
      const int err = errno;
      if (err == ENOSPC || err == EDQUOT) {
        return ResourceExhausted(shard.final_path, ": not enough free disk space for ",
                                 shard.file_bytes, " bytes (", ErrnoString(err), ")");
      }
      // EOPNOTSUPP and friends: the filesystem cannot reserve; writes will report a full disk.
    }
    RETURN_IF_ERROR(WriteAll(fd, shard.header.data(), shard.header.size(), shard.temp_path));
    shard.written = shard.header.size();
    shard.header = std::string();  // no longer needed
  }
  return Status::Ok();
}

Status GgufWriter::FlushBuffer(Shard& shard) {
  if (buffer_.empty()) return Status::Ok();
  Status st = WriteAll(shard.fd, buffer_.data(), buffer_.size(), shard.temp_path);
  if (st.ok()) shard.written += buffer_.size();
  buffer_.clear();
  return st;
}

Status GgufWriter::WriteBytes(Shard& shard, const void* data, uint64_t bytes) {
  if (buffer_.size() + bytes > kWriteBufferBytes) RETURN_IF_ERROR(FlushBuffer(shard));
  if (bytes >= kWriteBufferBytes) {
    RETURN_IF_ERROR(WriteAll(shard.fd, static_cast<const char*>(data), bytes, shard.temp_path));
    shard.written += bytes;
    return Status::Ok();
  }
  buffer_.append(static_cast<const char*>(data), bytes);
  return Status::Ok();
}

// Pads the completed tensor to the alignment and moves to the next one.
Status GgufWriter::FinishTensor() {
  Planned& t = tensors_[current_];
  Shard& shard = shards_[t.shard];
  const uint64_t padding = PadTo(t.nbytes, alignment_) - t.nbytes;
  static const char kZeros[4096] = {};
  for (uint64_t left = padding; left > 0;) {
    const uint64_t n = std::min<uint64_t>(left, sizeof(kZeros));
    RETURN_IF_ERROR(WriteBytes(shard, kZeros, n));
    left -= n;
  }
  ++current_;
  current_written_ = 0;
  // Leaving a shard: its bytes go out before the next shard's start.
  if (current_ == tensors_.size() || tensors_[current_].shard != t.shard) {
    RETURN_IF_ERROR(FlushBuffer(shard));
  }
  return Status::Ok();
}

Status GgufWriter::Append(const void* data, uint64_t bytes) {
  if (failed_) return Internal(path_, ": an earlier write failed; the output is unusable");
  if (finished_) return InvalidArgument(path_, ": Append after Finish");
  if (current_ >= tensors_.size()) {
    return InvalidArgument(path_, ": ", bytes, " bytes appended after the last tensor");
  }
  Planned& t = tensors_[current_];
  if (bytes > t.nbytes - current_written_) {
    return InvalidArgument(path_, ": tensor '", t.spec.name, "': ", bytes,
                           " bytes appended, but only ", t.nbytes - current_written_, " of its ",
                           t.nbytes, " remain");
  }
  Status st = WriteBytes(shards_[t.shard], data, bytes);
  if (st.ok()) {
    current_written_ += bytes;
    if (current_written_ == t.nbytes) st = FinishTensor();
  }
  if (!st.ok()) failed_ = true;
  return st;
}

Status GgufWriter::WriteTensor(std::string_view name, const void* data, uint64_t bytes) {
  if (current_ >= tensors_.size() || tensors_[current_].spec.name != name ||
      current_written_ != 0) {
    return InvalidArgument(path_, ": WriteTensor('", name, "') out of order: the next tensor is ",
                           current_ < tensors_.size()
                               ? StrCat("'", tensors_[current_].spec.name, "' (", current_written_,
                                        " bytes already written)")
                               : std::string("none"));
  }
  if (bytes != tensors_[current_].nbytes) {
    return InvalidArgument(path_, ": tensor '", name, "': ", bytes,
                           " bytes given, its shape needs ", tensors_[current_].nbytes);
  }
  return Append(data, bytes);
}

Status GgufWriter::Finish() {
  if (failed_) return Internal(path_, ": an earlier write failed; the output is unusable");
  if (finished_) return Status::Ok();
  if (current_ < tensors_.size()) {
    return InvalidArgument(path_, ": Finish with tensor '", tensors_[current_].spec.name, "' (",
                           current_, " of ", tensors_.size(), ") incomplete: ", current_written_,
                           " of ", tensors_[current_].nbytes, " bytes written");
  }
  for (Shard& shard : shards_) {
    CHECK_EQ(shard.written, shard.file_bytes) << shard.final_path;
    if (::fsync(shard.fd) != 0) {
      const int err = errno;
      failed_ = true;
      return IoError(shard.temp_path, ": fsync: ", ErrnoString(err));
    }
    ::close(shard.fd);
    shard.fd = -1;
  }
  for (size_t s = 0; s < shards_.size(); ++s) {
    Shard& shard = shards_[s];
    if (::rename(shard.temp_path.c_str(), shard.final_path.c_str()) != 0) {
      const int err = errno;
      failed_ = true;
      // Shards already renamed would be a partial model under the real names: take them back.
      for (size_t done = 0; done < s; ++done) ::unlink(shards_[done].final_path.c_str());
      return IoError(shard.final_path, ": rename from ", shard.temp_path, ": ", ErrnoString(err));
    }
    shard.temp_path.clear();
  }
  finished_ = true;
  return Status::Ok();
}

void GgufWriter::RemoveTemporaries() {
  for (Shard& shard : shards_) {
    if (shard.fd >= 0) ::close(shard.fd);
    shard.fd = -1;
    if (!shard.temp_path.empty()) ::unlink(shard.temp_path.c_str());
    shard.temp_path.clear();
  }
}

GgufWriter::~GgufWriter() { RemoveTemporaries(); }

}  // namespace sluice
