#include "io/gguf_split.h"

#include <cstdio>

namespace sluice {
namespace {

// The shard file name carries 5-digit numbers, so at most 99999 shards.
constexpr uint64_t kMaxShards = 99999;

bool ParseFiveDigits(std::string_view s, int* value) {
  if (s.size() != 5) return false;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *value = v;
  return true;
}

// Metadata minus the `split.*` keys, in the same key order.
Metadata WithoutSplitKeys(const Metadata& in) {
  Metadata out(in.source());
  for (const std::string& key : in.keys()) {
    if (key.starts_with("split.")) continue;
    out.Set(key, *in.Find(key));
  }
  return out;
}

}  // namespace

std::optional<GgufSplitName> ParseGgufSplitPath(std::string_view path) {
  // NAME-00002-of-00003.gguf: the suffix is exactly 24 characters.
  constexpr std::string_view kExt = ".gguf";
  constexpr size_t kSuffix = 1 + 5 + 4 + 5 + 5;
  if (path.size() <= kSuffix || !path.ends_with(kExt)) return std::nullopt;
  const std::string_view tail = path.substr(path.size() - kSuffix);
  GgufSplitName name;
  if (tail[0] != '-' || tail.substr(6, 4) != "-of-" ||
      !ParseFiveDigits(tail.substr(1, 5), &name.shard_no) ||
      !ParseFiveDigits(tail.substr(10, 5), &name.shard_count)) {
    return std::nullopt;
  }
  if (name.shard_no < 1 || name.shard_no > name.shard_count) return std::nullopt;
  name.prefix = std::string(path.substr(0, path.size() - kSuffix));
  return name;
}

std::string GgufSplitPath(std::string_view prefix, int shard_no, int shard_count) {
  char suffix[40];
  std::snprintf(suffix, sizeof(suffix), "-%05d-of-%05d.gguf", shard_no, shard_count);
  return StrCat(prefix, suffix);
}

Result<std::unique_ptr<GgufModel>> GgufModel::Open(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> given, GgufFile::Open(path));
  ASSIGN_OR_RETURN(const uint64_t count, given->metadata().GetUintOr(kGgufSplitCountKey, 1));
  std::unique_ptr<GgufModel> model(new GgufModel());
  model->path_ = path;

  if (count <= 1) {
    model->shard_paths_ = {path};
    RETURN_IF_ERROR(model->AddShard(std::move(given), 0, 1));
  } else {
    if (count > kMaxShards) {
      return Corrupt(path, ": metadata key '", kGgufSplitCountKey, "': ", count,
                     " shards exceeds the limit of ", kMaxShards);
    }
    std::optional<GgufSplitName> name = ParseGgufSplitPath(path);
    if (!name) {
      return InvalidArgument(path, ": this is one shard of a model split in ", count,
                             " files, but its name does not end in -0000K-of-", count,
                             ".gguf (5 digits each), so the other shards cannot be found");
    }
    if (static_cast<uint64_t>(name->shard_count) != count) {
      return Corrupt(path, ": the file name says ", name->shard_count, " shards but metadata key '",
                     kGgufSplitCountKey, "' says ", count);
    }
    const int n = static_cast<int>(count);
    for (int no = 1; no <= n; ++no) {
      std::string shard_path = GgufSplitPath(name->prefix, no, n);
      std::unique_ptr<GgufFile> file;
      if (no == name->shard_no) {
        file = std::move(given);
      } else {
        Result<std::unique_ptr<GgufFile>> opened = GgufFile::Open(shard_path);
        if (!opened.ok() && opened.status().code() == StatusCode::kNotFound) {
          return NotFound(shard_path, ": shard ", no, " of ", n,
                          " is missing (the model was opened as ", path, ")");
        }
        if (!opened.ok()) return opened.status();
        file = std::move(opened).value();
      }
      model->shard_paths_.push_back(std::move(shard_path));
      RETURN_IF_ERROR(model->AddShard(std::move(file), no - 1, n));
    }
  }

  const GgufFile& first = *model->shards_[0];
  if (first.metadata().Has(kGgufSplitTensorsCountKey)) {
    ASSIGN_OR_RETURN(const uint64_t declared, first.metadata().GetUint(kGgufSplitTensorsCountKey));
    if (declared != model->tensors_.size()) {
      return Corrupt(first.path(), ": metadata key '", kGgufSplitTensorsCountKey, "' says ",
                     declared, " tensors, the ", model->shards_.size(), " shard(s) hold ",
                     model->tensors_.size());
    }
  }
  model->metadata_ = WithoutSplitKeys(first.metadata());
  return model;
}

Status GgufModel::AddShard(std::unique_ptr<GgufFile> file, int expected_index, int expected_count) {
  const Metadata& meta = file->metadata();
  if (expected_count > 1 || meta.Has(kGgufSplitNoKey)) {
    ASSIGN_OR_RETURN(const uint64_t no, meta.GetUintOr(kGgufSplitNoKey, 0));
    ASSIGN_OR_RETURN(const uint64_t count, meta.GetUintOr(kGgufSplitCountKey, 1));
    if (no != static_cast<uint64_t>(expected_index) ||
        count != static_cast<uint64_t>(expected_count)) {
      return Corrupt(file->path(), ": metadata keys '", kGgufSplitNoKey, "', '", kGgufSplitCountKey,
                     "': expected shard index ", expected_index, " of ", expected_count,
                     " (split.no is 0-based), found ", no, " of ", count);
    }
  }
  const int shard = static_cast<int>(shards_.size());
  for (const GgufTensorInfo& info : file->tensors()) {
    auto [it, inserted] = index_.emplace(info.name, tensors_.size());
    if (!inserted) {
      const Tensor& other = tensors_[it->second];
      return Corrupt(file->path(), ": tensor '", info.name, "' (info at offset ", info.info_offset,
                     ") is also in ", shards_[other.shard]->path());
    }
    tensors_.push_back({shard, &info});
  }
  shards_.push_back(std::move(file));
  return Status::Ok();
}

const GgufModel::Tensor* GgufModel::FindTensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace sluice
