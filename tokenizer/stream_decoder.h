// StreamDecoder: turns token ids, arriving one at a time from the sampler, into text that is safe
// to write to a terminal immediately. A token may end in the middle of a multi-byte UTF-8
// character (byte-level BPE splits rare characters into byte tokens; SentencePiece falls back to
// <0xNN> tokens): those bytes are held until the character completes, so the output never carries
// a broken character. Bytes that can never form a character become U+FFFD.
//
//   StreamDecoder decoder(*tokenizer);
//   for (int32_t id : generated) { std::fputs(decoder.Push(id).c_str(), stdout); }
//   std::fputs(decoder.Flush().c_str(), stdout);
//
// Concatenating every Push() and the final Flush() gives exactly Tokenizer::Decode() of the same
// ids (with the same options) whenever that decoded text is valid UTF-8.
//
// Non-goals: detecting stop strings. Thread-safety: one decoder per stream, not shared.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/tokenizer.h"

namespace sluice {

struct StreamDecoderOptions {
  // Print the text of CONTROL/UNKNOWN tokens; off: they produce nothing.
  bool render_special = false;
  // SentencePiece with add_space_prefix: drop the leading space of the stream's first text piece
  // (useful when the stream is a whole encoded text; a reply after "[/INST]" keeps it off).
  bool strip_space_prefix = false;
};

class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, StreamDecoderOptions options = {});

  // Adds one token; returns the text completed by it (often empty or one character short).
  std::string Push(int32_t id);
  // Ends the stream: held bytes of an unfinished character come out as U+FFFD. The decoder is
  // then ready for a new stream.
  std::string Flush();
  // Drops held bytes and starts a new stream (e.g. after Ctrl-C).
  void Reset();

  // Bytes held back, waiting for the rest of a character (0..3).
  size_t pending_bytes() const { return pending_.size(); }

 private:
  const Tokenizer& tokenizer_;
  StreamDecoderOptions options_;
  std::string pending_;
  bool at_start_ = true;
};

}  // namespace sluice
