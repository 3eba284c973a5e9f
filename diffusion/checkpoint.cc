#include "diffusion/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/base/str_cat.h"
#include "core/kernels/matmul.h"
#include "core/quant/fp16.h"
#include "diffusion/diffusers_names.h"

namespace sluice::diffusion {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Status Checkpoint::AddFile(
    const std::string& path,
    const std::function<std::vector<std::string>(const std::vector<std::string>&)>& rename) {
  char magic[4] = {};
  {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      if (err == ENOENT) return NotFound(path, ": no such file");
      return IoError(path, ": open: ", ErrnoString(err));
    }
    const ssize_t n = ::read(fd, magic, sizeof(magic));
    ::close(fd);
    if (n < 0) return IoError(path, ": read: ", ErrnoString(errno));
  }
  File f;
  const int index = static_cast<int>(files_.size());
  // Each file starts on a page of the placed region (io/ordered_stream.h).
  const uint64_t base = (file_bytes_ + 4095) / 4096 * 4096;
  std::vector<CkptTensor> added;
  if (std::memcmp(magic, kGgufMagic, 4) == 0) {
    ASSIGN_OR_RETURN(f.gguf, GgufFile::Open(path));
    f.bytes = f.gguf->file_size();
    f.mapped = f.gguf->mapped_data();
    for (const GgufTensorInfo& g : f.gguf->tensors()) {
      CkptTensor t;
      t.name = g.name;
      t.type = g.type;
      t.dtype = TypeName(g.type);
      t.supported = IsSupportedWeightType(g.type);
      for (int d = g.n_dims - 1; d >= 0; --d) t.shape.push_back(g.ne[d]);
      t.data = f.gguf->TensorData(g);
      t.offset = g.file_offset;
      t.nbytes = g.nbytes;
      added.push_back(std::move(t));
    }
  } else {
    ASSIGN_OR_RETURN(f.safetensors, SafetensorsFile::Open(path));
    f.bytes = f.safetensors->file_size();
    for (const SafetensorsTensor& st : f.safetensors->tensors()) {
      CkptTensor t;
      t.name = st.name;
      t.dtype = SafetensorsDtypeName(st.dtype);
      switch (st.dtype) {
        case SafetensorsDtype::kF32:
          t.type = GgmlType::kF32;
          t.supported = true;
          break;
        case SafetensorsDtype::kF16:
          t.type = GgmlType::kF16;
          t.supported = true;
          break;
        case SafetensorsDtype::kBF16:
          t.type = GgmlType::kBF16;
          t.supported = true;
          break;
        default:
          break;
      }
      t.shape = st.shape;
      t.data = f.safetensors->Data(st);
      t.offset = st.offset;
      t.nbytes = st.nbytes;
      f.mapped = t.data - st.offset;
      added.push_back(std::move(t));
    }
  }
  if (rename) {
    std::vector<std::string> names;
    for (const CkptTensor& t : added) names.push_back(t.name);
    const std::vector<std::string> renamed = rename(names);
    for (size_t i = 0; i < added.size(); ++i) added[i].name = renamed[i];
  }
  for (CkptTensor& t : added) {
    t.file = index;
    t.placed_offset = base + t.offset;
    if (!index_.emplace(t.name, tensors_.size()).second) {
      return Corrupt(path, ": tensor '", t.name, "' appears twice");
    }
    tensors_.push_back(std::move(t));
  }
  if (f.bytes > largest_file_bytes_) {
    largest_file_bytes_ = f.bytes;
    largest_file_ = path;
  }
  file_paths_.push_back(path);
  file_bases_.push_back(base);
  file_bytes_ = base + f.bytes;
  files_.push_back(std::move(f));
  return Status::Ok();
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return OpenDiffusers(path);
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  c->path_ = path;
  RETURN_IF_ERROR(c->AddFile(path, nullptr));
  return c;
}

namespace {

// The component's weights: <dir>/<component>/<stem>.safetensors, or the .fp16 variant; "" when
// neither exists.
std::string ComponentFile(const std::string& dir, const std::string& component,
                          const std::string& stem) {
  for (const char* variant : {"", ".fp16"}) {
    const std::string p = StrCat(dir, "/", component, "/", stem, variant, ".safetensors");
    struct stat st;
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return p;
  }
  return "";
}

// The string values of a component's config.json ("" keys skipped; a missing or malformed file
// gives none: the detection then falls back on the tensors).
std::vector<std::pair<std::string, std::string>> ConfigStrings(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in(path);
  if (!in) return out;
  std::stringstream ss;
  ss << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.value().is_string()) out.emplace_back(it.key(), it.value().get<std::string>());
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<Checkpoint>> Checkpoint::OpenDiffusers(const std::string& dir) {
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  c->path_ = dir;
  const std::string unet = ComponentFile(dir, "unet", "diffusion_pytorch_model");
  const std::string vae = ComponentFile(dir, "vae", "diffusion_pytorch_model");
  const std::string te = ComponentFile(dir, "text_encoder", "model");
  const std::string te2 = ComponentFile(dir, "text_encoder_2", "model");
  for (const auto& [file, what] :
       {std::pair{unet, "unet/diffusion_pytorch_model"},
        std::pair{vae, "vae/diffusion_pytorch_model"}, std::pair{te, "text_encoder/model"}}) {
    if (file.empty()) {
      return NotFound(dir, ": a directory, read as a diffusers folder: ", what,
                      "[.fp16].safetensors is missing (.bin files are not read: convert them to "
                      "safetensors)");
    }
  }
  RETURN_IF_ERROR(c->AddFile(unet, LdmNamesOfDiffusersUNet));
  RETURN_IF_ERROR(c->AddFile(vae, LdmNamesOfDiffusersVae));
  // Hugging Face CLIP names in both layouts: only the prefix differs. SDXL (two encoders) names
  // them as its conditioner's embedders.
  auto prefixed = [](const std::string& prefix) {
    return [prefix](const std::vector<std::string>& names) {
      std::vector<std::string> out;
      for (const std::string& n : names) out.push_back(prefix + n);
      return out;
    };
  };
  RETURN_IF_ERROR(c->AddFile(te, prefixed(te2.empty() ? "cond_stage_model.transformer."
                                                      : "conditioner.embedders.0.transformer.")));
  if (!te2.empty())
    RETURN_IF_ERROR(c->AddFile(te2, prefixed("conditioner.embedders.1.transformer.")));
  for (const char* component : {"unet", "vae", "text_encoder", "text_encoder_2"}) {
    for (auto& [k, v] : ConfigStrings(StrCat(dir, "/", component, "/config.json"))) {
      c->folder_metadata_.emplace_back(StrCat("diffusers.", component, ".", k), v);
    }
  }
  const std::string merges = dir + "/tokenizer/merges.txt";
  struct stat st;
  if (::stat(merges.c_str(), &st) == 0 && S_ISREG(st.st_mode)) c->tokenizer_merges_ = merges;
  return c;
}

std::string Checkpoint::MetadataValue(const std::string& key) const {
  for (const auto& [k, v] : folder_metadata_) {
    if (k == key) return v;
  }
  if (files_.empty()) return "";
  const File& f = files_[0];
  if (f.safetensors != nullptr) {
    auto it = f.safetensors->metadata().find(key);
    return it == f.safetensors->metadata().end() ? "" : it->second;
  }
  if (f.gguf != nullptr) return f.gguf->metadata().GetStringOr(key, "").value();
  return "";
}

std::vector<std::pair<std::string, std::string>> Checkpoint::StringMetadata() const {
  std::vector<std::pair<std::string, std::string>> out = folder_metadata_;
  if (files_.empty()) return out;
  const File& f = files_[0];
  if (f.safetensors != nullptr) {
    for (const auto& [k, v] : f.safetensors->metadata()) out.emplace_back(k, v);
  }
  if (f.gguf != nullptr) {
    for (const std::string& k : f.gguf->metadata().keys()) {
      Result<std::string> v = f.gguf->metadata().GetString(k);
      if (v.ok()) out.emplace_back(k, *v);
    }
  }
  return out;
}

void Checkpoint::DropPages() const {
  // Each mapping starts on a page (mmap); DONTNEED on a read-only file mapping only unmaps pages.
  for (const File& f : files_) {
    if (f.mapped != nullptr && f.bytes > 0) {
      madvise(const_cast<uint8_t*>(f.mapped), f.bytes, MADV_DONTNEED);
    }
  }
}

const CkptTensor* Checkpoint::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// What a recording reader answers with: never computed on.
const CkptTensor& Placeholder() {
  static const std::vector<uint8_t>* bytes = new std::vector<uint8_t>(64, 0);
  static const CkptTensor* t = [] {
    auto* p = new CkptTensor();
    p->supported = true;
    p->type = GgmlType::kF32;
    p->dtype = "F32";
    p->data = bytes->data();
    return p;
  }();
  return *t;
}

const float* PlaceholderFloats() { return reinterpret_cast<const float*>(Placeholder().data); }

}  // namespace

Result<const CkptTensor*> WeightReader::Get(const std::string& name,
                                            const std::vector<int64_t>& shape) {
  if (recording()) {
    bool seen = false;
    for (const Requested& r : requested_) seen |= r.name == name;
    if (!seen) requested_.push_back({name, shape});
    return &Placeholder();
  }
  const CkptTensor* t = ckpt_->Find(name);
  if (t == nullptr) {
    return NotFound(ckpt_->path(), ": tensor '", name, "' (", ShapeString(shape), ") is missing");
  }
  if (t->shape != shape) {
    return Corrupt(ckpt_->file_paths()[t->file], ": tensor '", name, "' has shape ",
                   ShapeString(t->shape), "; expected ", ShapeString(shape));
  }
  if (!t->supported) {
    return Unsupported(ckpt_->file_paths()[t->file], ": tensor '", name, "' is ", t->dtype,
                       "; weights must be F32, F16, BF16 or a supported GGML type");
  }
  return t;
}

Result<std::vector<float>*> WeightReader::ToF32(const CkptTensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  const int64_t block = TypeTraits(t.type).block_elements;
  if (n % block != 0) {
    return Corrupt(ckpt_->path(), ": tensor '", t.name, "' has ", n, " elements, not whole ",
                   TypeName(t.type), " blocks");
  }
  owned_.emplace_back(static_cast<size_t>(n));
  DequantizeRow(t.type, t.data, owned_.back().data(), n);
  owned_bytes_ += static_cast<uint64_t>(n) * sizeof(float);
  return &owned_.back();
}

Result<Matrix> WeightReader::Conv1x1(const std::string& name, int64_t rows, int64_t cols) {
  if (recording()) {
    ASSIGN_OR_RETURN(const CkptTensor* t, Get(name, {rows, cols, 1, 1}));
    return Matrix{t->type, t->data, rows, cols};
  }
  return Linear(name, rows, cols);
}

Result<Matrix> WeightReader::Linear(const std::string& name, int64_t rows, int64_t cols) {
  const CkptTensor* t = recording() ? nullptr : ckpt_->Find(name);
  if (t != nullptr && t->shape.size() == 4 && t->shape[2] == 1 && t->shape[3] == 1) {
    ASSIGN_OR_RETURN(t, Get(name, {rows, cols, 1, 1}));
  } else {
    ASSIGN_OR_RETURN(t, Get(name, {rows, cols}));
  }
  if (!recording() && cols % TypeTraits(t->type).block_elements != 0) {
    return Unsupported(ckpt_->path(), ": tensor '", name, "': rows of ", cols, " are not whole ",
                       TypeName(t->type), " blocks");
  }
  return Matrix{t->type, MatrixData(*t), rows, cols};
}

Result<Matrix> WeightReader::MappedRows(const std::string& name, int64_t rows, int64_t cols) {
  ASSIGN_OR_RETURN(const CkptTensor* t, Get(name, {rows, cols}));
  if (!recording() && cols % TypeTraits(t->type).block_elements != 0) {
    return Unsupported(ckpt_->path(), ": tensor '", name, "': rows of ", cols, " are not whole ",
                       TypeName(t->type), " blocks");
  }
  return Matrix{t->type, t->data, rows, cols};
}

int WeightReader::Block(const std::string& prefix) {
  auto [it, added] = block_index_.emplace(prefix, static_cast<int>(blocks_.size()));
  if (added) blocks_.push_back(prefix);
  return it->second;
}

Result<Matrix> WeightReader::LinearRows(const std::string& name, int64_t total_rows, int64_t first,
                                        int64_t rows, int64_t cols) {
  ASSIGN_OR_RETURN(const CkptTensor* t, Get(name, {total_rows, cols}));
  CHECK(first + rows <= total_rows);
  if (recording()) return Matrix{t->type, t->data, rows, cols};
  return Matrix{t->type, MatrixData(*t) + RowBytes(t->type, cols) * first, rows, cols};
}

Result<Conv2dWeights> WeightReader::Conv(const std::string& prefix, int c_in, int c_out, int k,
                                         bool bias) {
  ASSIGN_OR_RETURN(const CkptTensor* t, Get(prefix + ".weight", {c_out, c_in, k, k}));
  const int64_t cols = static_cast<int64_t>(c_in) * k * k;
  if (!recording() && cols % TypeTraits(t->type).block_elements != 0) {
    return Unsupported(ckpt_->path(), ": tensor '", prefix, ".weight': rows of ", cols,
                       " are not whole ", TypeName(t->type), " blocks");
  }
  Conv2dWeights c;
  c.w = Matrix{t->type, MatrixData(*t), c_out, cols};
  c.c_in = c_in;
  c.c_out = c_out;
  c.k = k;
  if (bias) {
    ASSIGN_OR_RETURN(c.bias, Vector(prefix + ".bias", c_out));
  }
  return c;
}

Result<const float*> WeightReader::Vector(const std::string& name, int64_t n) {
  ASSIGN_OR_RETURN(const CkptTensor* t, Get(name, {n}));
  if (recording()) return PlaceholderFloats();
  ASSIGN_OR_RETURN(std::vector<float> * v, ToF32(*t));
  return v->data();
}

Result<const float*> WeightReader::Table(const std::string& name, int64_t rows, int64_t cols) {
  ASSIGN_OR_RETURN(const CkptTensor* t, Get(name, {rows, cols}));
  if (recording()) return PlaceholderFloats();
  ASSIGN_OR_RETURN(std::vector<float> * v, ToF32(*t));
  return v->data();
}

Result<Matrix> WeightReader::TransposedF32(const std::string& name, int64_t rows, int64_t cols) {
  ASSIGN_OR_RETURN(const float* src, Table(name, rows, cols));
  if (recording()) return Matrix{GgmlType::kF32, Placeholder().data, cols, rows};
  owned_.emplace_back(static_cast<size_t>(rows * cols));
  std::vector<float>& dst = owned_.back();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = src[r * cols + c];
  owned_bytes_ += static_cast<uint64_t>(rows * cols) * sizeof(float);
  return Matrix{GgmlType::kF32, reinterpret_cast<const uint8_t*>(dst.data()), cols, rows};
}

}  // namespace sluice::diffusion
