// Parsing and printing byte sizes as users write them: "12G", "512M", "4096", "1.5GiB".
// Suffixes are binary (K = 1024). Used by every --ram / --size flag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/base/status.h"

namespace sluice {

Result<uint64_t> ParseByteSize(std::string_view text);
// "1.50 GiB", "7.00 MiB", "512 B".
std::string FormatBytes(uint64_t bytes);

constexpr uint64_t AlignUp(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}
constexpr uint64_t AlignDown(uint64_t value, uint64_t alignment) {
  return value / alignment * alignment;
}

}  // namespace sluice
