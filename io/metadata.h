// Metadata: the key/value section of a model (GGUF's metadata, carried verbatim into the archive).
// Everything needed to run a model without its original GGUF lives here: the architecture config
// ("qwen3moe.block_count"), the tokenizer ("tokenizer.ggml.tokens") and the chat template.
//
// Values keep their GGUF type so a GGUF -> archive -> GGUF round trip is lossless. Getters accept
// any numeric type that converts without loss and fail with a message naming the source file, the
// key, the expected and the found type. Not thread-safe for writes; concurrent reads are fine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/base/status.h"

namespace sluice {

// GGUF's value type ids (gguf_type).
enum class MetaType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
const char* MetaTypeName(MetaType type);

struct MetaValue {
  MetaType type = MetaType::kU32;
  MetaType array_type = MetaType::kU32;  // element type when type == kArray (never kArray)
  // Scalars: exactly one of these is meaningful, chosen by `type`.
  uint64_t u = 0;      // kU8 kU16 kU32 kU64 kBool
  int64_t i = 0;       // kI8 kI16 kI32 kI64
  double f = 0;        // kF32 kF64
  std::string s = {};  // kString
  // Arrays: integer and bool elements in `ints` (unsigned values stored bit-cast), float elements
  // in `floats`, strings in `strings`.
  std::vector<int64_t> ints = {};
  std::vector<double> floats = {};
  std::vector<std::string> strings = {};

  size_t ArraySize() const;
};

class Metadata {
 public:
  Metadata() = default;
  explicit Metadata(std::string source) : source_(std::move(source)) {}

  // The file this metadata came from, used in error messages.
  const std::string& source() const { return source_; }
  void set_source(std::string source) { source_ = std::move(source); }

  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  const MetaValue* Find(std::string_view key) const;
  // Keys in insertion (file) order.
  const std::vector<std::string>& keys() const { return keys_; }
  size_t size() const { return keys_.size(); }

  Result<uint64_t> GetUint(std::string_view key) const;  // any non-negative integer type
  Result<int64_t> GetInt(std::string_view key) const;    // any integer type
  Result<double> GetFloat(std::string_view key) const;   // f32, f64 or an integer
  Result<bool> GetBool(std::string_view key) const;
  Result<std::string> GetString(std::string_view key) const;
  Result<std::vector<std::string>> GetStringArray(std::string_view key) const;
  Result<std::vector<double>> GetFloatArray(std::string_view key) const;
  Result<std::vector<int64_t>> GetIntArray(std::string_view key) const;

  // With a default when the key is absent (a present key of the wrong type is still an error).
  Result<uint64_t> GetUintOr(std::string_view key, uint64_t fallback) const;
  Result<double> GetFloatOr(std::string_view key, double fallback) const;
  Result<std::string> GetStringOr(std::string_view key, std::string fallback) const;
  Result<bool> GetBoolOr(std::string_view key, bool fallback) const;

  // Setters replace an existing key in place (keeping its position) or append.
  void Set(std::string key, MetaValue value);
  void SetU32(std::string key, uint32_t v);
  void SetU64(std::string key, uint64_t v);
  void SetI32(std::string key, int32_t v);
  void SetF32(std::string key, float v);
  void SetBool(std::string key, bool v);
  void SetString(std::string key, std::string v);
  void SetStringArray(std::string key, std::vector<std::string> v);
  void SetF32Array(std::string key, std::vector<float> v);
  void SetI32Array(std::string key, std::vector<int32_t> v);

 private:
  std::string source_;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, MetaValue> values_;
};

}  // namespace sluice
