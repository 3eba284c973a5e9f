#include "io/gguf_reader.h"

#include <cerrno>
#include <cstring>
#include <unordered_set>

#include "io/metadata_codec.h"
#include "io/read_only_mapping.h"

namespace sluice {
namespace {

constexpr uint64_t kHeaderBytes = 24;  // magic, version, tensor_count, metadata_kv_count
// The smallest tensor info: name length (8) + 1-byte name + n_dims (4) + one ne (8) + type (4) +
// offset (8). Lets an absurd tensor_count fail before anything is allocated for it.
constexpr uint64_t kMinTensorInfoBytes = 33;

// Bounds-checked little-endian reads from an in-memory image. `field` is a callable returning the
// field's description; it is only invoked to build an error, so the happy path allocates nothing.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& source, uint64_t pos)
      : data_(data), size_(size), source_(source), pos_(pos) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename Field>
  Status Need(uint64_t bytes, const Field& field) const {
    if (bytes <= size_ - pos_) return Status::Ok();
    return Corrupt(source_, ": ", field(), " at offset ", pos_, ": needs ", bytes,
                   " bytes but only ", size_ - pos_, " remain (file size ", size_, ")");
  }
  // A little-endian scalar of type T (the file's byte order is the host's: x86, arm64).
  template <typename T, typename Field>
  Result<T> Scalar(const Field& field) {
    RETURN_IF_ERROR(Need(sizeof(T), field));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  template <typename Field>
  Result<uint32_t> U32(const Field& field) {
    return Scalar<uint32_t>(field);
  }
  template <typename Field>
  Result<uint64_t> U64(const Field& field) {
    return Scalar<uint64_t>(field);
  }
  // uint64 length + bytes.
  template <typename Field>
  Result<std::string> String(const Field& field) {
    const uint64_t at = pos_;
    ASSIGN_OR_RETURN(uint64_t length, U64(field));
    if (length > size_ - pos_) {
      return Corrupt(source_, ": ", field(), " length at offset ", at, ": ", length,
                     " bytes, but only ", size_ - pos_, " remain (file size ", size_, ")");
    }
    std::string s(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  const std::string& source_;
  uint64_t pos_;
};

std::string Printable(const uint8_t* bytes, size_t n) {
  std::string out = "'";
  static const char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    if (bytes[i] >= 0x20 && bytes[i] < 0x7f) {
      out += static_cast<char>(bytes[i]);
    } else {
      out += "\\x";
      out += kHex[bytes[i] >> 4];
      out += kHex[bytes[i] & 15];
    }
  }
  return out + "'";
}

Status CheckVersion(uint32_t version, const std::string& source) {
  if (version == 2 || version == 3) return Status::Ok();
  if (version == 1) {
    return Unsupported(source,
                       ": version at offset 4: GGUF version 1 (32-bit counts) is not "
                       "supported; expected 2 or 3. Re-convert the model with a current "
                       "converter");
  }
  const uint32_t swapped = __builtin_bswap32(version);
  if (swapped == 2 || swapped == 3) {
    return Unsupported(source, ": version at offset 4: this is a big-endian GGUF (version ",
                       swapped, "); only little-endian files are supported");
  }
  return Unsupported(source, ": version at offset 4: expected 2 or 3, found ", version);
}

// `section_end`: where the metadata section ends; the codec does not report each key's offset,
// so errors name the section's range.
Result<uint64_t> ReadAlignment(const Metadata& metadata, const std::string& source,
                               uint64_t section_end) {
  if (!metadata.Has(kGgufAlignmentKey)) return kGgufDefaultAlignment;
  const MetaValue* v = metadata.Find(kGgufAlignmentKey);
  if (v->type != MetaType::kU32) {
    return Corrupt(source, ": metadata key '", kGgufAlignmentKey, "' in the metadata at offsets ",
                   kHeaderBytes, "..", section_end, ": expected uint32, found ",
                   MetaTypeName(v->type));
  }
  if (v->u == 0 || (v->u & (v->u - 1)) != 0) {
    return Corrupt(source, ": metadata key '", kGgufAlignmentKey, "' in the metadata at offsets ",
                   kHeaderBytes, "..", section_end, ": expected a power of two, found ", v->u);
  }
  return v->u;
}

// Parses one tensor info record at the cursor into `t` and checks its shape and type. Offsets are
// checked later, once the data section's start is known.
Status ParseTensorInfo(Cursor& in, uint64_t index, const std::string& source, GgufTensorInfo& t) {
  t.info_offset = in.pos();
  auto field = [&](const char* what) {
    return [&t, index, what] {
      return t.name.empty() ? StrCat("tensor ", index, " ", what)
                            : StrCat("tensor ", index, " ('", t.name, "') ", what);
    };
  };
  ASSIGN_OR_RETURN(t.name, in.String(field("name")));
  if (t.name.empty()) {
    return Corrupt(source, ": ", field("name")(), " at offset ", t.info_offset,
                   ": empty tensor name");
  }
  const uint64_t dims_at = in.pos();
  ASSIGN_OR_RETURN(uint32_t n_dims, in.U32(field("n_dims")));
  if (n_dims < 1 || n_dims > kGgufMaxDims) {
    return Corrupt(source, ": ", field("n_dims")(), " at offset ", dims_at, ": expected 1..",
                   kGgufMaxDims, ", found ", n_dims);
  }
  t.n_dims = static_cast<int>(n_dims);
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t ne_at = in.pos();
    ASSIGN_OR_RETURN(uint64_t ne, in.U64(field("ne")));
    if (ne == 0 || ne > static_cast<uint64_t>(INT64_MAX)) {
      return Corrupt(source, ": ", field("ne")(), "[", d, "] at offset ", ne_at,
                     ": expected 1..2^63-1 elements, found ", ne);
    }
    t.ne[d] = static_cast<int64_t>(ne);
  }
  const uint64_t type_at = in.pos();
  ASSIGN_OR_RETURN(uint32_t type_id, in.U32(field("type")));
  std::optional<GgmlTypeTraits> traits = GetTypeTraits(type_id);
  if (!traits) {
    return Unsupported(source, ": ", field("type")(), " at offset ", type_at,
                       ": unknown ggml type id ", type_id);
  }
  t.type = traits->type;
  ASSIGN_OR_RETURN(t.relative_offset, in.U64(field("offset")));

  if (t.ne[0] % traits->block_elements != 0) {
    return Corrupt(source, ": ", field("ne")(), "[0] at offset ", dims_at + 4, ": ", t.ne[0],
                   " elements per row is not a multiple of the ", traits->name, " block of ",
                   traits->block_elements);
  }
  // nbytes = blocks per row * block bytes * ne[1] * ne[2] * ne[3], every step overflow-checked.
  uint64_t bytes = static_cast<uint64_t>(t.ne[0] / traits->block_elements);
  bool overflow = __builtin_mul_overflow(bytes, static_cast<uint64_t>(traits->block_bytes), &bytes);
  for (int d = 1; d < 4; ++d) {
    overflow = overflow || __builtin_mul_overflow(bytes, static_cast<uint64_t>(t.ne[d]), &bytes);
  }
  if (overflow) {
    return Corrupt(source, ": ", field("ne")(), " at offset ", dims_at + 4, ": shape [", t.ne[0],
                   ", ", t.ne[1], ", ", t.ne[2], ", ", t.ne[3], "] of ", traits->name,
                   " overflows a 64-bit byte count");
  }
  t.nbytes = bytes;
  return Status::Ok();
}

// Places every tensor in the data section and checks it lies inside the file.
Status PlaceTensors(GgufLayout& layout, const std::string& source) {
  for (size_t i = 0; i < layout.tensors.size(); ++i) {
    GgufTensorInfo& t = layout.tensors[i];
    // The offset field is the last 8 bytes of the record; name it in the error.
    const uint64_t offset_at = t.info_offset + 8 + t.name.size() + 4 + 8 * t.n_dims + 4;
    if (t.relative_offset % layout.alignment != 0) {
      return Corrupt(source, ": tensor ", i, " ('", t.name, "') offset at offset ", offset_at, ": ",
                     t.relative_offset, " is not a multiple of the alignment ", layout.alignment);
    }
    uint64_t end = 0;
    if (__builtin_add_overflow(layout.data_offset, t.relative_offset, &t.file_offset) ||
        __builtin_add_overflow(t.file_offset, t.nbytes, &end) || end > layout.file_size) {
      return Corrupt(source, ": tensor ", i, " ('", t.name, "') offset at offset ", offset_at,
                     ": data [", layout.data_offset, " + ", t.relative_offset, ", +", t.nbytes,
                     " bytes) extends beyond the end of the file (size ", layout.file_size, ")");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<GgufLayout> ParseGguf(const uint8_t* data, uint64_t size, const std::string& source) {
  GgufLayout layout;
  layout.file_size = size;
  if (size < 4 || std::memcmp(data, kGgufMagic, 4) != 0) {
    return Corrupt(source, ": magic at offset 0: expected 'GGUF', found ",
                   Printable(data, size < 4 ? size : 4), size < 4 ? " (file too short)" : "");
  }
  Cursor header(data, size, source, 4);
  ASSIGN_OR_RETURN(layout.version, header.U32([] { return "version"; }));
  RETURN_IF_ERROR(CheckVersion(layout.version, source));
  ASSIGN_OR_RETURN(uint64_t tensor_count, header.U64([] { return "tensor_count"; }));
  ASSIGN_OR_RETURN(uint64_t kv_count, header.U64([] { return "metadata_kv_count"; }));
  if (tensor_count > (size - kHeaderBytes) / kMinTensorInfoBytes) {
    return Corrupt(source, ": tensor_count at offset 8: ", tensor_count,
                   " tensors cannot fit in a file of ", size, " bytes");
  }

  uint64_t consumed = 0;
  ASSIGN_OR_RETURN(layout.metadata, DecodeMetadataKv(data + kHeaderBytes, size - kHeaderBytes,
                                                     kv_count, source, kHeaderBytes, &consumed));
  layout.metadata.set_source(source);
  Cursor infos(data, size, source, kHeaderBytes + consumed);
  ASSIGN_OR_RETURN(layout.alignment, ReadAlignment(layout.metadata, source, infos.pos()));

  if (tensor_count > infos.remaining() / kMinTensorInfoBytes) {
    return Corrupt(source, ": tensor_count at offset 8: ", tensor_count,
                   " tensor infos cannot fit in the ", infos.remaining(),
                   " bytes left after the metadata (which ends at offset ", infos.pos(), ")");
  }
  layout.tensors.resize(tensor_count);
  std::unordered_set<std::string_view> names;
  names.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo& t = layout.tensors[i];
    RETURN_IF_ERROR(ParseTensorInfo(infos, i, source, t));
    if (!names.insert(t.name).second) {
      return Corrupt(source, ": tensor ", i, " name at offset ", t.info_offset, ": '", t.name,
                     "' appears twice");
    }
  }

  // The data section starts at the next multiple of the alignment after the tensor infos.
  const uint64_t infos_end = infos.pos();
  if (__builtin_add_overflow(infos_end, layout.alignment - 1, &layout.data_offset)) {
    return Corrupt(source, ": data section after offset ", infos_end, ": alignment ",
                   layout.alignment, " overflows");
  }
  layout.data_offset -= layout.data_offset % layout.alignment;
  // A file without tensors (a vocabulary-only GGUF) may end before the padding.
  if (tensor_count > 0 && layout.data_offset > size) {
    return Corrupt(source, ": data section at offset ", layout.data_offset,
                   " (tensor infos end at ", infos_end, ", aligned to ", layout.alignment,
                   ") starts beyond the end of the file (size ", size, ")");
  }
  RETURN_IF_ERROR(PlaceTensors(layout, source));
  return layout;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->path_ = path;
  ASSIGN_OR_RETURN(file->mapping_, ReadOnlyMapping::Map(path, kHeaderBytes, "header"));
  file->mapped_ = file->mapping_->data();
  ASSIGN_OR_RETURN(file->layout_, ParseGguf(file->mapped_, file->mapping_->size(), path));
  file->index_.reserve(file->layout_.tensors.size());
  for (size_t i = 0; i < file->layout_.tensors.size(); ++i) {
    file->index_.emplace(file->layout_.tensors[i].name, i);
  }
  return file;
}

GgufFile::~GgufFile() = default;

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &layout_.tensors[it->second];
}

}  // namespace sluice
