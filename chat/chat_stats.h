// Per-reply and per-session statistics of `sluice chat` / `sluice run`, and their one-line text.
// Every figure is computed from counters (token counts, clock readings, the expert cache's hits,
// misses and bytes read), so the line a user sees can be checked against `sluice bench`.
// It lives in moe/ (not cli/) with the chat session because it needs nothing from the CLI and the
// tests link it from sluice_moe.
//
// Non-goals: the bench's JSON schema (docs/bench.md); device bandwidth probes.
// Thread-safety: plain values.
#pragma once

#include <cstdint>
#include <string>

#include "llm/engine_counters.h"

namespace sluice {

enum class StopReason {
  kEndOfGeneration,  // the model produced an end-of-generation token
  kTokenLimit,       // -n tokens were generated
  kContextFull,      // the KV cache holds the model's context length
  kCancelled,        // Ctrl-C
};
const char* StopReasonName(StopReason reason);

struct ReplyStats {
  int prompt_tokens = 0;     // tokens prefilled for this turn (only the new ones: the KV is kept)
  int reused_tokens = 0;     // tokens of the conversation already in the KV cache
  int generated_tokens = 0;  // tokens sampled, the end-of-generation token not counted
  int decoded_tokens = 0;    // forward passes over generated tokens (the last one sampled before
                             // a limit, a cancel or a full context is never passed through)
  double prefill_s = 0;      // prefilling prompt_tokens
  double ttft_s = 0;         // from the start of the turn to the first token sampled
  double decode_s = 0;       // from the first token sampled to the end of the last forward pass
  double total_s = 0;        // the whole turn
  EngineCounters delta;      // counters accumulated during this turn
  StopReason stop = StopReason::kEndOfGeneration;

  // Decode rate: decoded_tokens / decode_s (the first token's time is the prefill's, reported
  // as ttft). 0 when no generated token went through the model.
  double decode_tok_s() const;
  double hit_rate() const;  // hits / (hits + misses); 0 with no lookups
  // Bytes read over the whole turn's wall time, in MB/s (10^6 bytes): what storage delivered.
  double read_MBps() const;
};

// "24 tokens, 3.41 tok/s, first token 0.52 s, experts 71.2% hit, 0.42 GB read at 812 MB/s"
// plus ", stopped: <reason>" when the reply did not end on its own.
std::string FormatReplyStats(const ReplyStats& stats);

// Totals over a session's replies (`/stats`).
struct SessionTotals {
  int replies = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t decoded_tokens = 0;
  double prefill_s = 0;
  double decode_s = 0;
  double total_s = 0;
  EngineCounters delta;

  void Add(const ReplyStats& reply);
};

// Several lines, for `/stats`.
std::string FormatSessionTotals(const SessionTotals& totals);

}  // namespace sluice
