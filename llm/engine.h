// Engine: runs a mixture-of-experts model on the CPU with its routed experts streamed from
// storage through a fixed-budget expert cache.
//
//   ASSIGN_OR_RETURN(auto engine, Engine::Open("model.gguf", {.ram_budget_bytes = 12ull << 30}));
//   RETURN_IF_ERROR(engine->Prefill(prompt_ids));           // batches of options.batch_size
//   Sampler sampler({.temperature = 0.7f, .seed = 1});      // chat/sampler.h
//   for (int i = 0; i < n; ++i) {
//     int32_t id = sampler.Sample(engine->logits(), engine->history());
//     RETURN_IF_ERROR(engine->Decode(id));                  // one token
//   }
//
// The forward pass (per batch of consecutive tokens):
//   x = embed(tokens)                                       quantized rows dequantized on lookup
//   per layer: x += attention(rmsnorm(x) * attn_norm)       llm/attention_block.h
//              (or a gated delta-net layer in hybrid models: llm/delta_net_block.h)
//              x += moe(rmsnorm(x) * ffn_norm)              moe/moe_block.h
//   logits = output(rmsnorm(x) * output_norm)               tied to token_embd when absent
// Results do not depend on the RAM budget, the expert source, the batch size or the thread count:
// every path computes the same operations in the same order on the same bytes.
//
// Sequences: the engine owns one (the calls without a Sequence argument use it); NewSequence()
// makes more, each with its own KV cache, for several conversations on one engine
// (llm/sequence.h). They share everything else.
//
// Step() runs several sequences in one forward pass (the server's continuous batching): each
// layer's attention runs per sequence on its own KV cache, its MoE over all rows at once, so an
// expert that several sequences route to is read once and run over all their rows. A sequence's
// results are bit-identical to running it alone.
//
// Non-goals: GPU offload, speculative decoding.
// Thread-safety: one thread at a time drives an engine; it uses its own thread pool inside.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "core/threads/thread_pool.h"
#include "io/io_backend.h"
#include "io/model_file.h"
#include "llm/attention_block.h"
#include "llm/delta_net_block.h"
#include "llm/engine_counters.h"
#include "llm/engine_options.h"
#include "llm/kv_cache.h"
#include "llm/memory_plan.h"
#include "llm/mla_block.h"
#include "llm/model_config.h"
#include "llm/run_state.h"
#include "llm/sequence.h"
#include "llm/weights.h"
#include "moe/expert_cache.h"
#include "moe/expert_source.h"
#include "moe/moe_block.h"

namespace sluice {

class Engine {
 public:
  // Opens the model (GGUF or archive, io/model_open.h) and creates the engine.
  static Result<std::unique_ptr<Engine>> Open(const std::string& path,
                                              const EngineOptions& options);
  // Checks every tensor against the config, plans memory against the budget (ResourceExhausted
  // naming what is needed), loads the dense weights, and creates the KV cache, the I/O backend
  // and the expert cache.
  static Result<std::unique_ptr<Engine>> Create(std::unique_ptr<ModelFile> model,
                                                const EngineOptions& options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Processes `tokens` after the n_past() already in the KV cache, in batches. `all_logits`:
  // empty, or (tokens.size(), n_vocab) to receive the logits of every position. InvalidArgument
  // for a token id out of range or when the context would overflow (nothing is processed).
  Status Prefill(Sequence& seq, std::span<const int32_t> tokens, std::span<float> all_logits = {});
  // Processes one token (the next position).
  Status Decode(Sequence& seq, int32_t token);
  // One sequence's part of a Step: tokens appended to it (a prompt chunk or a decoded token).
  struct StepInput {
    Sequence* seq = nullptr;
    std::span<const int32_t> tokens;
    bool prompt = false;  // counted as prompt tokens, else as decoded tokens
  };
  // One forward pass over the tokens of several distinct sequences, at most batch_size tokens in
  // all. Afterwards each sequence's logits() are those after its last token. InvalidArgument
  // (nothing processed) for a repeated sequence, too many tokens, a token out of range or a
  // context that would overflow.
  Status Step(std::span<const StepInput> inputs);
  int batch_size() const { return batch_size_; }

  // The same on the engine's own sequence.
  Status Prefill(std::span<const int32_t> tokens, std::span<float> all_logits = {}) {
    return Prefill(*own_, tokens, all_logits);
  }
  Status Decode(int32_t token) { return Decode(*own_, token); }
  // The logits after the last processed token of the engine's sequence: (n_vocab).
  std::span<const float> logits() const { return own_->logits(); }

  // A new, empty sequence with its own KV cache. ResourceExhausted when max_sequences are live
  // (the memory plan reserved KV caches for that many) or its KV cache cannot be allocated.
  // The engine must outlive it.
  Result<std::unique_ptr<Sequence>> NewSequence();
  // The engine's own sequence.
  Sequence& sequence() { return *own_; }

  // Reads every routed expert into the expert cache, for runs meant to be fully resident
  // (benchmarks, a budget above the model's size): decoding then never waits on storage.
  // InvalidArgument when the cache cannot hold them all; nothing to do for the mmap source.
  Status PreloadExperts();

  // The engine's sequence: forgets the context (the KV cache is reused from position 0), or
  // keeps its first n positions (Sequence::Truncate).
  void Reset() { own_->Reset(); }
  void Truncate(int64_t n) { own_->Truncate(n); }
  int64_t n_past() const { return own_->n_past(); }
  int64_t n_ctx() const { return n_ctx_; }
  int experts_per_token() const { return experts_per_token_; }
  std::span<const int32_t> history() const { return own_->tokens(); }

  const ModelConfig& config() const { return config_; }
  const ModelFile& model() const { return *model_; }
  const ModelWeights& weights() const { return *weights_; }
  const MemoryPlan& memory_plan() const { return plan_; }
  const EngineOptions& options() const { return options_; }
  // Null for the mmap expert source.
  ExpertCache* expert_cache() const { return cache_.get(); }
  const IoBackend* io_backend() const { return io_.get(); }

  EngineCounters counters() const;
  void ResetCounters();

 private:
  Engine() = default;
  Status Init();
  friend class Sequence;  // its destructor gives its place back
  Status CheckTokens(const Sequence& seq, std::span<const int32_t> tokens) const;
  // Runs n <= batch_size tokens at positions seq.n_past()...; logits of every row into
  // `all_logits` (n, n_vocab) when not null, and of the last row into seq's logits always.
  Status ForwardBatch(Sequence& seq, const int32_t* tokens, int64_t n, float* all_logits);
  // A sequence whose recurrent state no longer matches its tokens (truncated, or a step that
  // failed midway) gets it back by running its tokens again from a zero state.
  Status Replay(Sequence& seq);
  // The same over several sequences (rows in input order); all_logits only with one input.
  Status ForwardBatch(std::span<const StepInput> inputs, float* all_logits);
  // The stages of ForwardBatch (llm/forward.cc), on state_ for n tokens.
  void Embed(const int32_t* tokens, int64_t n, int64_t row0);  // into rows row0...
  void ReadAheadFirstLayer();  // decoding: guess layer 0's experts before its attention
  void Attention(int layer, std::span<const AttentionBlock::Span> spans,
                 std::span<const DeltaNetBlock::Span> state_spans, int64_t n);
  Status Moe(int layer, int64_t n);
  void DenseFfn(int layer, int64_t n);
  void Logits(int64_t n, float* all_logits, float* last_logits);
  // Each input's logits after its last row (a step of several sequences).
  void StepLogits(std::span<const StepInput> inputs);
  Result<std::unique_ptr<Sequence>> MakeSequence();

  EngineOptions options_;
  std::unique_ptr<ModelFile> model_;
  ModelConfig config_;
  MemoryPlan plan_;
  int experts_per_token_ = 0;
  int64_t n_ctx_ = 0;
  int batch_size_ = 1;

  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ModelWeights> weights_;
  std::unique_ptr<IoBackend> io_;
  std::unique_ptr<ExpertCache> cache_;
  std::unique_ptr<ExpertSource> source_;
  std::unique_ptr<AttentionBlock> attention_;
  std::unique_ptr<DeltaNetBlock> delta_net_;  // hybrid models only
  std::unique_ptr<MlaBlock> mla_;             // multi-head latent attention models only
  std::unique_ptr<MoeBlock> moe_;

  RunState state_;                    // activations of one batch
  std::vector<float> step_logits_;    // (max_sequences, n_vocab) when max_sequences > 1
  std::vector<int32_t> row_streams_;  // (rows of the step) each row's Sequence::id
  int live_sequences_ = 0;            // own_ included; at most options_.max_sequences
  std::vector<bool> sequence_ids_;    // ids in use (Sequence::id)
  std::unique_ptr<Sequence> own_;     // the sequence of the calls without one (after the count:
                                      // its destructor decrements it)

  int64_t tokens_seen_ = 0;  // run-wide token index for the routing hook (not reset by Reset)
  EngineCounters counters_;  // the engine's own; .moe and .cache live in moe_ and cache_
};

}  // namespace sluice
