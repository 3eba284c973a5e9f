// Tensor element types, numbered exactly as GGUF numbers them (ggml_type), with the block
// geometry of each. Shared by the GGUF reader, the archive, the kernels and the converter.
// Only the types listed in kGgmlTypeTraits are known; every other id is rejected at load.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace sluice {

enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kMXFP4 = 39,
};

struct GgmlTypeTraits {
  GgmlType type;
  const char* name;        // "q4_K", as GGUF tools print it
  int32_t block_elements;  // elements per block (1 for plain types)
  int32_t block_bytes;     // bytes per block
};

// nullopt for ids we do not know (the caller names the tensor in its error).
std::optional<GgmlTypeTraits> GetTypeTraits(uint32_t type_id);
// CHECK-fails on an unknown type: use only for types already validated.
const GgmlTypeTraits& TypeTraits(GgmlType type);
const char* TypeName(GgmlType type);
// Parses "q4_k", "Q4_K", "f32"... (case-insensitive).
std::optional<GgmlType> ParseTypeName(std::string_view name);

// Bytes of a row of `elements` elements; CHECK-fails when `elements` is not a whole number of
// blocks (validate shapes first with IsValidRowLength).
uint64_t RowBytes(GgmlType type, int64_t elements);
bool IsValidRowLength(GgmlType type, int64_t elements);

}  // namespace sluice
