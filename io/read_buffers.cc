#include "io/read_buffers.h"

#include "core/base/byte_size.h"

namespace sluice {

ReadBuffers::ReadBuffers(uint64_t bytes, bool numa_local, bool lock) {
  if (bytes == 0) return;
  // AlignedBuffer maps (and advises MADV_HUGEPAGE) anything >= 1 MiB page-aligned; the 2 MiB
  // boundary is found inside a mapping one huge page larger.
  mapping_ = AlignedBuffer(
      bytes + kHugePageBytes,
      {.alignment = 4096, .numa_local = numa_local, .lock = lock, .huge_pages = true});
  if (mapping_.data() == nullptr) return;
  const uintptr_t start = reinterpret_cast<uintptr_t>(mapping_.data());
  data_ = mapping_.data() + (AlignUp(start, kHugePageBytes) - start);
  size_ = bytes;
}

}  // namespace sluice
