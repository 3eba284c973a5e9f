// AlignedBuffer: an owned, aligned, zero-initialised byte buffer allocated once (at start-up).
// Used for cache slots, I/O buffers and weight copies. Not thread-safe; move-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

namespace sluice {

struct AllocOptions {
  size_t alignment = 4096;  // power of two; 4096 satisfies O_DIRECT on every device we target
  bool numa_local = false;  // bind pages to the calling thread's node when libnuma sees >1 node
  bool lock = false;        // mlock the pages (fails softly: see locked())
  bool huge_pages = false;  // madvise(MADV_HUGEPAGE) for large buffers
};

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Allocates `size` bytes; CHECK-fails only on a programmer error (bad alignment). Out of
  // memory is reported as an empty buffer: callers check `data() != nullptr`.
  AlignedBuffer(size_t size, const AllocOptions& options = {});
  ~AlignedBuffer();
  AlignedBuffer(AlignedBuffer&& other) noexcept { *this = std::move(other); }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool locked() const { return locked_; }

 private:
  void Free();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_size_ = 0;  // >0 when allocated with mmap (large buffers)
  bool locked_ = false;
};

}  // namespace sluice
