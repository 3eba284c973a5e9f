#include "io/metadata_codec.h"

#include <cstring>

namespace sluice {
namespace {

// Bytes of one scalar of `type`; 0 for string/array (variable length) and unknown types.
uint64_t ScalarBytes(MetaType type) {
  switch (type) {
    case MetaType::kU8:
    case MetaType::kI8:
    case MetaType::kBool:
      return 1;
    case MetaType::kU16:
    case MetaType::kI16:
      return 2;
    case MetaType::kU32:
    case MetaType::kI32:
    case MetaType::kF32:
      return 4;
    case MetaType::kU64:
    case MetaType::kI64:
    case MetaType::kF64:
      return 8;
    case MetaType::kString:
    case MetaType::kArray:
      return 0;
  }
  return 0;
}

bool IsKnownType(uint32_t t) { return t <= static_cast<uint32_t>(MetaType::kF64); }
bool IsFloatType(MetaType t) { return t == MetaType::kF32 || t == MetaType::kF64; }
bool IsSignedType(MetaType t) {
  return t == MetaType::kI8 || t == MetaType::kI16 || t == MetaType::kI32 || t == MetaType::kI64;
}

template <typename T>
void Put(std::string* out, T v) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &v, sizeof(T));
  out->append(bytes, sizeof(T));
}

void PutString(std::string* out, const std::string& s) {
  Put<uint64_t>(out, s.size());
  out->append(s);
}

// Writes one scalar whose bits come from (u, i, f) as MetaValue stores them.
void PutScalar(std::string* out, MetaType type, uint64_t u, int64_t i, double f) {
  switch (type) {
    case MetaType::kU8:
      Put<uint8_t>(out, static_cast<uint8_t>(u));
      return;
    case MetaType::kBool:
      Put<uint8_t>(out, static_cast<uint8_t>(u));
      return;
    case MetaType::kI8:
      Put<int8_t>(out, static_cast<int8_t>(i));
      return;
    case MetaType::kU16:
      Put<uint16_t>(out, static_cast<uint16_t>(u));
      return;
    case MetaType::kI16:
      Put<int16_t>(out, static_cast<int16_t>(i));
      return;
    case MetaType::kU32:
      Put<uint32_t>(out, static_cast<uint32_t>(u));
      return;
    case MetaType::kI32:
      Put<int32_t>(out, static_cast<int32_t>(i));
      return;
    case MetaType::kF32:
      Put<float>(out, static_cast<float>(f));
      return;
    case MetaType::kU64:
      Put<uint64_t>(out, u);
      return;
    case MetaType::kI64:
      Put<int64_t>(out, i);
      return;
    case MetaType::kF64:
      Put<double>(out, f);
      return;
    case MetaType::kString:
    case MetaType::kArray:
      break;
  }
  CHECK(false) << "PutScalar: not a scalar type " << static_cast<uint32_t>(type);
}

// A bounds-checked cursor over the section; every error names source, absolute offset and key.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& source, uint64_t base)
      : data_(data), size_(size), source_(source), base_(base) {}

  uint64_t pos() const { return pos_; }
  void set_key(const std::string* key, uint64_t key_offset) {
    key_ = key;
    key_offset_ = key_offset;
  }

  Status Error(uint64_t at, const std::string& what) const {
    std::string where = key_ != nullptr
                            ? StrCat("metadata key '", *key_, "' (at offset ", base_ + key_offset_,
                                     "), value at offset ", base_ + at)
                            : StrCat("metadata entry at offset ", base_ + at);
    return Corrupt(source_, ": ", where, ": ", what);
  }

  Status Need(uint64_t bytes, const char* what) const {
    if (bytes > size_ - pos_) {
      return Error(pos_, StrCat(what, " needs ", bytes, " bytes but only ", size_ - pos_,
                                " remain (section ends at offset ", base_ + size_, ")"));
    }
    return Status::Ok();
  }

  template <typename T>
  Result<T> Get(const char* what) {
    RETURN_IF_ERROR(Need(sizeof(T), what));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  Result<std::string> GetString(const char* what, uint64_t max_bytes) {
    uint64_t at = pos_;
    ASSIGN_OR_RETURN(uint64_t length, Get<uint64_t>(what));
    if (length > max_bytes) {
      return Error(at, StrCat(what, " length ", length, " exceeds the limit of ", max_bytes));
    }
    RETURN_IF_ERROR(Need(length, what));
    std::string s(reinterpret_cast<const char*>(data_ + pos_), length);
    pos_ += length;
    return s;
  }

  // Reads one scalar of `type` into (u, i, f) the way MetaValue stores it.
  Status GetScalar(MetaType type, uint64_t* u, int64_t* i, double* f) {
    switch (type) {
      case MetaType::kU8: {
        ASSIGN_OR_RETURN(*u, Get<uint8_t>("uint8"));
        break;
      }
      case MetaType::kBool: {
        ASSIGN_OR_RETURN(*u, Get<uint8_t>("bool"));
        break;
      }
      case MetaType::kI8: {
        ASSIGN_OR_RETURN(*i, Get<int8_t>("int8"));
        break;
      }
      case MetaType::kU16: {
        ASSIGN_OR_RETURN(*u, Get<uint16_t>("uint16"));
        break;
      }
      case MetaType::kI16: {
        ASSIGN_OR_RETURN(*i, Get<int16_t>("int16"));
        break;
      }
      case MetaType::kU32: {
        ASSIGN_OR_RETURN(*u, Get<uint32_t>("uint32"));
        break;
      }
      case MetaType::kI32: {
        ASSIGN_OR_RETURN(*i, Get<int32_t>("int32"));
        break;
      }
      case MetaType::kF32: {
        ASSIGN_OR_RETURN(*f, Get<float>("float32"));
        break;
      }
      case MetaType::kU64: {
        ASSIGN_OR_RETURN(*u, Get<uint64_t>("uint64"));
        break;
      }
      case MetaType::kI64: {
        ASSIGN_OR_RETURN(*i, Get<int64_t>("int64"));
        break;
      }
      case MetaType::kF64: {
        ASSIGN_OR_RETURN(*f, Get<double>("float64"));
        break;
      }
      case MetaType::kString:
      case MetaType::kArray:
        CHECK(false) << "GetScalar: not a scalar type";
    }
    return Status::Ok();
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& source_;
  uint64_t base_;
  const std::string* key_ = nullptr;
  uint64_t key_offset_ = 0;
};

Status DecodeArray(Cursor& in, MetaValue* value, uint64_t remaining_bytes) {
  uint64_t at = in.pos();
  ASSIGN_OR_RETURN(uint32_t elem_type, in.Get<uint32_t>("array element type"));
  if (!IsKnownType(elem_type)) {
    return in.Error(at, StrCat("unknown array element type ", elem_type, " (expected 0..12)"));
  }
  MetaType type = static_cast<MetaType>(elem_type);
  if (type == MetaType::kArray) {
    return Unsupported(in.Error(at, "arrays of arrays are not supported").message());
  }
  uint64_t count_at = in.pos();
  ASSIGN_OR_RETURN(uint64_t count, in.Get<uint64_t>("array count"));
  // Every element takes at least its scalar size (8 for a string's length): checking this first
  // keeps a corrupt count from reserving memory it can never fill.
  uint64_t min_elem = type == MetaType::kString ? 8 : ScalarBytes(type);
  if (count > (remaining_bytes - (in.pos() - at)) / min_elem) {
    return in.Error(count_at,
                    StrCat("array count ", count, " of ", MetaTypeName(type), " cannot fit in the ",
                           remaining_bytes - (in.pos() - at), " bytes left in the section"));
  }
  value->array_type = type;
  if (type == MetaType::kString) {
    value->strings.reserve(count);
    for (uint64_t k = 0; k < count; ++k) {
      ASSIGN_OR_RETURN(std::string s, in.GetString("array string", kMaxMetaStringBytes));
      value->strings.push_back(std::move(s));
    }
  } else if (IsFloatType(type)) {
    value->floats.reserve(count);
    for (uint64_t k = 0; k < count; ++k) {
      uint64_t u = 0;
      int64_t i = 0;
      double f = 0;
      RETURN_IF_ERROR(in.GetScalar(type, &u, &i, &f));
      value->floats.push_back(f);
    }
  } else {
    value->ints.reserve(count);
    for (uint64_t k = 0; k < count; ++k) {
      uint64_t u = 0;
      int64_t i = 0;
      double f = 0;
      RETURN_IF_ERROR(in.GetScalar(type, &u, &i, &f));
      // Unsigned values are stored bit-cast (MetaValue's convention).
      value->ints.push_back(IsSignedType(type) ? i : static_cast<int64_t>(u));
    }
  }
  return Status::Ok();
}

}  // namespace

void EncodeMetadataKv(const Metadata& metadata, std::string* out) {
  for (const std::string& key : metadata.keys()) {
    const MetaValue* v = metadata.Find(key);
    CHECK(v != nullptr) << key;
    PutString(out, key);
    Put<uint32_t>(out, static_cast<uint32_t>(v->type));
    if (v->type == MetaType::kString) {
      PutString(out, v->s);
    } else if (v->type == MetaType::kArray) {
      CHECK(v->array_type != MetaType::kArray) << "metadata key '" << key << "': nested array";
      Put<uint32_t>(out, static_cast<uint32_t>(v->array_type));
      Put<uint64_t>(out, v->ArraySize());
      if (v->array_type == MetaType::kString) {
        for (const std::string& s : v->strings) PutString(out, s);
      } else if (IsFloatType(v->array_type)) {
        for (double f : v->floats) PutScalar(out, v->array_type, 0, 0, f);
      } else {
        for (int64_t x : v->ints) {
          PutScalar(out, v->array_type, static_cast<uint64_t>(x), x, 0);
        }
      }
    } else {
      PutScalar(out, v->type, v->u, v->i, v->f);
    }
  }
}

Result<Metadata> DecodeMetadataKv(const uint8_t* data, uint64_t size, uint64_t count,
                                  const std::string& source, uint64_t base_offset,
                                  uint64_t* consumed) {
  Metadata metadata(source);
  Cursor in(data, size, source, base_offset);
  // A KV pair is at least 8 (key length) + 4 (type) + 1 (smallest value) bytes.
  if (count > size / 13) {
    return Corrupt(source, ": metadata at offset ", base_offset, ": ", count,
                   " key/value pairs cannot fit in ", size, " bytes");
  }
  for (uint64_t n = 0; n < count; ++n) {
    uint64_t entry_at = in.pos();
    in.set_key(nullptr, entry_at);
    ASSIGN_OR_RETURN(std::string key, in.GetString("key", kMaxMetaKeyBytes));
    in.set_key(&key, entry_at);
    if (metadata.Has(key)) {
      return in.Error(entry_at, StrCat("duplicate key (entry ", n, " of ", count, ")"));
    }
    uint64_t type_at = in.pos();
    ASSIGN_OR_RETURN(uint32_t type_id, in.Get<uint32_t>("value type"));
    if (!IsKnownType(type_id)) {
      return in.Error(type_at, StrCat("unknown value type ", type_id, " (expected 0..12)"));
    }
    MetaValue value;
    value.type = static_cast<MetaType>(type_id);
    if (value.type == MetaType::kString) {
      ASSIGN_OR_RETURN(value.s, in.GetString("string", kMaxMetaStringBytes));
    } else if (value.type == MetaType::kArray) {
      RETURN_IF_ERROR(DecodeArray(in, &value, size - in.pos()));
    } else {
      RETURN_IF_ERROR(in.GetScalar(value.type, &value.u, &value.i, &value.f));
    }
    metadata.Set(std::move(key), std::move(value));
  }
  if (consumed != nullptr) *consumed = in.pos();
  return metadata;
}

}  // namespace sluice
