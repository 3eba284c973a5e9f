// StrCat: concatenate anything streamable into a std::string.
// Used to build error messages and log lines; not for hot paths.
#pragma once

#include <sstream>
#include <string>

namespace sluice {

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

}  // namespace sluice
