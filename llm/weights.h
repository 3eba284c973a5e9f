// ModelWeights: pointers to every dense weight the forward pass uses, checked against the config
// (llm/tensor_plan.h) and made resident as the options say. Routed experts are not here: they
// come through the expert cache (or the mapping, for the mmap baseline) at run time.
//
// Residency of the dense weights (attention, router, norms, embeddings, shared experts):
//   kCopy (default)  copied into anonymous memory, then the file pages are dropped from RSS with
//                    madvise(MADV_DONTNEED). Anonymous pages are not reclaimed under page-cache
//                    pressure, so expert streaming can never evict the weights every token needs
//                    (BigMoeOnEdge measured 3.2x from this alone far past RAM), and RSS counts
//                    them exactly once. --mlock additionally locks the copy.
//   kMlock           the mapping itself is mlocked (file-backed but pinned; no copy).
//   kMmap            plain mapping: the page cache decides (the llama.cpp-like baseline).
// dequantize_to_f32 converts every matrix to f32 at load (for checks against references computed
// on dequantized weights; it multiplies dense memory by up to 8).
//
// Thread-safety: immutable after Load(); read concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/base/ggml_type.h"
#include "core/base/status.h"
#include "core/ops/linear.h"
#include "io/model_file.h"
#include "llm/delta_net_block.h"
#include "llm/mla_weights.h"
#include "llm/model_config.h"
#include "moe/moe_layer.h"

namespace sluice {

enum class DenseResidency { kCopy, kMlock, kMmap };
Result<DenseResidency> ParseDenseResidency(std::string_view name);  // "copy" | "mlock" | "mmap"
const char* DenseResidencyName(DenseResidency residency);

struct LayerWeights {
  const float* attn_norm = nullptr;  // (n_embd)
  DeltaNetWeights delta_net;         // hybrid models' linear-attention layers; else empty
  MlaWeights mla;                    // multi-head latent attention models; else empty
  Matrix wq;                         // (q_rows: q_dim, or 2 q_dim with an output gate; n_embd)
  Matrix wk;                         // (k_dim, n_embd)
  Matrix wv;                         // (v_dim, n_embd)
  Matrix wo;                         // (n_embd, attn_out_dim)
  const float* bq = nullptr;         // (q_dim) or null
  const float* bk = nullptr;         // (k_dim) or null
  const float* bv = nullptr;         // (v_dim) or null
  const float* bo = nullptr;         // (n_embd) or null: attn_output.bias
  const float* sinks = nullptr;      // (n_head) or null: attention sinks
  const float* q_norm = nullptr;     // (head_dim_k) or null
  const float* k_norm = nullptr;     // (head_dim_k) or null
  const float* ffn_norm = nullptr;   // (n_embd)
  MoeLayerWeights moe;               // MoE layers: router, shared expert, routed experts' types
  Matrix ffn_gate;                   // dense layers: (n_ff, n_embd)
  Matrix ffn_up;                     // (n_ff, n_embd)
  Matrix ffn_down;                   // (n_embd, n_ff)
};

struct WeightOptions {
  DenseResidency residency = DenseResidency::kCopy;
  bool lock_copy = false;          // kCopy: mlock the copy
  bool dequantize_to_f32 = false;  // every matrix converted to f32 at load
  bool verify_checksums = true;    // archive tensors: xxh3 of every dense tensor at load (the
                                   // copy reads every byte anyway; ~10 GB/s)
};

class ModelWeights {
 public:
  // Checks every tensor (CheckModelTensors) and makes the dense weights resident.
  static Result<std::unique_ptr<ModelWeights>> Load(const ModelFile& model,
                                                    const ModelConfig& config,
                                                    const WeightOptions& options);
  // Bytes the dense weights will occupy in RAM with these options (f32 sizes when dequantizing),
  // computed without loading: the RAM budget is checked before any copy is made.
  static uint64_t ResidentBytes(const ModelFile& model, const ModelConfig& config,
                                const WeightOptions& options);

  Matrix token_embd;                   // (n_vocab, n_embd)
  const float* output_norm = nullptr;  // (n_embd)
  Matrix output;                       // (n_vocab, n_embd); == token_embd when tied
  bool output_tied = false;
  std::vector<LayerWeights> layers;  // n_layer

  uint64_t resident_bytes() const { return resident_bytes_; }
  // Each layer's routed expert types (gate, up, down), indexed by layer.
  std::vector<ExpertTypes> expert_types() const;
  // Bytes of dense weights one decoded token reads: every matrix and vector once, plus one
  // embedding row (the rest of the embedding table is not touched).
  uint64_t bytes_per_token() const { return bytes_per_token_; }

 private:
  ModelWeights() = default;
  AlignedBuffer storage_;  // the copy (kCopy or dequantized); empty for kMlock / kMmap
  std::vector<std::pair<const uint8_t*, uint64_t>> locked_ranges_;  // kMlock: to munlock
  uint64_t resident_bytes_ = 0;
  uint64_t bytes_per_token_ = 0;

 public:
  ~ModelWeights();
  ModelWeights(const ModelWeights&) = delete;
  ModelWeights& operator=(const ModelWeights&) = delete;
};

}  // namespace sluice
