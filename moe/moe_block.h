// The mixture-of-experts block of one layer over a batch of tokens:
//   route every token (router matmul, gating, top-k, RoutingHook);
//   start reading the experts any token routes to through the ExpertSource (as far ahead as the
//   cache allows); when decoding one token, once the last of them is in, also a few of the
//   experts the NEXT layer will probably use (its router applied to this layer's state, or the
//   hook's prediction), so the device keeps reading while this layer finishes and the next one
//   runs attention (options.prefetch_next; docs/benchmarks.md measures it); ReadAhead does
//   the same for a token's first layer before its attention;
//   run the shared expert while the reads are in flight;
//   run each routed expert ONCE over all its tokens (one MatMul), in the order the reads
//   complete (no head-of-line blocking behind one slow read);
//   sum each token's expert outputs in its route order and then add the shared expert's, so
//   neither the completion order nor batching changes a bit of the result.
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
#include "moe/moe_layer.h"
#include "moe/read_ahead.h"
#include "moe/router.h"
#include "moe/routing_hook.h"

namespace sluice {

struct MoeBlockOptions {
  int max_tokens = 1;               // batch size the scratch is sized for
  int experts_per_token = 0;        // k
  bool dequantize_experts = false;  // convert each acquired expert to f32 before computing
  int prefetch_next = 0;  // decode: the next layer's predicted experts read early, at most this
                          // many missing ones per layer (0: off)
  RoutingHook* hook = nullptr;  // optional
};

struct MoeCounters {
  uint64_t expert_wait_ns = 0;     // time blocked in ExpertSource::Acquire (I/O wait)
  uint64_t expert_loads = 0;       // Acquire calls (distinct experts per layer per batch)
  uint64_t expert_tokens = 0;      // (token, expert) pairs computed
  uint64_t expert_bytes_used = 0;  // bytes of expert weights computed with (per Acquire)
  uint64_t expert_compute_ns = 0;  // in routed and shared expert FFNs
  uint64_t predicted_experts = 0;  // experts predicted for the next layer
  uint64_t predicted_used = 0;     // of those, the ones the next layer then routed to
  uint64_t speculative_reads = 0;  // predicted experts read ahead (missing ones, at most
                                   // prefetch_next per layer)
  uint64_t speculative_used = 0;   // of those, the ones the next layer then routed to

  // Field by field: what happened between `before` and this.
  MoeCounters operator-(const MoeCounters& before) const {
    static constexpr uint64_t MoeCounters::*kCounts[] = {
        &MoeCounters::expert_wait_ns,    &MoeCounters::expert_loads,
        &MoeCounters::expert_tokens,     &MoeCounters::expert_bytes_used,
        &MoeCounters::expert_compute_ns, &MoeCounters::predicted_experts,
        &MoeCounters::predicted_used,    &MoeCounters::speculative_reads,
        &MoeCounters::speculative_used};
    static_assert(sizeof(kCounts) / sizeof(kCounts[0]) == sizeof(MoeCounters) / sizeof(uint64_t),
                  "a counter added to MoeCounters must be listed here");
    MoeCounters d = *this;
    for (auto field : kCounts) d.*field -= before.*field;
    return d;
  }
};

class MoeBlock {
 public:
  static uint64_t ScratchBytes(const MoeShape& shape, const MoeBlockOptions& options);
  // `source` and `pool` must outlive the block.
  static Result<std::unique_ptr<MoeBlock>> Create(const MoeShape& shape,
                                                  const MoeBlockOptions& options,
                                                  ExpertSource* source, ThreadPool* pool);

  // One MoE layer of the model: its index and resident weights.
  struct Layer {
    int index = -1;  // -1: none
    const MoeLayerWeights* weights = nullptr;
  };

  // xb: (n, n_embd) the normalised hidden states; out: (n, n_embd) receives the block's output
  // (routed + shared). token_index0: run-wide index of token 0 (for the hook). next: the next
  // MoE layer, whose experts are guessed and read ahead when decoding (n == 1); {} for none.
  Status Forward(Layer layer, Layer next, const float* xb, int64_t n, int64_t token_index0,
                 float* out);
  // The stream (sequence) of each row of the next Forward calls, told to the routing hook before
  // each row's route (RoutingHook::SetStream); at most max_tokens. Empty: all stream 0.
  void SetRowStreams(std::span<const int32_t> streams);

  // Decoding, before `layer`'s attention when no earlier layer of this token could read ahead
  // for it (layer 0): guesses its experts and starts their reads, so the device works through
  // that attention too. xb: (1, n_embd) the token's state normalised for `layer`'s router.
  // Forward of `layer` for the same token settles the guess.
  void ReadAheadFirst(Layer layer, const float* xb, int64_t token_index);
  bool reads_ahead() const { return read_ahead_.enabled(); }

  // The routes of the last Forward (n of them), for tests and traces.
  const Route* routes() const { return routes_.data(); }
  const MoeCounters& counters() const { return counters_; }
  void ResetCounters() { counters_ = MoeCounters{}; }

 private:
  MoeBlock(const MoeShape& shape, const MoeBlockOptions& options, ExpertSource* source,
           ThreadPool* pool);
  Status RouteTokens(Layer layer, const float* xb, int64_t n, int64_t token_index0);
  // Prefetches used_experts_[*issued..) up to `window` beyond `done` and adds them to pending_.
  void IssueReads(int layer, size_t done, size_t window, size_t* issued);
  // Computes the routed experts; guesses for `next` once this layer's reads are in.
  Status RunExperts(int layer, const float* xb, size_t issued, Layer next, int64_t token);
  const MoeLayerWeights* current_ = nullptr;  // the layer Forward is running
  void Combine(int64_t n, float* out) const;
  // Into shared_out_ / shared_scale_; AddShared adds them to out after Combine.
  void RunSharedExpert(const MoeLayerWeights& weights, const float* xb, int64_t n);
  void AddShared(int64_t n, float* out) const;
  ExpertWeights Dequantize(const ExpertWeights& w);

  const MoeShape config_;
  MoeBlockOptions options_;
  RouterParams router_;
  ExpertSource* source_;
  ThreadPool* pool_;
  MoeCounters counters_;
  ReadAhead read_ahead_;

  AlignedBuffer buffer_;
  float* router_logits_ = nullptr;    // (max_tokens, n_expert)
  float* xe_ = nullptr;               // (max_tokens, n_embd): one expert's gathered inputs
  float* gate_ = nullptr;             // (max_tokens, n_ff_max)
  float* up_ = nullptr;               // (max_tokens, n_ff_max)
  float* ye_ = nullptr;               // (max_tokens, n_embd): one expert's outputs
  float* expert_out_ = nullptr;       // (max_tokens, k, n_embd): output j of token t at t * k + j
  float* deq_ = nullptr;              // (3, n_ff_exp * n_embd) f32 expert, when dequantizing
  float* shared_out_ = nullptr;       // (max_tokens, n_embd) the shared expert's output
  std::vector<float> shared_scale_;   // (max_tokens) its sigmoid gate (1 without one)
  std::vector<Route> routes_;         // (max_tokens)
  std::vector<int32_t> row_streams_;  // (n of the step) or empty
  std::vector<int> expert_count_;     // (n_expert)  tokens routed to each expert
  std::vector<int> expert_start_;     // (n_expert + 1)  offsets into assignments_
  std::vector<int> assignments_;      // (max_tokens * k)  t * k + j, grouped by expert
  std::vector<int> used_experts_;     // (n_expert)  experts with tokens, ascending id
  std::vector<int> pending_;          // experts whose reads were started and not yet computed
  std::vector<HeldExpert> held_;      // computed, released when the layer is done (RunExperts)
};

}  // namespace sluice
