// The memory this process may use: physical RAM, or its cgroup's memory limit when that is lower
// (containers are where many users run; a default budget of half the host's RAM would get the
// process killed in a container limited below it).
//
// Thread-safety: reads files; safe to call from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace sluice {

struct MemoryLimit {
  uint64_t physical_bytes = 0;
  uint64_t cgroup_bytes = 0;  // 0: no cgroup limit found
  uint64_t usable_bytes() const {
    return cgroup_bytes != 0 && cgroup_bytes < physical_bytes ? cgroup_bytes : physical_bytes;
  }
};

// cgroup_root: where the cgroup filesystem is mounted; proc_self_cgroup: the process's cgroup
// file (parameters for tests). cgroup v2 (memory.max of the process's group and its parents) and
// v1 (memory/memory.limit_in_bytes) are read; "max" and v1's huge "unlimited" mean no limit.
MemoryLimit ReadMemoryLimit(const std::string& cgroup_root = "/sys/fs/cgroup",
                            const std::string& proc_self_cgroup = "/proc/self/cgroup");

}  // namespace sluice
