// FixedRing<T>: a first-in first-out queue of at most `capacity` items, allocated once at
// construction, so pushing and popping never allocate (the I/O backends' queues of requests and
// completions live on the read path).
//
// Thread-safety: none; callers lock.
#pragma once

#include <cstddef>
#include <vector>

#include "core/base/check.h"

namespace sluice {

template <typename T>
class FixedRing {
 public:
  explicit FixedRing(size_t capacity) : items_(capacity) {}

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return items_.size(); }

  // CHECK-fails when full: callers bound what they push (IoOptions::max_queued).
  void Push(const T& item) {
    CHECK(size_ < items_.size()) << "FixedRing of " << items_.size() << " is full";
    items_[(head_ + size_) % items_.size()] = item;
    ++size_;
  }
  // CHECK-fails when empty.
  T Pop() {
    CHECK(size_ > 0) << "Pop from an empty FixedRing";
    T item = items_[head_];
    head_ = (head_ + 1) % items_.size();
    --size_;
    return item;
  }

 private:
  std::vector<T> items_;
  size_t head_ = 0, size_ = 0;
};

}  // namespace sluice
