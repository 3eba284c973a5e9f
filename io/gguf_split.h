// GgufModel: one model stored as a single GGUF or split in shards named
//   NAME-00001-of-00003.gguf, NAME-00002-of-00003.gguf, NAME-00003-of-00003.gguf
// (the naming and keys of llama.cpp's gguf-split). Each shard is a complete GGUF with its own
// tensor infos and data section and the keys
//   split.no (uint16, 0-based shard index), split.count (uint16),
//   split.tensors.count (int32, tensors in all shards together).
// The first shard carries the model's metadata; the others carry only the split keys.
//
// Opening any shard opens all of them; a missing or inconsistent shard is an error naming it.
// metadata() is the first shard's metadata without the `split.*` keys (the model as a whole is
// not split), so it converts losslessly into a single-file container.
//
// Non-goals: deciding which tensors are routed experts (io/gguf_model_file.h); writing shards
// (io/gguf_writer.h).
//
// Thread-safety: immutable after Open(); every method may be called concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/gguf_reader.h"

namespace sluice {

inline constexpr std::string_view kGgufSplitNoKey = "split.no";
inline constexpr std::string_view kGgufSplitCountKey = "split.count";
inline constexpr std::string_view kGgufSplitTensorsCountKey = "split.tensors.count";

// "dir/NAME-00002-of-00003.gguf" -> {prefix "dir/NAME", shard_no 2, shard_count 3}.
struct GgufSplitName {
  std::string prefix;
  int shard_no = 0;  // 1-based, as in the file name
  int shard_count = 0;
};
std::optional<GgufSplitName> ParseGgufSplitPath(std::string_view path);
// The path of shard `shard_no` (1-based) of `shard_count`.
std::string GgufSplitPath(std::string_view prefix, int shard_no, int shard_count);

class GgufModel {
 public:
  // A tensor of the model: which shard holds it, and its info there.
  struct Tensor {
    int shard = 0;                         // index into shards() / shard_paths()
    const GgufTensorInfo* info = nullptr;  // owned by the shard's GgufFile
  };

  static Result<std::unique_ptr<GgufModel>> Open(const std::string& path);

  const std::string& path() const { return path_; }  // as given to Open
  const std::vector<std::string>& shard_paths() const { return shard_paths_; }
  int shard_count() const { return static_cast<int>(shards_.size()); }
  const GgufFile& shard(int index) const { return *shards_[index]; }
  const Metadata& metadata() const { return metadata_; }

  // Every tensor of every shard, shard by shard in file order.
  const std::vector<Tensor>& tensors() const { return tensors_; }
  const Tensor* FindTensor(std::string_view name) const;
  const uint8_t* TensorData(const Tensor& t) const { return shards_[t.shard]->TensorData(*t.info); }

 private:
  GgufModel() = default;
  Status AddShard(std::unique_ptr<GgufFile> file, int expected_no, int expected_count);

  std::string path_;
  std::vector<std::string> shard_paths_;
  std::vector<std::unique_ptr<GgufFile>> shards_;
  Metadata metadata_;
  std::vector<Tensor> tensors_;
  std::unordered_map<std::string_view, size_t> index_;  // name (owned by a shard) -> tensors_
};

}  // namespace sluice
