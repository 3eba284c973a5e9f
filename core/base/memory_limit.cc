#include "core/base/memory_limit.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>

namespace sluice {
namespace {

// The first line of `path` as a byte count, or 0 (absent, "max", unparsable).
uint64_t ReadLimit(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty() || line == "max") return 0;
  uint64_t v = 0;
  for (char c : line) {
    if (c < '0' || c > '9') return 0;
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  // cgroup v1 reports "unlimited" as a number near 2^63 rounded to pages.
  return v >= (uint64_t{1} << 62) ? 0 : v;
}

uint64_t Min(uint64_t a, uint64_t b) { return a == 0 ? b : (b == 0 ? a : std::min(a, b)); }

}  // namespace

MemoryLimit ReadMemoryLimit(const std::string& cgroup_root, const std::string& proc_self_cgroup) {
  MemoryLimit m;
  m.physical_bytes =
      static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  // v2: "0::/some/group"; v1: "N:memory:/some/group" (or "N:...,memory,...:/group"). The
  // tightest limit from the group up to the root applies.
  std::ifstream self(proc_self_cgroup);
  std::string line, v2_group, v1_group;
  while (std::getline(self, line)) {
    if (line.rfind("0::", 0) == 0) v2_group = line.substr(3);
    const size_t first = line.find(':'), second = line.find(':', first + 1);
    if (first == std::string::npos || second == std::string::npos) continue;
    std::string controllers(1, ',');
    controllers.append(line, first + 1, second - first - 1);
    controllers.push_back(',');
    if (controllers.find(",memory,") != std::string::npos) v1_group = line.substr(second + 1);
  }
  auto tightest_up_from = [](const std::string& group, const std::string& dir, const char* file) {
    uint64_t limit = 0;
    size_t len = group.size();  // the prefix of `group` that names the current level
    for (;;) {
      std::string path = dir;
      path.append(group, 0, len);
      path.push_back('/');
      path.append(file);
      limit = Min(limit, ReadLimit(path));
      if (len == 0) return limit;
      const size_t slash = group.rfind('/', len - 1);
      len = slash == std::string::npos ? 0 : slash;
    }
  };
  uint64_t limit = tightest_up_from(v2_group, cgroup_root, "memory.max");
  std::string v1_root = cgroup_root;
  v1_root.append("/memory");
  limit = Min(limit, tightest_up_from(v1_group, v1_root, "memory.limit_in_bytes"));
  m.cgroup_bytes = limit;
  return m;
}

}  // namespace sluice
