// ConversationTokens: a conversation as the token sequence the model sees, with each earlier
// reply carried as the very tokens the model generated rather than its text encoded again.
//
// Why: re-encoding a reply's text does not always give back its tokens. Sampling can pick a
// non-canonical split ("t" + "he" where the encoder says "the"), and bytes that never formed a
// character were printed (and kept in the history) as U+FFFD. Any such difference would end the
// KV prefix match inside that reply and force everything after it to be prefilled again. So the
// conversation is rendered once with a marker in place of each reply with tokens; the text
// between markers is encoded, and the reply tokens are spliced in between.
//
// Splicing is only done when the template copies those replies verbatim (checked by rendering
// both ways). A template that rewrites earlier replies (Qwen3 drops their <think> blocks) gets the
// plain encoding of its rendered text, as it was trained on.
//
// Non-goals: deciding what is in the KV cache (chat/chat_session.h does the prefix match).
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace sluice {

// `generated[i]`: the tokens of messages[i] when it is a reply the model produced (its content
// is their decoded text); empty otherwise. Same length as `messages`. The text is encoded with
// parse_special and no extra BOS (the template writes the BOS text itself).
std::vector<int32_t> ConversationTokens(const ChatTemplate& chat_template,
                                        const Tokenizer& tokenizer,
                                        std::span<const ChatMessage> messages,
                                        std::span<const std::vector<int32_t>> generated,
                                        const RenderOptions& options);

}  // namespace sluice
