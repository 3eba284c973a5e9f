#include "io/eviction_policy.h"

#include <cmath>

#include "core/base/check.h"

namespace sluice {
namespace {

class LruPolicy final : public EvictionPolicy {
 public:
  explicit LruPolicy(int slot_count) : list_(slot_count) {}
  void Add(int slot, int) override { list_.PushBack(slot); }
  void Remove(int slot) override { list_.Erase(slot); }
  void Touch(int) override {}
  int Victim() const override { return list_.head(); }
  int size() const override { return list_.size(); }

 private:
  SlotList list_;
};

class LfuDecayPolicy final : public EvictionPolicy {
 public:
  LfuDecayPolicy(int slot_count, int key_count, double half_life)
      : list_(slot_count),
        slot_key_(slot_count, -1),
        count_(key_count, 0.0),
        last_use_(key_count, 0),
        half_life_(half_life) {
    CHECK_GT(half_life, 0.0);
  }
  void Add(int slot, int key) override {
    slot_key_[slot] = key;
    list_.PushBack(slot);
  }
  void Remove(int slot) override { list_.Erase(slot); }
  void Touch(int key) override {
    ++clock_;
    count_[key] = Decayed(key) + 1.0;
    last_use_[key] = clock_;
  }
  // A scan of the evictable slots: O(slots) per eviction, microseconds against the
  // milliseconds of the read the eviction makes room for.
  int Victim() const override {
    int best = -1;
    double best_score = 0;
    for (int s = list_.head(); s >= 0; s = list_.next(s)) {
      double score = Decayed(slot_key_[s]);
      if (best < 0 || score < best_score) {  // strict: ties go to the earliest released
        best = s;
        best_score = score;
      }
    }
    return best;
  }
  int size() const override { return list_.size(); }

 private:
  double Decayed(int key) const {
    return count_[key] * std::exp2(-static_cast<double>(clock_ - last_use_[key]) / half_life_);
  }
  SlotList list_;
  std::vector<int> slot_key_;
  std::vector<double> count_;       // per block: decayed use count as of last_use_
  std::vector<uint64_t> last_use_;  // per block: clock_ at its last use
  uint64_t clock_ = 0;              // uses so far
  double half_life_;
};

}  // namespace

std::unique_ptr<EvictionPolicy> MakeEvictionPolicy(EvictionPolicyKind kind, int slot_count,
                                                   int key_count, double half_life) {
  if (kind == EvictionPolicyKind::kLfuDecay) {
    return std::make_unique<LfuDecayPolicy>(slot_count, key_count, half_life);
  }
  return std::make_unique<LruPolicy>(slot_count);
}

Result<EvictionPolicyKind> ParseEvictionPolicy(std::string_view name) {
  if (name == "lru") return EvictionPolicyKind::kLru;
  if (name == "lfu") return EvictionPolicyKind::kLfuDecay;
  return InvalidArgument("--cache-policy: expected lru or lfu, found '", name, "'");
}

}  // namespace sluice
