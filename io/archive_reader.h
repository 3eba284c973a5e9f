// ArchiveReader: opens a sluice archive (docs/archive-format.md) as a ModelFile.
//
// Open() reads and checks the header and directory before anything else touches the file: magic,
// version, every region and entry bounded by the file size, and the xxh3 over header + metadata +
// directory, so a truncated, foreign or corrupted file fails at once with the file, the offset and
// expected vs found. The whole file is then mapped read-only: dense tensors are served from the
// mapping; routed experts are located (LocateExpert, with the block's xxh3) for the expert cache,
// which reads them with O_DIRECT and never through the mapping.
//
// Dense tensor checksums are checked by VerifyDenseTensor (sluice verify) or at Open() when
// ArchiveOpenOptions::verify_dense is set; expert checksums by the cache after every read and by
// VerifyExpertBlock.
//
// Non-goals: writing (io/archive_writer.h), GGUF (io/gguf_*). Thread-safety: all const methods may
// be called concurrently after Open() returns.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/archive_format.h"
#include "io/model_file.h"

namespace sluice {

struct ArchiveOpenOptions {
  bool verify_dense = false;  // hash every dense tensor at Open() (reads all dense bytes)
};

class ArchiveReader final : public ModelFile {
 public:
  static Result<std::unique_ptr<ArchiveReader>> Open(const std::string& path,
                                                     const ArchiveOpenOptions& options = {});
  ~ArchiveReader() override;
  ArchiveReader(const ArchiveReader&) = delete;
  ArchiveReader& operator=(const ArchiveReader&) = delete;

  // True when the file starts with the archive magic (cheap; for format dispatch).
  static bool LooksLikeArchive(const std::string& path);

  // ModelFile.
  const std::string& path() const override { return path_; }
  const std::vector<std::string>& file_paths() const override { return file_paths_; }
  const Metadata& metadata() const override { return metadata_; }
  const std::vector<TensorInfo>& dense_tensors() const override { return dense_; }
  std::optional<ExpertTensors> expert_tensors(int layer) const override;
  ExpertLocation LocateExpert(int layer, int expert) const override;
  uint64_t expert_bytes_total() const override { return expert_bytes_total_; }
  const uint8_t* mapped_file(int file_index) const override;

  // Archive specifics (inspect, verify).
  const ArchiveHeader& header() const { return header_; }
  const std::vector<DenseEntry>& dense_entries() const { return dense_entries_; }
  const std::vector<ExpertLayerEntry>& expert_layer_entries() const { return layer_entries_; }
  uint64_t expert_block_offset(int layer, int expert) const;

  // Hash the bytes and compare with the directory; errors name the file, tensor or expert, the
  // offset and both hashes. Reads through the mapping and drops the pages afterwards so that a
  // full verify does not fill the page cache with experts.
  Status VerifyDenseTensor(size_t index) const;
  Status VerifyExpertBlock(int layer, int expert) const;

 private:
  ArchiveReader() = default;
  Status ReadIndex(uint64_t file_size);
  Status ParseDirectory(const std::string& index);
  const ExpertLayerEntry& LayerEntry(int layer) const;  // CHECK-fails without experts

  std::string path_;
  std::vector<std::string> file_paths_;
  int fd_ = -1;
  const uint8_t* map_ = nullptr;
  uint64_t map_bytes_ = 0;
  int mapped_handle_ = -1;  // RegisterMappedFile (core/base/mapped_files.h)
  ArchiveHeader header_{};
  Metadata metadata_;
  std::vector<DenseEntry> dense_entries_;
  std::vector<TensorInfo> dense_;
  std::vector<ExpertLayerEntry> layer_entries_;
  std::vector<ExpertTensors> expert_tensors_;  // parallel to layer_entries_
  std::vector<int> layer_slot_;                // block index -> index in layer_entries_ or -1
  std::vector<uint64_t> expert_xxh3_;
  uint64_t expert_bytes_total_ = 0;
};

}  // namespace sluice
