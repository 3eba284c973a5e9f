// BatchScheduler: continuous batching of generation requests on one engine. One thread owns the
// engine and runs steps (Engine::Step): every sequence that is decoding contributes its next
// token, and sequences still reading their prompt fill the rest of the batch with a chunk each,
// so a new request's prompt never stalls the others for more than one step. Within a step each
// layer reads the union of the experts its rows route to once (llm/engine.h).
//
// Requests wait in a bounded queue for a free sequence. A free sequence keeps its tokens in its
// KV cache: a request is given the one sharing the longest prefix with its prompt, and only the
// rest is computed (a chat's next turn resends the conversation). Sampling is per request (its
// own seed), so batching never changes a result: with the same seed a request gets the same
// tokens alone or beside others.
//
// Text goes out through the request's Generation (server/generation.h); stop strings are held
// back until they can no longer match. A cancelled request, or one past its deadline, ends at the
// next step and frees its sequence.
//
// Thread-safety: Submit, metrics and the destructor may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/base/status.h"
#include "llm/engine.h"
#include "server/generation.h"
#include "tokenizer/reply_filter.h"
#include "tokenizer/tokenizer.h"

namespace sluice::server {

struct SchedulerOptions {
  int max_sequences = 4;  // requests generating at once (each a Sequence of the engine)
  int max_queued = 64;    // requests waiting for a sequence; beyond: Submit fails (HTTP 503)
};

struct SchedulerMetrics {
  int active = 0;  // requests holding a sequence
  int queued = 0;
  int64_t requests = 0;       // submitted and accepted
  int64_t rejected = 0;       // refused because the queue was full
  int64_t prompt_tokens = 0;  // computed (cached prefixes excluded)
  int64_t generated_tokens = 0;
  int64_t steps = 0;
  uint64_t busy_ns = 0;   // time in Engine::Step
  EngineCounters engine;  // since the scheduler started
  // Steps with decode rows only (no prompt chunk): what serving costs once prompts are in.
  // Time runs from the step's start to the end of its sampling.
  int64_t decode_steps = 0;
  int64_t decode_step_tokens = 0;  // rows of those steps
  uint64_t decode_step_ns = 0;
  uint64_t decode_step_bytes_read = 0;
  uint64_t decode_step_hits = 0;
  uint64_t decode_step_misses = 0;
};

class BatchScheduler {
 public:
  // The engine must outlive the scheduler and have been created with max_sequences >=
  // options.max_sequences (the engine's own sequence is the first; no one else may use it while
  // the scheduler runs) and batch_size >= max_sequences.
  static Result<std::unique_ptr<BatchScheduler>> Create(Engine* engine, const Tokenizer* tokenizer,
                                                        const SchedulerOptions& options);
  // Finishes every request (kCancelled) and stops the thread.
  ~BatchScheduler();

  // InvalidArgument for an empty prompt or one that does not fit the context (with room for one
  // token); ResourceExhausted when max_queued requests are already waiting.
  Result<std::shared_ptr<Generation>> Submit(GenerationRequest request);

  SchedulerMetrics metrics() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Job {
    GenerationRequest request;
    std::shared_ptr<Generation> out;
    uint64_t submitted_ns = 0;
    uint64_t admitted_ns = 0;
    uint64_t first_token_ns = 0;
    int slot = -1;
    size_t fed = 0;     // prompt tokens in the KV cache
    int32_t next = -1;  // the sampled token to feed next (decoding), -1 while prefilling
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<ReplyFilter> decoder;  // the text the client gets (tokenizer/reply_filter.h)
    std::string held;                      // text held back: it may be the start of a stop string
    GenerationStats stats;
  };
  struct Slot {
    Sequence* seq = nullptr;  // the engine's own, or `owned`
    std::unique_ptr<Sequence> owned;
    Job* job = nullptr;
  };

  BatchScheduler(Engine* engine, const Tokenizer* tokenizer, const SchedulerOptions& options);
  void Run();
  void Wake();
  // Under mu_: moves queued requests onto free sequences.
  void Admit();
  // Ends cancelled and overdue requests.
  void Reap(uint64_t now);
  Status RunStep();
  // After a step: sample the next token of a job whose logits are ready.
  void Sample(Job& job, uint64_t now);
  void Emit(Job& job, const std::string& text);
  void End(Job& job, FinishReason reason, Status error, uint64_t now);

  Engine* engine_;
  const Tokenizer* tokenizer_;
  SchedulerOptions options_;
  std::vector<Slot> slots_;
  std::vector<std::unique_ptr<Job>> active_;  // in admission order; the engine thread's
  EngineCounters start_counters_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;  // guarded by mu_
  bool stop_ = false;                       // guarded by mu_
  bool woken_ = false;                      // guarded by mu_: a cancel happened
  SchedulerMetrics metrics_;                // guarded by mu_
  std::thread thread_;
};

}  // namespace sluice::server
