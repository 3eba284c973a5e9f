#include "moe/expert_cache.h"

#include <algorithm>

#include "core/base/str_cat.h"

namespace sluice {

Result<std::unique_ptr<ExpertBlockTable>> ExpertBlockTable::Create(const ModelFile& model,
                                                                   int n_layer) {
  std::unique_ptr<ExpertBlockTable> t(new ExpertBlockTable(model));
  t->layer_first_.assign(n_layer, -1);
  t->layer_n_expert_.assign(n_layer, 0);
  uint64_t n = 0;
  for (int layer = 0; layer < n_layer; ++layer) {
    std::optional<ExpertTensors> experts = model.expert_tensors(layer);
    if (!experts) continue;
    const int64_t count = experts->gate.ne[2];
    if (count < 1 || count > (1 << 20)) {
      return Corrupt(model.path(), ": layer ", layer, " has ", count,
                     " routed experts (1..1048576 supported)");
    }
    t->layer_first_[layer] = static_cast<int64_t>(n);
    t->layer_n_expert_[layer] = static_cast<int>(count);
    n += static_cast<uint64_t>(count);
    if (n > (1u << 30)) return InvalidArgument(model.path(), ": too many experts: ", n);
  }
  if (n == 0) return InvalidArgument(model.path(), ": the model has no routed experts");
  t->n_blocks_ = static_cast<uint32_t>(n);
  t->layer_of_.resize(n);
  for (int layer = 0; layer < n_layer; ++layer) {
    for (int e = 0; e < t->layer_n_expert_[layer]; ++e) {
      t->layer_of_[t->layer_first_[layer] + e] = layer;
    }
  }
  return t;
}

uint32_t ExpertBlockTable::Id(int layer, int expert) const {
  CHECK(layer >= 0 && static_cast<size_t>(layer) < layer_first_.size() && layer_first_[layer] >= 0)
      << "layer " << layer << " has no routed experts";
  CHECK(expert >= 0 && expert < layer_n_expert_[layer])
      << "expert " << expert << " of layer " << layer << " (" << layer_n_expert_[layer] << ")";
  return static_cast<uint32_t>(layer_first_[layer] + expert);
}

void ExpertBlockTable::LayerExpert(uint32_t id, int* layer, int* expert) const {
  CHECK(id < n_blocks_) << "expert block " << id << " of " << n_blocks_;
  *layer = layer_of_[id];
  *expert = static_cast<int>(id - layer_first_[*layer]);
}

WeightBlock ExpertBlockTable::Locate(uint32_t id) const {
  int layer, expert;
  LayerExpert(id, &layer, &expert);
  return ExpertBlock(model_.LocateExpert(layer, expert));
}

WeightBlock ExpertBlock(const ExpertLocation& loc) {
  WeightBlock b;
  b.n_parts = 3;
  for (int m = 0; m < 3; ++m) {
    b.parts[m] = {.file_index = loc.matrices[m].file_index,
                  .offset = loc.matrices[m].offset,
                  .bytes = loc.matrices[m].bytes};
  }
  b.has_checksum = loc.has_checksum;
  b.xxh3 = loc.xxh3;
  return b;
}

std::string ExpertBlockTable::Describe(uint32_t id) const {
  int layer, expert;
  LayerExpert(id, &layer, &expert);
  return StrCat("expert (layer ", layer, ", expert ", expert, ")");
}

Result<std::unique_ptr<ExpertCache>> ExpertCache::Create(const ModelFile& model, int n_layer,
                                                         IoBackend* io,
                                                         const WeightCacheOptions& options) {
  std::unique_ptr<ExpertCache> cache(new ExpertCache());
  ASSIGN_OR_RETURN(cache->table_, ExpertBlockTable::Create(model, n_layer));
  Result<std::unique_ptr<WeightCache>> blocks = WeightCache::Create(*cache->table_, io, options);
  if (!blocks.ok()) {
    return Status(blocks.status().code(), StrCat("expert cache: ", blocks.status().message()));
  }
  cache->blocks_ = std::move(*blocks);
  return cache;
}

std::span<const uint32_t> ExpertCache::Ids(int layer, std::span<const int> experts,
                                           uint32_t* ids) const {
  for (size_t i = 0; i < experts.size(); ++i) ids[i] = table_->Id(layer, experts[i]);
  return {ids, experts.size()};
}

ExpertRef ExpertCache::Ref(WeightRef block) const {
  ExpertRef r;
  table_->LayerExpert(block.id(), &r.layer_, &r.expert_);
  r.block_ = block;
  return r;
}

void ExpertCache::Prefetch(int layer, std::span<const int> experts) {
  uint32_t ids[kMaxAcquireAny];
  for (size_t begin = 0; begin < experts.size(); begin += kMaxAcquireAny) {
    const size_t n = std::min(kMaxAcquireAny, experts.size() - begin);
    blocks_->Prefetch(Ids(layer, experts.subspan(begin, n), ids));
  }
}

Result<ExpertRef> ExpertCache::Acquire(int layer, int expert) {
  ASSIGN_OR_RETURN(WeightRef block, blocks_->Acquire(table_->Id(layer, expert)));
  return Ref(block);
}

Result<ExpertRef> ExpertCache::AcquireAny(int layer, std::span<const int> experts, int* index) {
  CHECK(!experts.empty() && experts.size() <= kMaxAcquireAny)
      << "AcquireAny of " << experts.size() << " experts (1.." << kMaxAcquireAny << ")";
  uint32_t ids[kMaxAcquireAny];
  ASSIGN_OR_RETURN(WeightRef block, blocks_->AcquireAny(Ids(layer, experts, ids), index));
  return Ref(block);
}

void ExpertCache::Drop(int layer, std::span<const int> experts) {
  uint32_t ids[kMaxAcquireAny];
  for (size_t begin = 0; begin < experts.size(); begin += kMaxAcquireAny) {
    const size_t n = std::min(kMaxAcquireAny, experts.size() - begin);
    blocks_->Drop(Ids(layer, experts.subspan(begin, n), ids));
  }
}

void ExpertCache::Release(ExpertRef& ref) {
  CHECK(ref.valid()) << "Release of an invalid ExpertRef";
  blocks_->Release(ref.block_);
  ref = ExpertRef();
}

}  // namespace sluice
