#include "io/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/base/saturating.h"
#include "io/read_only_mapping.h"

namespace sluice {
namespace {

using nlohmann::json;

struct DtypeInfo {
  SafetensorsDtype dtype;
  const char* name;
  int bytes;
};
constexpr DtypeInfo kDtypes[] = {
    {SafetensorsDtype::kF64, "F64", 8},        {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kF16, "F16", 2},        {SafetensorsDtype::kBF16, "BF16", 2},
    {SafetensorsDtype::kI64, "I64", 8},        {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kI16, "I16", 2},        {SafetensorsDtype::kI8, "I8", 1},
    {SafetensorsDtype::kU8, "U8", 1},          {SafetensorsDtype::kBool, "BOOL", 1},
    {SafetensorsDtype::kF8E4M3, "F8_E4M3", 1}, {SafetensorsDtype::kF8E5M2, "F8_E5M2", 1},
};

// Bounded like the reference: real checkpoints have at most 5 dims.
constexpr size_t kMaxDims = 8;

}  // namespace

bool ParseSafetensorsDtype(std::string_view name, SafetensorsDtype* out) {
  for (const DtypeInfo& d : kDtypes) {
    if (name == d.name) {
      *out = d.dtype;
      return true;
    }
  }
  return false;
}

const char* SafetensorsDtypeName(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d.name;
  }
  return "?";
}

int SafetensorsDtypeBytes(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (d.dtype == dtype) return d.bytes;
  }
  return 0;
}

Result<SafetensorsLayout> ParseSafetensors(const uint8_t* data, uint64_t size,
                                           const std::string& source) {
  if (size < 8) {
    return Corrupt(source,
                   ": a safetensors file starts with an 8-byte header length; the file has ", size,
                   " bytes");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > kSafetensorsMaxHeaderBytes || n > size - 8) {
    return Corrupt(source, ": header length ", n, " at offset 0 exceeds ",
                   n > kSafetensorsMaxHeaderBytes ? "the 100 MB limit" : "the file", " (", size,
                   " bytes)");
  }
  if (n < 2) return Corrupt(source, ": header of ", n, " bytes cannot hold a JSON object");
  const std::string_view text(reinterpret_cast<const char*>(data + 8), n);
  json header = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded() || !header.is_object()) {
    return Corrupt(source, ": the header (", n, " bytes at offset 8) is not a JSON object");
  }
  SafetensorsLayout layout;
  layout.data_offset = 8 + n;
  layout.file_size = size;
  const uint64_t buffer = size - layout.data_offset;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) return Corrupt(source, ": __metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) {
          return Corrupt(source, ": __metadata__ value of '", m.key(), "' is not a string");
        }
        layout.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string& what) {
      return Corrupt(source, ": tensor '", name, "': ", what);
    };
    if (!v.is_object()) return bad("its entry is not an object");
    SafetensorsTensor t;
    t.name = name;
    auto dtype = v.find("dtype");
    if (dtype == v.end() || !dtype->is_string()) return bad("no dtype string");
    if (!ParseSafetensorsDtype(dtype->get<std::string>(), &t.dtype)) {
      return Unsupported(source, ": tensor '", name, "': dtype '", dtype->get<std::string>(),
                         "' is not one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL F8_E4M3 F8_E5M2");
    }
    auto shape = v.find("shape");
    if (shape == v.end() || !shape->is_array() || shape->size() > kMaxDims) {
      return bad("shape must be an array of at most 8 dimensions");
    }
    uint64_t elements = 1;
    bool overflow = false;
    for (const json& d : *shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 62)) {
        return bad("shape " + shape->dump() +
                   " has a dimension that is not an integer in [0, 2^62]");
      }
      t.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
      elements = SatMul(elements, d.get<uint64_t>());
      overflow |= elements == UINT64_MAX;
    }
    auto offsets = v.find("data_offsets");
    if (offsets == v.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned()) {
      return bad("data_offsets must be [begin, end] with unsigned integers");
    }
    const uint64_t begin = (*offsets)[0].get<uint64_t>();
    const uint64_t end = (*offsets)[1].get<uint64_t>();
    if (begin > end || end > buffer) {
      return bad("data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                 "] are not a range inside the " + std::to_string(buffer) + "-byte data buffer");
    }
    const uint64_t expect = SatMul(elements, static_cast<uint64_t>(SafetensorsDtypeBytes(t.dtype)));
    if (overflow || expect == UINT64_MAX || expect != end - begin) {
      return bad("shape " + shape->dump() + " of " + SafetensorsDtypeName(t.dtype) + " needs " +
                 (overflow || expect == UINT64_MAX ? std::string("more than 2^64")
                                                   : std::to_string(expect)) +
                 " bytes; data_offsets give " + std::to_string(end - begin));
    }
    t.offset = layout.data_offset + begin;
    t.nbytes = end - begin;
    layout.tensors.push_back(std::move(t));
  }
  // Data order; ranges must tile the buffer exactly (no overlap, no hole).
  std::sort(layout.tensors.begin(), layout.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) {
              return a.offset < b.offset || (a.offset == b.offset && a.nbytes < b.nbytes);
            });
  uint64_t at = layout.data_offset;
  for (const SafetensorsTensor& t : layout.tensors) {
    if (t.offset < at) {
      return Corrupt(
          source, ": tensor '", t.name, "' at data offset ", t.offset - layout.data_offset,
          " overlaps the tensor before it (which ends at ", at - layout.data_offset, ")");
    }
    if (t.offset > at) {
      return Corrupt(source, ": data bytes [", at - layout.data_offset, ", ",
                     t.offset - layout.data_offset, ") before tensor '", t.name,
                     "' belong to no tensor");
    }
    at = t.offset + t.nbytes;
  }
  if (at != size) {
    return Corrupt(source, ": the data buffer has ", size - at,
                   " bytes after the last tensor that belong to no tensor");
  }
  return layout;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  ASSIGN_OR_RETURN(file->mapping_, ReadOnlyMapping::Map(path, 8, "the 8-byte header length"));
  file->mapped_ = file->mapping_->data();
  ASSIGN_OR_RETURN(file->layout_, ParseSafetensors(file->mapped_, file->mapping_->size(), path));
  for (size_t i = 0; i < file->layout_.tensors.size(); ++i) {
    if (!file->index_.emplace(file->layout_.tensors[i].name, i).second) {
      return Corrupt(path, ": tensor '", file->layout_.tensors[i].name, "' appears twice");
    }
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() = default;

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(std::string(name));
  return it == index_.end() ? nullptr : &layout_.tensors[it->second];
}

}  // namespace sluice
