#include "moe/expert_source.h"

#include <algorithm>
#include <limits>

#include "core/base/str_cat.h"
#include "io/xxh3.h"

namespace sluice {
namespace {

ExpertWeights MakeExpertWeights(const MoeShape& c, const ExpertTypes& types, const uint8_t* gate,
                                const uint8_t* up, const uint8_t* down) {
  return ExpertWeights{
      .gate = Matrix{types[0], gate, c.n_ff_exp, c.n_embd},
      .up = Matrix{types[1], up, c.n_ff_exp, c.n_embd},
      .down = Matrix{types[2], down, c.n_embd, c.n_ff_exp},
  };
}

class CacheSource final : public ExpertSource {
 public:
  CacheSource(ExpertCache* cache, const MoeShape& shape, std::vector<ExpertTypes> types)
      : cache_(cache), shape_(shape), types_(std::move(types)) {}

  int max_ahead() const override { return cache_->slot_count(); }
  bool reads_ahead() const override { return true; }
  void Prefetch(int layer, std::span<const int> experts) override {
    cache_->Prefetch(layer, experts);
  }
  Result<HeldExpert> Acquire(int layer, int expert) override {
    HeldExpert held;
    ASSIGN_OR_RETURN(held.ref, cache_->Acquire(layer, expert));
    return Held(layer, std::move(held));
  }
  Result<HeldExpert> AcquireAny(int layer, std::span<const int> experts, int* index) override {
    HeldExpert held;
    ASSIGN_OR_RETURN(held.ref, cache_->AcquireAny(layer, experts, index));
    return Held(layer, std::move(held));
  }
  void Release(HeldExpert& held) override { cache_->Release(held.ref); }
  void Drop(int layer, std::span<const int> experts) override { cache_->Drop(layer, experts); }
  bool Contains(int layer, int expert) const override { return cache_->Contains(layer, expert); }
  uint64_t reads_in_flight() const override { return cache_->reads_in_flight(); }

 private:
  HeldExpert Held(int layer, HeldExpert held) const {
    held.weights =
        MakeExpertWeights(shape_, types_[layer], held.ref.matrix(ExpertMatrix::kGate),
                          held.ref.matrix(ExpertMatrix::kUp), held.ref.matrix(ExpertMatrix::kDown));
    return held;
  }

  ExpertCache* cache_;
  const MoeShape shape_;
  const std::vector<ExpertTypes> types_;  // (n_layer)
};

class MappedSource final : public ExpertSource {
 public:
  MappedSource(const ModelFile& model, const MoeShape& shape, std::vector<ExpertTypes> types,
               bool verify)
      : model_(model),
        shape_(shape),
        types_(std::move(types)),
        verify_(verify),
        verified_(types_.size() * static_cast<size_t>(shape.n_expert), 0) {}

  int max_ahead() const override { return std::numeric_limits<int>::max(); }
  bool reads_ahead() const override { return false; }
  // The baseline leaves prefetching to the kernel's page-fault read-ahead, as llama.cpp does.
  void Prefetch(int, std::span<const int>) override {}
  Result<HeldExpert> AcquireAny(int layer, std::span<const int> experts, int* index) override {
    *index = 0;  // nothing is ever "ready first": page faults happen on use
    return Acquire(layer, experts[0]);
  }
  Result<HeldExpert> Acquire(int layer, int expert) override {
    const ExpertLocation loc = model_.LocateExpert(layer, expert);
    const uint8_t* m[3];
    for (int i = 0; i < 3; ++i) {
      const uint8_t* base = model_.mapped_file(loc.matrices[i].file_index);
      if (base == nullptr) {
        return Unsupported(model_.path(), ": file ", loc.matrices[i].file_index,
                           " is not mapped; the mmap expert source needs a mapped model");
      }
      m[i] = base + loc.matrices[i].offset;
    }
    uint8_t& verified = verified_[static_cast<size_t>(layer) * shape_.n_expert + expert];
    if (verify_ && loc.has_checksum && !verified) {
      // Once per expert: the bytes on disk do not change between uses (the cache source checks
      // each read, since each read could fail on its own).
      const uint8_t* first = std::min({m[0], m[1], m[2]});
      const uint8_t* end = std::max({m[0] + loc.matrices[0].bytes, m[1] + loc.matrices[1].bytes,
                                     m[2] + loc.matrices[2].bytes});
      const uint64_t found = Xxh3_64(first, static_cast<size_t>(end - first));
      if (found != loc.xxh3) {
        return Corrupt(
            model_.file_paths()[loc.matrices[0].file_index], ": expert (layer ", layer, ", expert ",
            expert, ") at offset ",
            std::min({loc.matrices[0].offset, loc.matrices[1].offset, loc.matrices[2].offset}),
            " (", end - first, " bytes): xxh3 expected ", Hex64(loc.xxh3), ", found ", Hex64(found),
            "; the bytes were not used");
      }
      verified = 1;
    }
    HeldExpert held;
    held.weights = MakeExpertWeights(shape_, types_[layer], m[0], m[1], m[2]);
    return held;
  }
  void Release(HeldExpert&) override {}
  void Drop(int, std::span<const int>) override {}
  bool Contains(int, int) const override { return true; }
  uint64_t reads_in_flight() const override { return 0; }

 private:
  const ModelFile& model_;
  const MoeShape shape_;
  const std::vector<ExpertTypes> types_;  // (n_layer)
  const bool verify_;
  std::vector<uint8_t> verified_;  // (n_layer, n_expert): checksum checked once
};

}  // namespace

Result<ExpertSourceKind> ParseExpertSource(std::string_view name) {
  if (name == "cache") return ExpertSourceKind::kCache;
  if (name == "mmap") return ExpertSourceKind::kMmap;
  return InvalidArgument("expert source '", name, "': expected cache or mmap");
}

const char* ExpertSourceName(ExpertSourceKind kind) {
  return kind == ExpertSourceKind::kCache ? "cache" : "mmap";
}

std::unique_ptr<ExpertSource> MakeCacheExpertSource(ExpertCache* cache, const MoeShape& shape,
                                                    std::vector<ExpertTypes> types) {
  return std::make_unique<CacheSource>(cache, shape, std::move(types));
}

Result<std::unique_ptr<ExpertSource>> MakeMappedExpertSource(const ModelFile& model,
                                                             const MoeShape& shape,
                                                             std::vector<ExpertTypes> types,
                                                             bool verify_checksums) {
  if (model.file_paths().empty() || model.mapped_file(0) == nullptr) {
    return Unsupported(model.path(),
                       ": this model file does not map whole files; use --expert-source cache");
  }
  return std::unique_ptr<ExpertSource>(
      std::make_unique<MappedSource>(model, shape, std::move(types), verify_checksums));
}

}  // namespace sluice
