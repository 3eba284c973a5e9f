#include "chat/chat_session.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "chat/chat_tokens.h"
#include "core/base/clock.h"
#include "tokenizer/reply_filter.h"

namespace sluice {
namespace {

bool IsCancelled(const std::atomic<bool>* cancel) {
  return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

}  // namespace

ChatSession::ChatSession(TokenEngine* engine, const Tokenizer* tokenizer,
                         const ChatTemplate* chat_template, ChatSessionOptions options)
    : engine_(engine),
      tokenizer_(tokenizer),
      chat_template_(chat_template),
      options_(std::move(options)) {
  CHECK(engine_ != nullptr && tokenizer_ != nullptr);
  CHECK_GT(options_.prefill_chunk, 0);
  stop_tokens_ = chat_template_ != nullptr ? chat_template_->StopTokens(*tokenizer_)
                                           : tokenizer_->end_of_generation_ids();
}

bool ChatSession::IsStopToken(int32_t id) const {
  return std::binary_search(stop_tokens_.begin(), stop_tokens_.end(), id);
}

std::vector<int32_t> ChatSession::RenderConversation(std::string_view user_message) const {
  CHECK(chat_template_ != nullptr) << "Reply() needs a chat template";
  std::vector<ChatMessage> messages;
  std::vector<std::vector<int32_t>> generated;
  if (!options_.system.empty()) {
    messages.push_back({.role = ChatRole::kSystem, .content = options_.system});
    generated.emplace_back();
  }
  messages.insert(messages.end(), history_.begin(), history_.end());
  generated.insert(generated.end(), generated_.begin(), generated_.end());
  messages.push_back({.role = ChatRole::kUser, .content = std::string(user_message)});
  generated.emplace_back();
  return ConversationTokens(*chat_template_, *tokenizer_, messages, generated,
                            {.add_generation_prompt = true, .enable_thinking = options_.thinking});
}

Result<ReplyStats> ChatSession::Reply(std::string_view user_message, const TextSink& sink,
                                      const std::atomic<bool>* cancel) {
  std::vector<int32_t> tokens = RenderConversation(user_message);
  int context = engine_->context_length();
  // One position must stay free for the reply's first token.
  if (static_cast<int64_t>(tokens.size()) >= context) {
    if (history_.empty()) {
      return InvalidArgument("the prompt is ", tokens.size(), " tokens, but the context holds ",
                             context, " (the reply needs at least one more)");
    }
    return InvalidArgument("the conversation would be ", tokens.size(),
                           " tokens, but the context holds ", context,
                           ": /reset to start a new one");
  }
  std::string reply_text;
  std::vector<int32_t> reply_tokens;
  ASSIGN_OR_RETURN(ReplyStats stats, Generate(tokens, sink, cancel, &reply_text, &reply_tokens));
  // A turn cancelled before its first token leaves no trace in the history; its prompt tokens
  // stay in the KV cache, where the next turn's prefix match may still use them.
  if (stats.generated_tokens > 0 || stats.stop != StopReason::kCancelled) {
    history_.push_back({.role = ChatRole::kUser, .content = std::string(user_message)});
    generated_.emplace_back();
    history_.push_back({.role = ChatRole::kAssistant, .content = std::move(reply_text)});
    generated_.push_back(std::move(reply_tokens));
  }
  return stats;
}

Result<ReplyStats> ChatSession::Complete(std::string_view text, const TextSink& sink,
                                         const std::atomic<bool>* cancel) {
  std::vector<int32_t> tokens =
      tokenizer_->Encode(text, {.add_bos = tokenizer_->add_bos(), .parse_special = true});
  if (tokens.empty()) return InvalidArgument("the prompt is empty");
  int context = engine_->context_length();
  if (static_cast<int64_t>(tokens.size()) >= context) {
    return InvalidArgument("the prompt is ", tokens.size(), " tokens, but the context holds ",
                           context, " (the reply needs at least one more)");
  }
  std::string reply_text;
  std::vector<int32_t> reply_tokens;
  return Generate(tokens, sink, cancel, &reply_text, &reply_tokens);
}

Status ChatSession::Reset() {
  history_.clear();
  generated_.clear();
  return engine_->TruncateKv(0);
}

Result<int> ChatSession::ReusePrefix(const std::vector<int32_t>& tokens) {
  const std::span<const int32_t> kv = engine_->kv_tokens();
  size_t common = 0;
  size_t limit = std::min(kv.size(), tokens.size());
  while (common < limit && kv[common] == tokens[common]) ++common;
  // The last prompt token is always appended again: its logits are what the reply samples from,
  // and the engine keeps only the logits of its latest Append.
  if (common == tokens.size()) --common;
  if (common < kv.size()) RETURN_IF_ERROR(engine_->TruncateKv(static_cast<int>(common)));
  return static_cast<int>(common);
}

Result<ReplyStats> ChatSession::Generate(const std::vector<int32_t>& tokens, const TextSink& sink,
                                         const std::atomic<bool>* cancel, std::string* reply_text,
                                         std::vector<int32_t>* reply_tokens) {
  CHECK(!tokens.empty());
  Clock::time_point start = Clock::now();
  EngineCounters before = engine_->counters();
  ReplyStats stats;
  ASSIGN_OR_RETURN(int reused, ReusePrefix(tokens));
  stats.reused_tokens = reused;

  // Prefill in chunks so Ctrl-C during a long prompt takes effect within one chunk.
  auto fail = [&](Status status) -> Status {
    // After a failed Append the engine's KV state is unknown: start the next turn from empty.
    Status truncated = engine_->TruncateKv(0);
    (void)truncated;  // the first error is the one to report
    return status;
  };
  for (size_t pos = static_cast<size_t>(reused); pos < tokens.size();) {
    if (IsCancelled(cancel)) {
      stats.stop = StopReason::kCancelled;
      stats.total_s = Seconds(start, Clock::now());
      stats.prefill_s = stats.total_s;  // the prompt tokens that went in took this long
      stats.delta = engine_->counters() - before;
      totals_.Add(stats);
      return stats;
    }
    size_t n = std::min(tokens.size() - pos, static_cast<size_t>(options_.prefill_chunk));
    std::span<const int32_t> chunk(tokens.data() + pos, n);
    if (Status s = engine_->Append(chunk); !s.ok()) return fail(std::move(s));
    stats.prompt_tokens += static_cast<int>(n);
    pos += n;
  }
  Clock::time_point prefill_end = Clock::now();
  stats.prefill_s = Seconds(start, prefill_end);

  // What the user reads (gpt-oss: the final channel; tokenizer/reply_filter.h).
  ReplyFilter filter(*tokenizer_, chat_template_, options_.show_reasoning);
  auto emit = [&](const std::string& text) {
    if (text.empty()) return;
    reply_text->append(text);
    if (sink) sink(text);
  };
  Clock::time_point first_token = prefill_end, last_pass_end = prefill_end;
  for (;;) {
    if (options_.max_reply_tokens >= 0 && stats.generated_tokens >= options_.max_reply_tokens) {
      stats.stop = StopReason::kTokenLimit;
      break;
    }
    Result<int32_t> token = engine_->SampleNext();
    if (!token.ok()) return fail(token.status());
    if (stats.generated_tokens == 0) {
      first_token = last_pass_end = Clock::now();
      stats.ttft_s = Seconds(start, first_token);
    }
    if (IsStopToken(*token)) {
      stats.stop = StopReason::kEndOfGeneration;
      break;
    }
    stats.generated_tokens += 1;
    reply_tokens->push_back(*token);
    emit(filter.Push(*token));
    // Stop before the forward pass whose logits nobody would use.
    if (IsCancelled(cancel)) {
      stats.stop = StopReason::kCancelled;
      break;
    }
    if (options_.max_reply_tokens >= 0 && stats.generated_tokens >= options_.max_reply_tokens) {
      stats.stop = StopReason::kTokenLimit;
      break;
    }
    if (engine_->kv_length() >= engine_->context_length()) {
      stats.stop = StopReason::kContextFull;
      break;
    }
    if (Status s = engine_->Append(std::span<const int32_t>(&*token, 1)); !s.ok()) {
      return fail(std::move(s));
    }
    stats.decoded_tokens += 1;
    last_pass_end = Clock::now();
  }
  emit(filter.Flush());
  Clock::time_point end = Clock::now();
  stats.decode_s = Seconds(first_token, last_pass_end);
  stats.total_s = Seconds(start, end);
  stats.delta = engine_->counters() - before;
  totals_.Add(stats);
  return stats;
}

}  // namespace sluice
