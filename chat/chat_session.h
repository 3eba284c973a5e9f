// ChatSession: a multi-turn conversation over the engine, the tokenizer and the chat template.
//
// Each turn renders the whole conversation with the template, tokenizes it (earlier replies as
// the tokens the model generated, chat/chat_tokens.h), and compares the tokens with those already
// in the KV cache: only the tokens after the common prefix are prefilled (normally just the new
// user turn), so a long conversation costs per turn what the turn adds. When the rendering of
// history changes (Qwen3 drops earlier turns' <think> blocks), the KV cache is cut back to the
// common prefix and the rest prefilled again: always correct, never stale. Replies stream as text
// through the tokenizer's StreamDecoder (never a broken UTF-8 character), stop on an
// end-of-generation token, the -n limit, a full context or cancellation (an atomic flag checked
// between tokens and between prefill chunks), and report ReplyStats.
//
// Non-goals: sampling (the engine's sampler), the REPL itself (cli/cmd_chat.cc), sliding or
// shifting the context when it fills (the reply stops and says so; /reset starts over).
// Thread-safety: one thread drives a session; only the cancel flag is touched by others.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat/chat_stats.h"
#include "core/base/status.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

// The slice of the inference engine a session drives. EngineTokenEngine
// (chat/engine_token_engine.h) adapts the real engine; the session tests use a scripted fake.
class TokenEngine {
 public:
  virtual ~TokenEngine() = default;
  virtual int context_length() const = 0;  // KV positions available
  // The tokens whose keys and values are in the KV cache, in order: the session's one record of
  // what the engine holds (it keeps no copy of its own).
  virtual std::span<const int32_t> kv_tokens() const = 0;
  int kv_length() const { return static_cast<int>(kv_tokens().size()); }
  // Keeps the first `n` KV positions (n <= kv_length()) and drops the rest.
  virtual Status TruncateKv(int n) = 0;
  // Appends `tokens` at kv_length() and computes the logits after the last one.
  virtual Status Append(std::span<const int32_t> tokens) = 0;
  // Samples the next token from the logits of the last Append.
  virtual Result<int32_t> SampleNext() = 0;
  virtual EngineCounters counters() const = 0;
};

struct ChatSessionOptions {
  std::string system{};       // system message; empty: none
  bool thinking = true;       // Qwen3 templates: false renders an empty <think></think> block
  int max_reply_tokens = -1;  // -n; -1: until end of generation or a full context
  int prefill_chunk = 64;     // tokens per Append while prefilling (cancel is checked between)
  // gpt-oss (harmony): replies stream only their final channel; true also streams the analysis
  // channel (the reasoning), each part introduced by a "[analysis]" / "[final]" line.
  bool show_reasoning = false;
};

// Receives reply text as it is decoded (whole UTF-8 characters only).
using TextSink = std::function<void(std::string_view text)>;

class ChatSession {
 public:
  // All pointers must outlive the session. `chat_template` may be null for a session that only
  // calls Complete(). Replies stop on the template's StopTokens() (the tokenizer's
  // end-of-generation ids plus the family's end-of-turn tokens), or on the tokenizer's
  // end-of-generation ids without a template.
  ChatSession(TokenEngine* engine, const Tokenizer* tokenizer, const ChatTemplate* chat_template,
              ChatSessionOptions options);

  // One turn: appends the user's message, generates the assistant's reply into `sink`, and adds
  // the reply (as far as it got) to the history. `cancel` may be null. Errors: the conversation
  // does not fit in the context (InvalidArgument; history unchanged), engine errors.
  Result<ReplyStats> Reply(std::string_view user_message, const TextSink& sink,
                           const std::atomic<bool>* cancel);

  // One-shot continuation of `text` as is, without the template (`sluice run --raw`). Starts
  // from an empty KV cache.
  Result<ReplyStats> Complete(std::string_view text, const TextSink& sink,
                              const std::atomic<bool>* cancel);

  // Forgets the conversation and empties the KV cache.
  Status Reset();

  const std::vector<ChatMessage>& history() const { return history_; }
  const SessionTotals& totals() const { return totals_; }
  int kv_length() const { return engine_->kv_length(); }
  int context_length() const { return engine_->context_length(); }

 private:
  // Brings the KV cache to `tokens` (prefix reuse, then chunked prefill) and generates.
  Result<ReplyStats> Generate(const std::vector<int32_t>& tokens, const TextSink& sink,
                              const std::atomic<bool>* cancel, std::string* reply_text,
                              std::vector<int32_t>* reply_tokens);
  // Cuts the KV back to the longest common prefix with `tokens`; returns its length.
  Result<int> ReusePrefix(const std::vector<int32_t>& tokens);
  std::vector<int32_t> RenderConversation(std::string_view user_message) const;

  bool IsStopToken(int32_t id) const;

  TokenEngine* engine_;
  const Tokenizer* tokenizer_;
  const ChatTemplate* chat_template_;
  ChatSessionOptions options_;
  std::vector<int32_t> stop_tokens_;  // sorted
  std::vector<ChatMessage> history_;
  // Per history_ message: the tokens the model generated for a reply; empty for user turns.
  std::vector<std::vector<int32_t>> generated_;
  SessionTotals totals_;
};

}  // namespace sluice
