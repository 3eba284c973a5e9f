// The mixture-of-experts block of one layer over a batch of tokens:
//   route every token (router matmul, gating, top-k, RoutingHook);
//   gather the experts any token routes to, read each ONCE through the ExpertSource (prefetched
//   ahead as far as the cache allows) and run it over all its tokens with one MatMul;
//   sum each token's expert outputs in its route order (so a batch gives bit for bit what
//   token-by-token decoding gives), then add the shared expert when the model has one.
// All scratch is allocated once in Create() for at most max_tokens tokens.
//
// Thread-safety: none; one engine thread. Kernels inside use the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/base/aligned_buffer.h"
#include "core/base/status.h"
#include "core/threads/thread_pool.h"
#include "moe/expert_source.h"
#include "moe/model_config.h"
#include "moe/router.h"
#include "moe/routing_hook.h"
#include "moe/weights.h"

namespace sluice {

struct MoeBlockOptions {
  int max_tokens = 1;               // batch size the scratch is sized for
  int experts_per_token = 0;        // k
  bool dequantize_experts = false;  // convert each acquired expert to f32 before computing
  RoutingHook* hook = nullptr;      // optional
};

struct MoeCounters {
  uint64_t expert_wait_ns = 0;     // time blocked in ExpertSource::Acquire (I/O wait)
  uint64_t expert_loads = 0;       // Acquire calls (distinct experts per layer per batch)
  uint64_t expert_tokens = 0;      // (token, expert) pairs computed
  uint64_t expert_bytes_used = 0;  // bytes of expert weights computed with (per Acquire)
};

class MoeBlock {
 public:
  static uint64_t ScratchBytes(const ModelConfig& config, const MoeBlockOptions& options);
  static Result<std::unique_ptr<MoeBlock>> Create(const ModelConfig& config,
                                                  const MoeBlockOptions& options);

  // xb: (n, n_embd) the normalised hidden states; out: (n, n_embd) receives the block's output
  // (routed + shared). token_index0: run-wide index of token 0 (for the hook).
  Status Forward(int layer, const LayerWeights& weights, ExpertSource& source, const float* xb,
                 int64_t n, int64_t token_index0, float* out, ThreadPool* pool,
                 MoeCounters* counters);

  // The routes of the last Forward (n of them), for tests and traces.
  const Route* routes() const { return routes_.data(); }

 private:
  MoeBlock(const ModelConfig& config, const MoeBlockOptions& options);
  Status RouteTokens(int layer, const LayerWeights& weights, const float* xb, int64_t n,
                     int64_t token_index0, ThreadPool* pool);
  Status RunExperts(int layer, ExpertSource& source, const float* xb, ThreadPool* pool,
                    MoeCounters* counters);
  void Combine(int64_t n, float* out) const;
  void AddSharedExpert(const LayerWeights& weights, const float* xb, int64_t n, float* out,
                       ThreadPool* pool);
  ExpertWeights Dequantize(const ExpertWeights& w);

  const ModelConfig& config_;
  MoeBlockOptions options_;
  RouterParams router_;
  int64_t n_ff_max_ = 0;

  AlignedBuffer buffer_;
  float* router_logits_ = nullptr;  // (max_tokens, n_expert)
  float* xe_ = nullptr;             // (max_tokens, n_embd): one expert's gathered inputs
  float* gate_ = nullptr;           // (max_tokens, n_ff_max)
  float* up_ = nullptr;             // (max_tokens, n_ff_max)
  float* ye_ = nullptr;             // (max_tokens, n_embd): one expert's outputs
  float* expert_out_ = nullptr;     // (max_tokens, k, n_embd): output j of token t at t * k + j
  float* deq_ = nullptr;            // (3, n_ff_exp * n_embd) f32 expert, when dequantizing
  std::vector<Route> routes_;       // (max_tokens)
  std::vector<int> expert_count_;   // (n_expert)  tokens routed to each expert
  std::vector<int> expert_start_;   // (n_expert + 1)  offsets into assignments_
  std::vector<int> assignments_;    // (max_tokens * k)  t * k + j, grouped by expert
  std::vector<int> used_experts_;   // (n_expert)  experts with tokens, ascending id
};

}  // namespace sluice
