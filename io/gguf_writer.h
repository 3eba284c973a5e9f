// GgufWriter: writes a GGUF (version 3 by default, little-endian) from metadata and tensors, for
// tests that need tiny models and for `sluice synth --format gguf`. The layout is the one
// io/gguf_reader.h documents; every tensor starts at a multiple of the alignment and is padded
// with zeros to the next one (the last tensor too, as llama.cpp does).
//
// Streaming: every tensor (name, type, shape) is declared up front, so the headers are written at
// Create() and tensor bytes are then appended in declaration order, in pieces of any size; a
// multi-gigabyte synthetic model never sits in memory.
//
//   ASSIGN_OR_RETURN(auto w, GgufWriter::Create(path, metadata, specs));
//   for (...) RETURN_IF_ERROR(w->Append(bytes, n));   // or WriteTensor(name, bytes, n)
//   RETURN_IF_ERROR(w->Finish());                     // fsync + rename into place
//
// Files are written under a temporary name in the destination directory, space for the whole
// output is reserved at Create() (so a full disk fails before any work, with ResourceExhausted),
// and only Finish() renames them into place. A writer destroyed before Finish() (an error, a
// cancelled run) removes its temporary files: no partial output is ever left under the real name.
//
// Split output (options.max_tensors_per_shard > 0): shards PREFIX-0000K-of-0000N.gguf where
// `path` = PREFIX.gguf, with split.no / split.count / split.tensors.count as io/gguf_split.h
// reads them; the first shard carries the metadata, the others only the split keys.
//
// Thread-safety: one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/ggml_type.h"
#include "core/base/status.h"
#include "io/metadata.h"

namespace sluice {

struct GgufTensorSpec {
  std::string name;
  GgmlType type = GgmlType::kF32;
  std::vector<int64_t> ne;  // GGUF order, 1..4 dims, each >= 1; ne[0] a multiple of the block
};

// Bytes of a tensor of this spec (InvalidArgument for a bad shape, naming the tensor).
Result<uint64_t> GgufTensorBytes(const GgufTensorSpec& spec);

struct GgufWriterOptions {
  uint32_t version = 3;           // 2 or 3: the same layout for little-endian files
  uint32_t alignment = 32;        // power of two; written as general.alignment when not 32
  int max_tensors_per_shard = 0;  // > 0: split into shards of at most this many tensors
};

class GgufWriter {
 public:
  static Result<std::unique_ptr<GgufWriter>> Create(const std::string& path,
                                                    const Metadata& metadata,
                                                    std::vector<GgufTensorSpec> tensors,
                                                    const GgufWriterOptions& options = {});
  ~GgufWriter();  // removes the temporary files unless Finish() succeeded
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Appends the next `bytes` of tensor data. A call may not run past the end of the current
  // tensor (InvalidArgument), so every tensor's bytes arrive in one or more calls of its own.
  Status Append(const void* data, uint64_t bytes);
  // The whole of the next tensor at once: `name` must be the next declared tensor, `bytes` its
  // exact size, and nothing of it written yet.
  Status WriteTensor(std::string_view name, const void* data, uint64_t bytes);
  // Checks every tensor is complete, flushes, fsyncs, and renames every file into place.
  Status Finish();

  // The final paths (one, or one per shard).
  const std::vector<std::string>& output_paths() const { return final_paths_; }
  // Bytes all output files will have in total.
  uint64_t total_bytes() const { return total_bytes_; }
  // The tensor the next Append() goes to (index into the declared tensors), == count when done.
  size_t next_tensor() const { return current_; }

 private:
  struct Planned {
    GgufTensorSpec spec;
    uint64_t nbytes = 0;
    int shard = 0;
    uint64_t relative_offset = 0;  // from the start of its shard's data section
  };
  struct Shard {
    std::string final_path;
    std::string temp_path;  // empty until created
    int fd = -1;
    std::string header;       // magic .. tensor infos .. padding (data_offset bytes)
    uint64_t file_bytes = 0;  // planned size of the whole file
    uint64_t written = 0;     // bytes handed to write() so far
  };
  GgufWriter() = default;
  Status Plan(const Metadata& metadata, const GgufWriterOptions& options);
  Status OpenShards();
  Status WriteBytes(Shard& shard, const void* data, uint64_t bytes);
  Status FlushBuffer(Shard& shard);
  Status FinishTensor();
  void RemoveTemporaries();

  std::string path_;
  uint64_t alignment_ = 32;
  std::vector<Planned> tensors_;
  std::vector<Shard> shards_;
  std::vector<std::string> final_paths_;
  std::string buffer_;  // pending bytes of the shard being written (batched into large writes)
  uint64_t total_bytes_ = 0;
  size_t current_ = 0;            // index of the tensor being written
  uint64_t current_written_ = 0;  // bytes of it written so far
  bool finished_ = false;
  bool failed_ = false;  // a write failed: the output is unusable
};

}  // namespace sluice
