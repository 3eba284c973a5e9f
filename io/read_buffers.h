// ReadBuffers: memory for O_DIRECT reads (the weight cache's slots, the I/O bench's buffers):
// one region that starts on a 2 MiB boundary and is advised for transparent huge pages.
//
// Why: a read's pages become the scatter list of the device request, and 4 KiB pages that are not
// physically contiguous cut a 7 MB read into ~1,700 segments, i.e. several requests of at most
// max_segments (254 on virtio-blk). On this machine's virtual disk, reads into THP-backed buffers
// ran at 1.8-2.0 GB/s against 0.8-1.1 GB/s into plain pages, same queue depth, same offsets,
// alternated over 20 rounds. Where THP is off (enabled=never) the region simply has 4 KiB pages.
//
// Memory: the mapping is up to 2 MiB larger than `bytes` to find the boundary; the extra pages
// are never touched (so never backed), except that `lock` mlocks the whole mapping.
// Thread-safety: none needed (allocated once, then only pointers are used).
#pragma once

#include <cstdint>

#include "core/base/aligned_buffer.h"

namespace sluice {

inline constexpr uint64_t kHugePageBytes = 2ull << 20;

class ReadBuffers {
 public:
  ReadBuffers() = default;
  // data() == nullptr when the allocation failed.
  ReadBuffers(uint64_t bytes, bool numa_local, bool lock);
  ReadBuffers(ReadBuffers&&) = default;
  ReadBuffers& operator=(ReadBuffers&&) = default;

  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }  // usable bytes from data()
  bool locked() const { return mapping_.locked(); }

 private:
  AlignedBuffer mapping_;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace sluice
