// Generation: one request's tokens on their way from the batch scheduler (server/batch_scheduler.h)
// to the HTTP handler that streams them. The scheduler appends text and finishes it once; the
// handler waits for what is new and may cancel (client gone, deadline). Both sides hold it by
// shared_ptr, so either may go first.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "chat/sampler.h"
#include "core/base/status.h"
#include "tokenizer/chat_template.h"

namespace sluice::server {

struct GenerationRequest {
  std::vector<int32_t> prompt;       // tokens, non-empty, shorter than the context
  SamplerOptions sampling;           // validated
  int64_t max_tokens = -1;           // generated tokens at most; -1: until the context is full
  std::vector<int32_t> stop_tokens;  // end the reply (not part of it)
  std::vector<std::string> stop;     // stop strings: the reply ends before the first one
  uint64_t deadline_ns = 0;          // NowNs() after which it ends (kDeadline); 0: none
  // Chat requests: the template whose reply filter decides which text is the answer (gpt-oss
  // replies carry their reasoning on another channel: tokenizer/reply_filter.h); null: all.
  const ChatTemplate* chat_template = nullptr;
};

enum class FinishReason { kNone, kStop, kLength, kCancelled, kDeadline, kError };
// "stop", "length", "cancelled", "deadline", "error": OpenAI's finish_reason for the first two.
const char* FinishReasonName(FinishReason reason);

struct GenerationStats {
  int64_t prompt_tokens = 0;     // of the request
  int64_t cached_tokens = 0;     // of those, already in a sequence's KV cache (not computed)
  int64_t generated_tokens = 0;  // sampled tokens, the stop token excluded
  uint64_t queued_ns = 0;        // submitted -> given a sequence
  uint64_t prompt_ns = 0;        // given a sequence -> first token sampled
  uint64_t decode_ns = 0;        // first token sampled -> end
  // The request's share of the steps it took part in (its rows / the step's rows): bytes read
  // from storage, expert cache hits and misses.
  double bytes_read = 0;
  double cache_hits = 0;
  double cache_misses = 0;
};

class Generation {
 public:
  explicit Generation(std::function<void()> wake_scheduler)
      : wake_scheduler_(std::move(wake_scheduler)) {}

  struct Update {
    std::string text;  // new since the last Wait
    bool done = false;
    FinishReason reason = FinishReason::kNone;
    Status error;           // kError: what went wrong
    GenerationStats stats;  // final when done
  };
  // Handler: waits until there is new text, the end, or `timeout_ms` passed (then an empty
  // update that is not done: the caller checks its client and waits again).
  Update Wait(int timeout_ms);
  // Handler: ends the generation at the scheduler's next step (reason kCancelled).
  void Cancel();

  // Scheduler side.
  bool cancelled() const;
  void Append(const std::string& text);
  void Finish(FinishReason reason, Status error, const GenerationStats& stats);
  bool done() const;

 private:
  std::function<void()> wake_scheduler_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;  // appended, not yet taken by Wait
  bool cancelled_ = false;
  bool done_ = false;
  FinishReason reason_ = FinishReason::kNone;
  Status error_;
  GenerationStats stats_;
};

}  // namespace sluice::server
