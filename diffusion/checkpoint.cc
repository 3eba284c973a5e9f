#include "diffusion/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "core/base/str_cat.h"
#include "core/kernels/matmul.h"
#include "core/quant/fp16.h"

namespace sluice::diffusion {

std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Result<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& path) {
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
  std::unique_ptr<Checkpoint> c(new Checkpoint());
  c->path_ = path;
  if (std::memcmp(magic, kGgufMagic, 4) == 0) {
    ASSIGN_OR_RETURN(c->gguf_, GgufFile::Open(path));
    c->file_bytes_ = c->gguf_->file_size();
    c->mapped_ = c->gguf_->mapped_data();
    for (const GgufTensorInfo& g : c->gguf_->tensors()) {
      CkptTensor t;
      t.name = g.name;
      t.type = g.type;
      t.dtype = TypeName(g.type);
      t.supported = IsSupportedWeightType(g.type);
      for (int d = g.n_dims - 1; d >= 0; --d) t.shape.push_back(g.ne[d]);
      t.data = c->gguf_->TensorData(g);
      t.offset = g.file_offset;
      t.nbytes = g.nbytes;
      c->tensors_.push_back(std::move(t));
    }
  } else {
    ASSIGN_OR_RETURN(c->safetensors_, SafetensorsFile::Open(path));
    c->file_bytes_ = c->safetensors_->file_size();
    for (const SafetensorsTensor& s : c->safetensors_->tensors()) {
      CkptTensor t;
      t.name = s.name;
      t.dtype = SafetensorsDtypeName(s.dtype);
      switch (s.dtype) {
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
      t.shape = s.shape;
      t.data = c->safetensors_->Data(s);
      t.offset = s.offset;
      t.nbytes = s.nbytes;
      c->mapped_ = t.data - s.offset;
      c->tensors_.push_back(std::move(t));
    }
  }
  for (size_t i = 0; i < c->tensors_.size(); ++i) c->index_.emplace(c->tensors_[i].name, i);
  return c;
}

std::string Checkpoint::MetadataValue(const std::string& key) const {
  if (safetensors_ != nullptr) {
    auto it = safetensors_->metadata().find(key);
    return it == safetensors_->metadata().end() ? "" : it->second;
  }
  if (gguf_ != nullptr) return gguf_->metadata().GetStringOr(key, "").value();
  return "";
}

std::vector<std::pair<std::string, std::string>> Checkpoint::StringMetadata() const {
  std::vector<std::pair<std::string, std::string>> out;
  if (safetensors_ != nullptr) {
    for (const auto& [k, v] : safetensors_->metadata()) out.emplace_back(k, v);
  }
  if (gguf_ != nullptr) {
    for (const std::string& k : gguf_->metadata().keys()) {
      Result<std::string> v = gguf_->metadata().GetString(k);
      if (v.ok()) out.emplace_back(k, *v);
    }
  }
  return out;
}

void Checkpoint::DropPages() const {
  if (mapped_ == nullptr || file_bytes_ == 0) return;
  // The mapping starts on a page (mmap); DONTNEED on a read-only file mapping only unmaps pages.
  madvise(const_cast<uint8_t*>(mapped_), file_bytes_, MADV_DONTNEED);
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
    return Corrupt(ckpt_->path(), ": tensor '", name, "' has shape ", ShapeString(t->shape),
                   "; expected ", ShapeString(shape));
  }
  if (!t->supported) {
    return Unsupported(ckpt_->path(), ": tensor '", name, "' is ", t->dtype,
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
