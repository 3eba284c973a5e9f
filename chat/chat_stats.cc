#include "chat/chat_stats.h"

#include <cstdio>

#include "core/base/str_cat.h"

namespace sluice {
namespace {

std::string Fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, value);
  return buf;
}

double HitRate(const EngineCounters& c) {
  uint64_t lookups = c.cache.hits + c.cache.misses;
  return lookups == 0 ? 0.0 : static_cast<double>(c.cache.hits) / static_cast<double>(lookups);
}

double MBps(uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / seconds / 1e6 : 0.0;
}

// "71.2% hit, 0.42 GB read at 812 MB/s", or "no lookups" for work that touched no routed expert.
std::string ExpertFigures(const EngineCounters& c, double seconds) {
  if (c.cache.hits + c.cache.misses == 0) return "no lookups";
  return StrCat(Fixed(100.0 * HitRate(c), 1), "% hit, ",
                Fixed(static_cast<double>(c.cache.bytes_read) / 1e9, 2), " GB read at ",
                Fixed(MBps(c.cache.bytes_read, seconds), 0), " MB/s");
}

}  // namespace

const char* StopReasonName(StopReason reason) {
  switch (reason) {
    case StopReason::kEndOfGeneration:
      return "end of generation";
    case StopReason::kTokenLimit:
      return "token limit (-n)";
    case StopReason::kContextFull:
      return "context full";
    case StopReason::kCancelled:
      return "cancelled";
  }
  return "?";
}

double ReplyStats::decode_tok_s() const {
  if (decoded_tokens < 1 || decode_s <= 0) return 0.0;
  return static_cast<double>(decoded_tokens) / decode_s;
}

double ReplyStats::hit_rate() const { return HitRate(delta); }

double ReplyStats::read_MBps() const { return MBps(delta.cache.bytes_read, total_s); }

std::string FormatReplyStats(const ReplyStats& s) {
  std::string line = StrCat(s.generated_tokens, s.generated_tokens == 1 ? " token, " : " tokens, ");
  line += s.decoded_tokens >= 1 ? StrCat(Fixed(s.decode_tok_s(), 2), " tok/s, ") : "";
  line += StrCat("first token ", Fixed(s.ttft_s, 2), " s (", s.prompt_tokens, " prompt tokens), ");
  line += s.delta.cache.hits + s.delta.cache.misses == 0
              ? "no expert lookups"
              : "experts " + ExpertFigures(s.delta, s.total_s);
  if (s.stop != StopReason::kEndOfGeneration) line += StrCat(", stopped: ", StopReasonName(s.stop));
  return line;
}

void SessionTotals::Add(const ReplyStats& reply) {
  replies += 1;
  prompt_tokens += reply.prompt_tokens;
  generated_tokens += reply.generated_tokens;
  decoded_tokens += reply.decoded_tokens;
  prefill_s += reply.prefill_s;
  decode_s += reply.decode_s;
  total_s += reply.total_s;
  delta.cache.hits += reply.delta.cache.hits;
  delta.cache.misses += reply.delta.cache.misses;
  delta.cache.bytes_read += reply.delta.cache.bytes_read;
  delta.moe.expert_wait_ns += reply.delta.moe.expert_wait_ns;
}

std::string FormatSessionTotals(const SessionTotals& t) {
  double prefill_tok_s = t.prefill_s > 0 ? static_cast<double>(t.prompt_tokens) / t.prefill_s : 0;
  double decode_tok_s = t.decode_s > 0 ? static_cast<double>(t.decoded_tokens) / t.decode_s : 0;
  double io_wait_s = static_cast<double>(t.delta.moe.expert_wait_ns) / 1e9;
  // A rate only where tokens went through the model in measured time (a prefill cancelled before
  // its first chunk has none to report, not "0.00 tok/s").
  auto rate = [](int64_t tokens, double tok_s) {
    return tokens > 0 && tok_s > 0 ? StrCat(", ", Fixed(tok_s, 2), " tok/s") : std::string();
  };
  return StrCat("replies: ", t.replies, "\n",                                                  //
                "prompt: ", t.prompt_tokens, " tokens", rate(t.prompt_tokens, prefill_tok_s),  //
                "\n",                                                                          //
                "generated: ", t.generated_tokens, " tokens",                                  //
                rate(t.decoded_tokens, decode_tok_s), "\n",                                    //
                "experts: ", ExpertFigures(t.delta, t.total_s), "\n",                          //
                "waiting on reads: ", Fixed(io_wait_s, 2), " s of ", Fixed(t.total_s, 2), " s\n");
}

}  // namespace sluice
