#include "tokenizer/reply_filter.h"

namespace sluice {

ReplyFilter::ReplyFilter(const Tokenizer& tokenizer, const ChatTemplate* chat_template,
                         bool show_reasoning)
    : decoder_(tokenizer), show_reasoning_(show_reasoning) {
  if (chat_template == nullptr || chat_template->family() != ChatFamily::kHarmony) return;
  start_ = tokenizer.FindToken("<|start|>");
  channel_ = tokenizer.FindToken("<|channel|>");
  message_ = tokenizer.FindToken("<|message|>");
  end_ = tokenizer.FindToken("<|end|>");
  channels_ = channel_ >= 0 && message_ >= 0;
  visible_ = !channels_;
}

std::string ReplyFilter::Show(std::string text) {
  if (part_ == Part::kChannelName) {
    name_ += text;
    return "";
  }
  return visible_ ? text : "";
}

void ReplyFilter::Control(int32_t id, std::string* out) {
  if (id == channel_) {
    part_ = Part::kChannelName;
    name_.clear();
  } else if (id == message_) {
    part_ = Part::kBody;
    visible_ = name_ == "final" || (show_reasoning_ && name_ == "analysis");
    if (visible_ && show_reasoning_) *out += "[" + name_ + "]\n";
  } else {  // <|start|>, <|end|>: between messages
    if (visible_ && show_reasoning_ && name_ == "analysis") *out += "\n";
    part_ = Part::kHeader;
    visible_ = false;
  }
}

std::string ReplyFilter::Push(int32_t id) {
  if (!channels_) return decoder_.Push(id);
  if (id == start_ || id == channel_ || id == message_ || id == end_) {
    std::string out = Show(decoder_.Flush());
    Control(id, &out);
    return out;
  }
  if (part_ == Part::kHeader) {  // the role after <|start|>: not shown
    decoder_.Push(id);
    return "";
  }
  return Show(decoder_.Push(id));
}

std::string ReplyFilter::Flush() { return Show(decoder_.Flush()); }

}  // namespace sluice
