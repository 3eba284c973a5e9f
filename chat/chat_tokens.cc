#include "chat/chat_tokens.h"

#include <string>

#include "core/base/check.h"

namespace sluice {
namespace {

// U+001F (unit separator) never occurs in chat text in practice; if it does, the uniqueness
// check below falls back to plain encoding.
std::string Marker(size_t index) { return "\x1Fsluice-reply-" + std::to_string(index) + "\x1F"; }

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

}  // namespace

std::vector<int32_t> ConversationTokens(const ChatTemplate& chat_template,
                                        const Tokenizer& tokenizer,
                                        std::span<const ChatMessage> messages,
                                        std::span<const std::vector<int32_t>> generated,
                                        const RenderOptions& options) {
  CHECK_EQ(messages.size(), generated.size());
  const EncodeOptions encode{.add_bos = false, .parse_special = true};
  std::string text = chat_template.Render(messages, options);

  std::vector<ChatMessage> marked(messages.begin(), messages.end());
  std::vector<size_t> spliced;  // indices of the replies replaced by markers, in order
  for (size_t i = 0; i < marked.size(); ++i) {
    if (generated[i].empty()) continue;
    marked[i].content = Marker(i);
    spliced.push_back(i);
  }
  if (spliced.empty()) return tokenizer.Encode(text, encode);
  std::string marked_text = chat_template.Render(marked, options);

  // Verbatim check: every marker once, in order, and putting the contents back gives `text`.
  std::vector<size_t> at;
  std::string restored;
  size_t from = 0;
  for (size_t i : spliced) {
    const std::string marker = Marker(i);
    size_t pos = marked_text.find(marker, from);
    if (pos == std::string::npos || CountOf(marked_text, marker) != 1) {
      return tokenizer.Encode(text, encode);
    }
    restored += marked_text.substr(from, pos - from) + messages[i].content;
    at.push_back(pos);
    from = pos + marker.size();
  }
  restored += marked_text.substr(from);
  if (restored != text) return tokenizer.Encode(text, encode);

  std::vector<int32_t> tokens;
  from = 0;
  for (size_t k = 0; k < spliced.size(); ++k) {
    std::vector<int32_t> piece =
        tokenizer.Encode(std::string_view(marked_text).substr(from, at[k] - from), encode);
    tokens.insert(tokens.end(), piece.begin(), piece.end());
    const std::vector<int32_t>& reply = generated[spliced[k]];
    tokens.insert(tokens.end(), reply.begin(), reply.end());
    from = at[k] + Marker(spliced[k]).size();
  }
  std::vector<int32_t> tail = tokenizer.Encode(std::string_view(marked_text).substr(from), encode);
  tokens.insert(tokens.end(), tail.begin(), tail.end());
  return tokens;
}

}  // namespace sluice
