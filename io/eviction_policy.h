// Eviction policies of the weight cache (io/weight_cache.h). A policy sees only slot and key
// numbers: the cache tells it which slots are evictable (resident and unpinned) and which blocks
// are used, and asks it for a victim among the evictable slots. Pinned and loading slots are never
// offered, so a policy cannot evict them.
//
//   LRU: the evictable slot released (or loaded) longest ago. Field reports (FIELD-NOTES.md) find
//        no online policy beating it by more than ~5 points of hit rate on real routing traces.
//   LFU with decay: the evictable slot whose block has the lowest use count, each use's weight
//        halving every `half_life` uses of the cache (so a once-hot block fades out), ties to
//        the least recently released. Counts live per block, not per slot, so an evicted hot
//        block comes back with its history.
//
// Memory: fixed arrays sized at construction (slots, blocks); nothing allocated afterwards.
// Thread-safety: none; the cache calls it under its mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/base/check.h"
#include "io/weight_cache.h"

namespace sluice {

// Slots in insertion order (head = inserted longest ago): an intrusive doubly linked list over
// slot indices, so insert/erase are O(1) and allocation-free. Used by the policies and by the
// cache for prefetched blocks not yet used.
class SlotList {
 public:
  explicit SlotList(int slot_count)
      : prev_(slot_count, -1), next_(slot_count, -1), in_(slot_count, 0) {}
  void PushBack(int s) {
    CHECK(!in_[s]) << "slot " << s << " listed twice";
    in_[s] = 1;
    prev_[s] = tail_;
    next_[s] = -1;
    if (tail_ >= 0) next_[tail_] = s;
    tail_ = s;
    if (head_ < 0) head_ = s;
    ++size_;
  }
  void Erase(int s) {
    CHECK(in_[s]) << "slot " << s << " is not listed";
    in_[s] = 0;
    if (prev_[s] >= 0) next_[prev_[s]] = next_[s];
    if (next_[s] >= 0) prev_[next_[s]] = prev_[s];
    if (head_ == s) head_ = next_[s];
    if (tail_ == s) tail_ = prev_[s];
    --size_;
  }
  bool Contains(int s) const { return in_[s] != 0; }
  int head() const { return head_; }
  int next(int s) const { return next_[s]; }
  int size() const { return size_; }

 private:
  std::vector<int> prev_, next_;
  std::vector<uint8_t> in_;
  int head_ = -1, tail_ = -1, size_ = 0;
};

class EvictionPolicy {
 public:
  virtual ~EvictionPolicy() = default;
  // `slot` (holding block `key`) became evictable: loaded unpinned, or its last pin released.
  virtual void Add(int slot, int key) = 0;
  // `slot` is no longer evictable (pinned again, evicted, or cleared). Must be present.
  virtual void Remove(int slot) = 0;
  // One use (Acquire) of block `key`.
  virtual void Touch(int key) = 0;
  // The slot to evict next, or -1 when none is evictable. Does not remove it.
  virtual int Victim() const = 0;
  virtual int size() const = 0;  // evictable slots
};

// half_life: in uses (Touch calls) for kLfuDecay; ignored by kLru.
std::unique_ptr<EvictionPolicy> MakeEvictionPolicy(EvictionPolicyKind kind, int slot_count,
                                                   int key_count, double half_life);

}  // namespace sluice
