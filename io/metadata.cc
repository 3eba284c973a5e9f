#include "io/metadata.h"

#include <cmath>
#include <limits>

namespace sluice {
namespace {

bool IsUnsigned(MetaType t) {
  return t == MetaType::kU8 || t == MetaType::kU16 || t == MetaType::kU32 || t == MetaType::kU64;
}
bool IsSigned(MetaType t) {
  return t == MetaType::kI8 || t == MetaType::kI16 || t == MetaType::kI32 || t == MetaType::kI64;
}
bool IsFloat(MetaType t) { return t == MetaType::kF32 || t == MetaType::kF64; }

std::string TypeDescription(const MetaValue& v) {
  if (v.type == MetaType::kArray) return StrCat("array of ", MetaTypeName(v.array_type));
  return MetaTypeName(v.type);
}

}  // namespace

// One line per type: it reads as the table it is.
// clang-format off
const char* MetaTypeName(MetaType type) {
  switch (type) {
    case MetaType::kU8: return "uint8";
    case MetaType::kI8: return "int8";
    case MetaType::kU16: return "uint16";
    case MetaType::kI16: return "int16";
    case MetaType::kU32: return "uint32";
    case MetaType::kI32: return "int32";
    case MetaType::kF32: return "float32";
    case MetaType::kBool: return "bool";
    case MetaType::kString: return "string";
    case MetaType::kArray: return "array";
    case MetaType::kU64: return "uint64";
    case MetaType::kI64: return "int64";
    case MetaType::kF64: return "float64";
  }
  return "unknown";
}
// clang-format on
// clang-format on

size_t MetaValue::ArraySize() const {
  if (type != MetaType::kArray) return 0;
  if (array_type == MetaType::kString) return strings.size();
  if (IsFloat(array_type)) return floats.size();
  return ints.size();
}

const MetaValue* Metadata::Find(std::string_view key) const {
  auto it = values_.find(std::string(key));
  return it == values_.end() ? nullptr : &it->second;
}

#define SLUICE_META_LOOKUP(key, v)                                     \
  const MetaValue* v = Find(key);                                      \
  if (v == nullptr) {                                                  \
    return NotFound(source_, ": metadata key '", key, "' is missing"); \
  }

namespace {
template <typename T>
Status WrongType(const std::string& source, std::string_view key, const char* expected,
                 const MetaValue& v) {
  return Corrupt(source, ": metadata key '", key, "': expected ", expected, ", found ",
                 TypeDescription(v));
}
}  // namespace

Result<uint64_t> Metadata::GetUint(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (IsUnsigned(v->type) || v->type == MetaType::kBool) return v->u;
  if (IsSigned(v->type)) {
    if (v->i < 0) {
      return Corrupt(source_, ": metadata key '", key, "': expected a non-negative integer, found ",
                     v->i);
    }
    return static_cast<uint64_t>(v->i);
  }
  return WrongType<uint64_t>(source_, key, "an integer", *v);
}

Result<int64_t> Metadata::GetInt(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (IsSigned(v->type)) return v->i;
  if (IsUnsigned(v->type)) {
    if (v->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Corrupt(source_, ": metadata key '", key, "': value ", v->u, " overflows int64");
    }
    return static_cast<int64_t>(v->u);
  }
  return WrongType<int64_t>(source_, key, "an integer", *v);
}

Result<double> Metadata::GetFloat(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (IsFloat(v->type)) return v->f;
  if (IsUnsigned(v->type)) return static_cast<double>(v->u);
  if (IsSigned(v->type)) return static_cast<double>(v->i);
  return WrongType<double>(source_, key, "a number", *v);
}

Result<bool> Metadata::GetBool(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (v->type == MetaType::kBool) return v->u != 0;
  return WrongType<bool>(source_, key, "a bool", *v);
}

Result<std::string> Metadata::GetString(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (v->type == MetaType::kString) return v->s;
  return WrongType<std::string>(source_, key, "a string", *v);
}

Result<std::vector<std::string>> Metadata::GetStringArray(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (v->type == MetaType::kArray && v->array_type == MetaType::kString) return v->strings;
  return WrongType<int>(source_, key, "an array of strings", *v);
}

Result<std::vector<double>> Metadata::GetFloatArray(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (v->type == MetaType::kArray && IsFloat(v->array_type)) return v->floats;
  if (v->type == MetaType::kArray && (IsSigned(v->array_type) || IsUnsigned(v->array_type))) {
    return std::vector<double>(v->ints.begin(), v->ints.end());
  }
  return WrongType<int>(source_, key, "an array of numbers", *v);
}

Result<std::vector<int64_t>> Metadata::GetIntArray(std::string_view key) const {
  SLUICE_META_LOOKUP(key, v);
  if (v->type == MetaType::kArray &&
      (IsSigned(v->array_type) || IsUnsigned(v->array_type) || v->array_type == MetaType::kBool)) {
    return v->ints;
  }
  return WrongType<int>(source_, key, "an array of integers", *v);
}

Result<uint64_t> Metadata::GetUintOr(std::string_view key, uint64_t fallback) const {
  if (!Has(key)) return fallback;
  return GetUint(key);
}
Result<double> Metadata::GetFloatOr(std::string_view key, double fallback) const {
  if (!Has(key)) return fallback;
  return GetFloat(key);
}
Result<std::string> Metadata::GetStringOr(std::string_view key, std::string fallback) const {
  if (!Has(key)) return fallback;
  return GetString(key);
}
Result<bool> Metadata::GetBoolOr(std::string_view key, bool fallback) const {
  if (!Has(key)) return fallback;
  return GetBool(key);
}

void Metadata::Set(std::string key, MetaValue value) {
  auto it = values_.find(key);
  if (it == values_.end()) {
    keys_.push_back(key);
    values_.emplace(std::move(key), std::move(value));
  } else {
    it->second = std::move(value);
  }
}

void Metadata::SetU32(std::string key, uint32_t v) {
  Set(std::move(key), MetaValue{.type = MetaType::kU32, .u = v});
}
void Metadata::SetU64(std::string key, uint64_t v) {
  Set(std::move(key), MetaValue{.type = MetaType::kU64, .u = v});
}
void Metadata::SetI32(std::string key, int32_t v) {
  Set(std::move(key), MetaValue{.type = MetaType::kI32, .i = v});
}
void Metadata::SetF32(std::string key, float v) {
  Set(std::move(key), MetaValue{.type = MetaType::kF32, .f = v});
}
void Metadata::SetBool(std::string key, bool v) {
  Set(std::move(key), MetaValue{.type = MetaType::kBool, .u = v ? 1u : 0u});
}
void Metadata::SetString(std::string key, std::string v) {
  MetaValue m;
  m.type = MetaType::kString;
  m.s = std::move(v);
  Set(std::move(key), std::move(m));
}
void Metadata::SetStringArray(std::string key, std::vector<std::string> v) {
  MetaValue m;
  m.type = MetaType::kArray;
  m.array_type = MetaType::kString;
  m.strings = std::move(v);
  Set(std::move(key), std::move(m));
}
void Metadata::SetF32Array(std::string key, std::vector<float> v) {
  MetaValue m;
  m.type = MetaType::kArray;
  m.array_type = MetaType::kF32;
  m.floats.assign(v.begin(), v.end());
  Set(std::move(key), std::move(m));
}
void Metadata::SetI32Array(std::string key, std::vector<int32_t> v) {
  MetaValue m;
  m.type = MetaType::kArray;
  m.array_type = MetaType::kI32;
  m.ints.assign(v.begin(), v.end());
  Set(std::move(key), std::move(m));
}

}  // namespace sluice
