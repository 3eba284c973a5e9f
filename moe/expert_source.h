// ExpertSource: where the MoE block gets a routed expert's weights while it computes.
//   cache  (default): through the ExpertCache (moe/expert_cache.h): bounded RAM, reads with
//                     io_uring/pread, each expert read once per miss.
//   mmap   (baseline): straight from ModelFile::mapped_file() + the expert's offset, letting the
//                     page cache decide what stays, as llama.cpp does by default. Exists so the
//                     bench can compare against the naive approach on the same bytes.
// Both hand out the same bytes, so results are bit-identical.
//
// Thread-safety: the cache source is as thread-safe as the cache; the engine uses one thread.
#pragma once

#include <memory>
#include <span>

#include "core/base/status.h"
#include "io/model_file.h"
#include "moe/expert_cache.h"
#include "moe/expert_ffn.h"
#include "moe/moe_layer.h"

namespace sluice {

enum class ExpertSourceKind { kCache, kMmap };

// Experts one AcquireAny call may wait on (the cache's limit).
inline constexpr int kMaxAcquireAnyExperts = 64;
Result<ExpertSourceKind> ParseExpertSource(std::string_view name);  // "cache" | "mmap"
const char* ExpertSourceName(ExpertSourceKind kind);

// A held expert: its matrices, valid until Release().
struct HeldExpert {
  ExpertWeights weights;
  ExpertRef ref;    // cache source only
  int expert = -1;  // set by the caller for its own bookkeeping
};

class ExpertSource {
 public:
  virtual ~ExpertSource() = default;
  // Experts a prefetch may run ahead by: more would evict experts fetched for this layer before
  // they are used. Unbounded sources return a large number.
  virtual int max_ahead() const = 0;
  // Whether Prefetch starts reads (worth predicting the next layer's experts for).
  virtual bool reads_ahead() const = 0;
  virtual void Prefetch(int layer, std::span<const int> experts) = 0;
  virtual Result<HeldExpert> Acquire(int layer, int expert) = 0;
  // Whichever of `experts` (1..kMaxAcquireAnyExperts) is ready first; *index: its position.
  virtual Result<HeldExpert> AcquireAny(int layer, std::span<const int> experts, int* index) = 0;
  virtual void Release(HeldExpert& held) = 0;
  // Prefetched experts that will not be used after all (a wrong next-layer guess): give their
  // memory back (ExpertCache::Drop).
  virtual void Drop(int layer, std::span<const int> experts) = 0;
  // Resident or being read (always true for the mmap source: nothing to read ahead).
  virtual bool Contains(int layer, int expert) const = 0;
  // Reads submitted and not yet complete, now (0 for the mmap source).
  virtual uint64_t reads_in_flight() const = 0;
};

// `cache` and `model` must outlive the source. types: each layer's routed expert types (gate, up,
// down), indexed by layer.
std::unique_ptr<ExpertSource> MakeCacheExpertSource(ExpertCache* cache, const MoeShape& shape,
                                                    std::vector<ExpertTypes> types);
// Unsupported when the model file does not map whole files.
Result<std::unique_ptr<ExpertSource>> MakeMappedExpertSource(const ModelFile& model,
                                                             const MoeShape& shape,
                                                             std::vector<ExpertTypes> types,
                                                             bool verify_checksums);

}  // namespace sluice
