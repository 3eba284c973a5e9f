// StrCat: concatenate anything streamable into a std::string.
// Used to build error messages and log lines; not for hot paths.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>

namespace sluice {

// "0x" and 16 lower-case hex digits: checksums and offsets in error messages.
std::string Hex64(uint64_t v);

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

}  // namespace sluice
