#include "bench/bench_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

#include "core/base/byte_size.h"

namespace sluice {
namespace {

// "VmHWM:    123456 kB" -> bytes.
uint64_t StatusField(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
      return std::strtoull(line.c_str() + n + 1, nullptr, 10) * 1024;
    }
  }
  return 0;
}

}  // namespace

uint64_t PeakRssBytes() { return StatusField("VmHWM"); }
uint64_t CurrentRssBytes() { return StatusField("VmRSS"); }

uint64_t ProcessReadBytes() {
  std::ifstream in("/proc/self/io");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("read_bytes:", 0) == 0) return std::strtoull(line.c_str() + 11, nullptr, 10);
  }
  return 0;
}

bool ResetPeakRss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (f == nullptr) return false;
  bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

Result<uint64_t> MemAvailableBytes() {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("MemAvailable:", 0) == 0) {
      return std::strtoull(line.c_str() + 13, nullptr, 10) * 1024;
    }
  }
  return NotFound("/proc/meminfo: no MemAvailable line");
}

Status DropFromPageCache(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(path, ": open: ", ErrnoString(errno));
  fdatasync(fd);  // read-only opens may not sync; dirty pages are not ours to drop anyway
  int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  if (rc != 0) return IoError(path, ": posix_fadvise(DONTNEED): ", ErrnoString(rc));
  return Status::Ok();
}

Result<std::unique_ptr<MemoryBalloon>> MemoryBalloon::Inflate(uint64_t bytes) {
  std::unique_ptr<MemoryBalloon> b(new MemoryBalloon());
  if (bytes == 0) return b;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return ResourceExhausted("memory balloon: mmap of ", FormatBytes(bytes), ": ",
                             ErrnoString(errno));
  }
  b->data_ = p;
  b->bytes_ = bytes;
  // mlock faults every page in; on failure say why (usually RLIMIT_MEMLOCK for non-root users).
  if (mlock(p, bytes) != 0) {
    int err = errno;
    struct rlimit rl {};
    getrlimit(RLIMIT_MEMLOCK, &rl);
    return ResourceExhausted(
        "memory balloon: mlock of ", FormatBytes(bytes), ": ", ErrnoString(err),
        " (RLIMIT_MEMLOCK ",
        rl.rlim_cur == RLIM_INFINITY ? std::string("unlimited") : FormatBytes(rl.rlim_cur),
        "; raise it with `ulimit -l` or run the comparison as root)");
  }
  // Write every page so the memory is private and resident even where mlock only pins zero pages.
  for (uint64_t off = 0; off < bytes; off += 4096) static_cast<volatile uint8_t*>(p)[off] = 1;
  return b;
}

MemoryBalloon::~MemoryBalloon() {
  if (data_ != nullptr) {
    munlock(data_, bytes_);
    munmap(data_, bytes_);
  }
}

}  // namespace sluice
