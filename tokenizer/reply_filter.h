// ReplyFilter: the part of a generated reply a user reads, token by token. For most chat
// families that is all the text; gpt-oss (harmony) replies are messages on channels
//   <|channel|>analysis<|message|>reasoning<|end|><|start|>assistant<|channel|>final<|message|>answer
// and only the final channel is the answer (the analysis channel too when asked, each part
// introduced by a "[analysis]" / "[final]" line). Chat and the server both stream through it.
//
// Thread-safety: one per reply; not shared.
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/chat_template.h"
#include "tokenizer/stream_decoder.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

class ReplyFilter {
 public:
  // Passes everything through unless `chat_template` is harmony and the vocabulary has its
  // control tokens.
  ReplyFilter(const Tokenizer& tokenizer, const ChatTemplate* chat_template, bool show_reasoning);

  // The text to show for generated token `id` (whole UTF-8 characters only).
  std::string Push(int32_t id);
  // What is still held back at the end of the reply.
  std::string Flush();

 private:
  enum class Part { kHeader, kChannelName, kBody };
  std::string Show(std::string text);
  void Control(int32_t id, std::string* out);

  StreamDecoder decoder_;
  bool channels_ = false;
  bool show_reasoning_ = false;
  int32_t start_ = -1, channel_ = -1, message_ = -1, end_ = -1;
  Part part_ = Part::kHeader;
  std::string name_;  // the current message's channel
  bool visible_ = true;
};

}  // namespace sluice
