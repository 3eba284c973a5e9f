#include "core/base/ggml_type.h"

#include <cctype>
#include <string>

#include "core/base/check.h"

namespace sluice {
namespace {

// Block sizes from GGUF's definitions: e.g. Q4_K = f16 d + f16 dmin + 12 bytes of 6-bit scales
// + 128 bytes of nibbles = 144 bytes per 256 weights.
constexpr GgmlTypeTraits kTraits[] = {
    {GgmlType::kF32, "f32", 1, 4},
    {GgmlType::kF16, "f16", 1, 2},
    {GgmlType::kQ4_0, "q4_0", 32, 18},
    {GgmlType::kQ4_1, "q4_1", 32, 20},
    {GgmlType::kQ5_0, "q5_0", 32, 22},
    {GgmlType::kQ5_1, "q5_1", 32, 24},
    {GgmlType::kQ8_0, "q8_0", 32, 34},
    {GgmlType::kQ8_1, "q8_1", 32, 36},
    {GgmlType::kQ2_K, "q2_K", 256, 84},
    {GgmlType::kQ3_K, "q3_K", 256, 110},
    {GgmlType::kQ4_K, "q4_K", 256, 144},
    {GgmlType::kQ5_K, "q5_K", 256, 176},
    {GgmlType::kQ6_K, "q6_K", 256, 210},
    {GgmlType::kQ8_K, "q8_K", 256, 292},
    {GgmlType::kIQ4_NL, "iq4_nl", 32, 18},
    {GgmlType::kIQ4_XS, "iq4_xs", 256, 136},
    {GgmlType::kIQ2_XXS, "iq2_xxs", 256, 66},
    {GgmlType::kIQ2_XS, "iq2_xs", 256, 74},
    {GgmlType::kIQ2_S, "iq2_s", 256, 82},
    {GgmlType::kIQ3_XXS, "iq3_xxs", 256, 98},
    {GgmlType::kIQ3_S, "iq3_s", 256, 110},
    {GgmlType::kIQ1_S, "iq1_s", 256, 50},
    {GgmlType::kIQ1_M, "iq1_m", 256, 56},
    {GgmlType::kI8, "i8", 1, 1},
    {GgmlType::kI16, "i16", 1, 2},
    {GgmlType::kI32, "i32", 1, 4},
    {GgmlType::kF64, "f64", 1, 8},
    {GgmlType::kBF16, "bf16", 1, 2},
    {GgmlType::kMXFP4, "mxfp4", 32, 17},
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::optional<GgmlTypeTraits> GetTypeTraits(uint32_t type_id) {
  for (const auto& t : kTraits) {
    if (static_cast<uint32_t>(t.type) == type_id) return t;
  }
  return std::nullopt;
}

const GgmlTypeTraits& TypeTraits(GgmlType type) {
  for (const auto& t : kTraits) {
    if (t.type == type) return t;
  }
  CHECK(false) << "unknown ggml type " << static_cast<uint32_t>(type);
  __builtin_unreachable();
}

const char* TypeName(GgmlType type) { return TypeTraits(type).name; }

std::optional<GgmlType> ParseTypeName(std::string_view name) {
  std::string lower = Lower(name);
  for (const auto& t : kTraits) {
    if (Lower(t.name) == lower) return t.type;
  }
  return std::nullopt;
}

bool IsValidRowLength(GgmlType type, int64_t elements) {
  return elements >= 0 && elements % TypeTraits(type).block_elements == 0;
}

uint64_t RowBytes(GgmlType type, int64_t elements) {
  const GgmlTypeTraits& t = TypeTraits(type);
  CHECK(IsValidRowLength(type, elements)) << t.name << " row of " << elements << " elements";
  return static_cast<uint64_t>(elements / t.block_elements) * static_cast<uint64_t>(t.block_bytes);
}

}  // namespace sluice
