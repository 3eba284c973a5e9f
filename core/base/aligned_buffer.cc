#include "core/base/aligned_buffer.h"

#include <numa.h>
#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "core/base/check.h"

namespace sluice {
namespace {
// Buffers at least this large come straight from mmap so that freeing returns them to the OS
// and huge-page advice applies; smaller ones use posix_memalign.
constexpr size_t kMmapThreshold = 1 << 20;
}  // namespace

AlignedBuffer::AlignedBuffer(size_t size, const AllocOptions& options) {
  CHECK(options.alignment != 0 && (options.alignment & (options.alignment - 1)) == 0)
      << "alignment " << options.alignment;
  if (size == 0) return;
  if (size >= kMmapThreshold && options.alignment <= 4096) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    data_ = static_cast<uint8_t*>(p);
    mapped_size_ = size;
    if (options.huge_pages) madvise(p, size, MADV_HUGEPAGE);
    if (options.numa_local && numa_available() >= 0 && numa_num_configured_nodes() > 1) {
      numa_setlocal_memory(p, size);
    }
  } else {
    void* p = nullptr;
    size_t alignment = options.alignment < sizeof(void*) ? sizeof(void*) : options.alignment;
    if (posix_memalign(&p, alignment, size) != 0) return;
    std::memset(p, 0, size);
    data_ = static_cast<uint8_t*>(p);
  }
  size_ = size;
  if (options.lock) locked_ = mlock(data_, size_) == 0;
}

AlignedBuffer::~AlignedBuffer() { Free(); }

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    Free();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_size_ = std::exchange(other.mapped_size_, 0);
    locked_ = std::exchange(other.locked_, false);
  }
  return *this;
}

void AlignedBuffer::Free() {
  if (data_ == nullptr) return;
  if (locked_) munlock(data_, size_);
  if (mapped_size_ > 0) {
    munmap(data_, mapped_size_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  size_ = mapped_size_ = 0;
  locked_ = false;
}

}  // namespace sluice
