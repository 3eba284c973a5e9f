// ExpertCache: the MoE view of the weight cache (io/weight_cache.h). The model's routed experts
// are its weight blocks, numbered layer by layer (expert e of layer l is block
// first_block(l) + e), each three parts: gate, up, down. This file is the only place that maps
// (layer, expert) to a block: the cache below speaks of blocks only.
//
// Use (one layer of one token):
//   cache.Prefetch(layer, ids);                       // start reads for the misses, never blocks
//   for (int id : ids) {
//     ASSIGN_OR_RETURN(ExpertRef e, cache.Acquire(layer, id));  // waits for this expert only
//     ... compute with e.matrix(ExpertMatrix::kGate) ...
//     cache.Release(e);                               // unpin: evictable again
//   }
// Semantics (pinning, prefetch protection, Drop, counters) are the weight cache's, per expert.
//
// Thread-safety: every method may be called from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "io/io_backend.h"
#include "io/model_file.h"
#include "io/weight_cache.h"

namespace sluice {

using ExpertCacheCounters = WeightCacheCounters;

// One expert as a weight block: parts gate, up, down (ExpertMatrix order).
WeightBlock ExpertBlock(const ExpertLocation& loc);

// The routed experts of a ModelFile as weight blocks: layers without experts take no numbers.
class ExpertBlockTable final : public WeightBlockTable {
 public:
  // n_layer: the model's layer count (ModelConfig::n_layer); layers past the file's are errors.
  static Result<std::unique_ptr<ExpertBlockTable>> Create(const ModelFile& model, int n_layer);

  uint32_t n_blocks() const override { return n_blocks_; }
  WeightBlock Locate(uint32_t id) const override;
  std::string Describe(uint32_t id) const override;  // "expert (layer 3, expert 17)"
  const std::vector<std::string>& file_paths() const override { return model_.file_paths(); }

  // CHECK-fails for a layer without experts or an expert out of range (programmer error).
  uint32_t Id(int layer, int expert) const;
  // The (layer, expert) of block `id`.
  void LayerExpert(uint32_t id, int* layer, int* expert) const;

 private:
  explicit ExpertBlockTable(const ModelFile& model) : model_(model) {}
  const ModelFile& model_;
  std::vector<int64_t> layer_first_;  // layer -> id of its expert 0, or -1
  std::vector<int> layer_n_expert_;   // layer -> its experts (0: none)
  std::vector<int> layer_of_;         // id -> layer
  uint32_t n_blocks_ = 0;
};

// A pinned expert. Valid until Release(); the pointers point into the cache slot.
class ExpertRef {
 public:
  ExpertRef() = default;
  const uint8_t* matrix(ExpertMatrix m) const { return block_.part(static_cast<int>(m)); }
  int layer() const { return layer_; }
  int expert() const { return expert_; }
  bool valid() const { return block_.valid(); }

 private:
  friend class ExpertCache;
  WeightRef block_;
  int layer_ = -1, expert_ = -1;
};

class ExpertCache {
 public:
  // Sizes one slot as the largest expert of `model` (each matrix's read aligned outward to 4 KiB)
  // and allocates budget / slot bytes slots. options.min_resident_blocks: the experts one layer
  // uses at once (experts per token); a budget below that many slots is refused. Errors: budget
  // below the minimum (the message names the minimum in bytes), allocation failure, a layer count
  // the file does not have. `model` and `io` must outlive the cache.
  static Result<std::unique_ptr<ExpertCache>> Create(const ModelFile& model, int n_layer,
                                                     IoBackend* io,
                                                     const WeightCacheOptions& options);

  void Prefetch(int layer, std::span<const int> experts);
  Result<ExpertRef> Acquire(int layer, int expert);
  // Whichever of `experts` is ready first; *index is its position in `experts`. At most
  // kMaxAcquireAny experts per call.
  static constexpr size_t kMaxAcquireAny = WeightCache::kMaxAcquireAny;
  Result<ExpertRef> AcquireAny(int layer, std::span<const int> experts, int* index);
  // A prefetch that guessed wrong (the engine prefetches the next layer's predicted experts):
  // frees each of `experts` that was loaded ahead and is still unused and unpinned.
  void Drop(int layer, std::span<const int> experts);
  bool Contains(int layer, int expert) const {
    return blocks_->Contains(table_->Id(layer, expert));
  }
  uint64_t reads_in_flight() const { return blocks_->reads_in_flight(); }
  void WaitIdle() const { blocks_->WaitIdle(); }
  void Release(ExpertRef& ref);

  uint64_t slot_bytes() const { return blocks_->slot_bytes(); }
  int slot_count() const { return blocks_->slot_count(); }
  uint64_t allocated_bytes() const { return blocks_->allocated_bytes(); }
  ExpertCacheCounters counters() const { return blocks_->counters(); }
  void ResetCounters() { blocks_->ResetCounters(); }
  // Drops every unpinned expert (benchmarks use it to force misses).
  void Clear() { blocks_->Clear(); }
  const ExpertBlockTable& table() const { return *table_; }

 private:
  ExpertCache() = default;
  // The block ids of `experts` of `layer` into ids_ (at most kMaxAcquireAny at a time).
  std::span<const uint32_t> Ids(int layer, std::span<const int> experts, uint32_t* ids) const;
  ExpertRef Ref(WeightRef block) const;

  std::unique_ptr<ExpertBlockTable> table_;
  std::unique_ptr<WeightCache> blocks_;
};

}  // namespace sluice
