// The per-reply stats line: every figure recomputed here from the raw counts.
#include "chat/chat_stats.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

ReplyStats Example() {
  ReplyStats s;
  s.prompt_tokens = 17;
  s.generated_tokens = 11;
  s.decoded_tokens = 10;  // the 11th hit the limit and was never passed through the model
  s.ttft_s = 0.5;
  s.decode_s = 2.0;  // 10 forward passes in 2 s: 5 tok/s
  s.total_s = 2.5;
  s.delta.cache.hits = 300;
  s.delta.cache.misses = 100;                // 75% hit
  s.delta.cache.bytes_read = 1'250'000'000;  // 1.25 GB in 2.5 s: 500 MB/s
  return s;
}

TEST(ChatStats, RatesFromCounts) {
  ReplyStats s = Example();
  EXPECT_DOUBLE_EQ(s.decode_tok_s(), 10.0 / 2.0);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 300.0 / 400.0);
  EXPECT_DOUBLE_EQ(s.read_MBps(), 1.25e9 / 2.5 / 1e6);
}

TEST(ChatStats, LineCarriesEveryFigure) {
  std::string line = FormatReplyStats(Example());
  EXPECT_NE(line.find("11 tokens"), std::string::npos) << line;
  EXPECT_NE(line.find("5.00 tok/s"), std::string::npos) << line;
  EXPECT_NE(line.find("first token 0.50 s"), std::string::npos) << line;
  EXPECT_NE(line.find("17 prompt tokens"), std::string::npos) << line;
  EXPECT_NE(line.find("75.0% hit"), std::string::npos) << line;
  EXPECT_NE(line.find("1.25 GB read"), std::string::npos) << line;
  EXPECT_NE(line.find("500 MB/s"), std::string::npos) << line;
  EXPECT_EQ(line.find("stopped"), std::string::npos) << line;
}

TEST(ChatStats, StoppedRepliesSayWhy) {
  ReplyStats s = Example();
  s.stop = StopReason::kCancelled;
  EXPECT_NE(FormatReplyStats(s).find("stopped: cancelled"), std::string::npos);
  s.stop = StopReason::kContextFull;
  EXPECT_NE(FormatReplyStats(s).find("context full"), std::string::npos);
}

TEST(ChatStats, DegenerateRepliesHaveNoRates) {
  ReplyStats s;
  s.generated_tokens = 1;  // one token sampled from the prefill's logits: no decode rate
  s.decoded_tokens = 0;
  s.decode_s = 0;
  EXPECT_EQ(s.decode_tok_s(), 0.0);
  EXPECT_EQ(s.hit_rate(), 0.0);
  std::string line = FormatReplyStats(s);
  EXPECT_NE(line.find("1 token,"), std::string::npos) << line;
  EXPECT_EQ(line.find("tok/s"), std::string::npos) << line;
  EXPECT_NE(line.find("no expert lookups"), std::string::npos) << line;
}

TEST(ChatStats, TotalsAddReplies) {
  SessionTotals t;
  t.Add(Example());
  t.Add(Example());
  EXPECT_EQ(t.replies, 2);
  EXPECT_EQ(t.generated_tokens, 22);
  EXPECT_EQ(t.decoded_tokens, 20);
  EXPECT_EQ(t.delta.cache.bytes_read, 2'500'000'000u);
  std::string text = FormatSessionTotals(t);
  EXPECT_NE(text.find("generated: 22 tokens, 5.00 tok/s"), std::string::npos) << text;
  EXPECT_NE(text.find("experts: 75.0% hit"), std::string::npos) << text;
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// A prefill cancelled before any chunk went through has no rate to report (issue 16: it printed
// "0.00 tok/s").
TEST(ChatStats, TotalsPrintNoRateWithoutMeasuredTokens) {
  SessionTotals t;
  ReplyStats cancelled;
  cancelled.stop = StopReason::kCancelled;
  t.Add(cancelled);
  const std::string text = FormatSessionTotals(t);
  EXPECT_EQ(text.find("tok/s"), std::string::npos) << text;
  EXPECT_NE(text.find("prompt: 0 tokens\n"), std::string::npos) << text;
  ReplyStats done;
  done.prompt_tokens = 10;
  done.prefill_s = 0.5;
  done.generated_tokens = 5;
  done.decoded_tokens = 4;
  done.decode_s = 2.0;
  t.Add(done);
  const std::string both = FormatSessionTotals(t);
  EXPECT_NE(both.find("prompt: 10 tokens, 20.00 tok/s"), std::string::npos) << both;
  EXPECT_NE(both.find("generated: 5 tokens, 2.00 tok/s"), std::string::npos) << both;
}

}  // namespace
}  // namespace sluice
