// ArchiveWriter: streams a sluice archive (docs/archive-format.md) to disk without ever holding
// the model in memory. Used by `sluice convert` (GGUF -> archive), `sluice synth` and the I/O
// bench.
//
//   ArchivePlan plan;                       // io/archive_layout.h
//   plan.metadata = gguf.metadata();
//   plan.dense = {...};                      // name, type, n_dims, ne of every dense tensor
//   plan.expert_layers = {{.layer = 0, .tensors = {gate, up, down}}, ...};
//   ASSIGN_OR_RETURN(auto w, ArchiveWriter::Create("model.sluice", std::move(plan)));
//   RETURN_IF_ERROR(w->WriteDense("token_embd.weight", bytes));      // any order
//   RETURN_IF_ERROR(w->AddExpert(layer, expert, gate, up, down));    // any order
//   progress.Update(w->bytes_written());                             // of w->payload_bytes()
//   RETURN_IF_ERROR(w->Finish());            // directory + checksums, fsync, rename into place
//
// Every offset is computed in Create() from the plan, so tensors and expert blocks go straight to
// their final place in any order (convert writes in GGUF order; synth writes in parallel). Bytes
// are hashed (xxh3-64) as they are written. The file is written as PATH.tmp-XXXXXX beside PATH
// and renamed to PATH only by a successful Finish(); destroying an unfinished writer deletes it.
// Create() checks free space first: "need 212.4 GiB, have 80.1 GiB on /data".
//
// Non-goals: reading (io/archive_reader.h), converting types, appending to an existing archive.
// Thread-safety: WriteDense and AddExpert may be called concurrently from several threads for
// different tensors/experts; bytes_written() from any thread; Finish() once, after all writes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/status.h"
#include "io/archive_layout.h"

namespace sluice {

struct ArchiveWriterOptions {
  bool check_free_space = true;  // statvfs before writing; refuse when the file cannot fit
  bool preallocate = true;       // fallocate the whole file up front (where supported)
  bool sync = true;              // fsync the file and its directory in Finish()
};

class ArchiveWriter {
 public:
  static Result<std::unique_ptr<ArchiveWriter>> Create(const std::string& path, ArchivePlan plan,
                                                       const ArchiveWriterOptions& options = {});
  ~ArchiveWriter();  // deletes the temporary file unless Finish() succeeded
  ArchiveWriter(const ArchiveWriter&) = delete;
  ArchiveWriter& operator=(const ArchiveWriter&) = delete;

  // Supplies the bytes of dense tensor `index` (plan order) or `name`; exactly its nbytes.
  Status WriteDense(size_t index, std::span<const uint8_t> bytes);
  Status WriteDense(std::string_view name, std::span<const uint8_t> bytes);
  // Supplies expert `expert` of the plan's layer `layer` (block index): each matrix exactly
  // RowBytes(type, ne0) * ne1 bytes. Each (layer, expert) exactly once.
  Status AddExpert(int layer, int expert, std::span<const uint8_t> gate,
                   std::span<const uint8_t> up, std::span<const uint8_t> down);
  // Fails naming the first tensor or expert never written; otherwise writes the index, syncs and
  // renames to path(). After an error the writer is unusable (the destructor cleans up).
  Status Finish();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }
  const ArchiveLayout& layout() const { return layout_; }
  uint64_t file_bytes() const { return layout_.header.file_bytes; }
  // Progress: payload bytes supplied so far, out of payload_bytes() (dense + expert blocks).
  uint64_t bytes_written() const { return bytes_written_.load(std::memory_order_relaxed); }
  uint64_t payload_bytes() const { return layout_.payload_bytes; }

 private:
  ArchiveWriter(std::string path, ArchiveLayout layout);
  Status WriteAt(uint64_t offset, std::span<const std::span<const uint8_t>> pieces, uint64_t* xxh3,
                 const std::string& what);
  Status MissingError() const;

  const std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  const ArchiveLayout layout_;
  bool sync_ = true;
  bool finished_ = false;
  std::unordered_map<std::string, size_t> dense_index_;  // name -> plan index
  std::vector<int> layer_slot_;  // block index -> index in layout_.expert_layers, or -1
  std::atomic<uint64_t> bytes_written_{0};

  std::mutex mu_;  // guards the four vectors below
  std::vector<uint64_t> dense_xxh3_;
  std::vector<uint8_t> dense_done_;
  std::vector<uint64_t> expert_xxh3_;  // directory order
  std::vector<uint8_t> expert_done_;
};

}  // namespace sluice
