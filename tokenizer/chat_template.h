// Chat templates: render a conversation into the exact text the model was trained on.
//
// Models ship their template as Jinja source in tokenizer.chat_template. Rather than embedding a
// Jinja engine, we recognise the family from marker strings in that source and render the family
// natively (tokenizer/chat_render.cc); each renderer quotes the format it reproduces. Families:
//   chatml       <|im_start|>role\n...<|im_end|>\n                       (Qwen2, Qwen2.5, generic)
//   qwen3        ChatML plus Qwen3's <think> handling: reasoning is dropped from assistant turns
//                before the last user message; enable_thinking=false pre-fills an empty
//                "<think>\n\n</think>\n\n" after the generation prompt; templates that pre-fill
//                "<think>\n" when thinking is on (Qwen3.5) get that
//   mistral-v1   <s>[INST] user [/INST]answer</s>                 (Mixtral 8x7B, first template)
//   mistral-v2   <s> [INST] user [/INST] answer</s>           (Mistral v0.1/v0.2 updated template)
//   mistral-v3   <s>[INST] user[/INST] answer</s>                         (Mixtral 8x22B, v0.3)
//   llama3       <|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>
//   deepseek3    <｜begin▁of▁sentence｜>system<｜User｜>...<｜Assistant｜>...<｜end▁of▁sentence｜>
//   deepseek-r1  deepseek3 with reasoning stripped from past answers and "<think>\n" pre-filled
//                when the template does
//   deepseek-v3.1 deepseek3 with its thinking switch (<think> or </think> after <｜Assistant｜>)
//   glm4.5       [gMASK]<sop><|system|>\n...<|user|>\n...<|assistant|>\n<think></think>\n...
//   kimi-k2      <|im_system|>system<|im_middle|>...<|im_end|><|im_user|>user<|im_middle|>...
//   harmony      gpt-oss: <|start|>role<|message|>...<|end|>, answers on the final channel
// Detection order: <|im_middle|> (kimi-k2), <|im_start|> (qwen3 when the source mentions
// <think> or enable_thinking), <|start|>...<|message|> (harmony), [gMASK]<sop> (glm4.5),
// <|start_header_id|>, <｜User｜> (v3.1 when it has a thinking switch), [INST] (v2 when the user
// turn opens with "' [INST] '", v1 when it closes with " [/INST]", v3 otherwise). A template that
// matches none, or no template at all, falls back to ChatML with a one-line warning (logged, and
// kept in warning()).
//
// The rendered text contains the BOS token's text where the family's template emits it (taken
// from the vocabulary in the metadata), so it must be encoded with parse_special = true and
// add_bos = false.
//
// Non-goals: tool calls, images, arbitrary Jinja. Thread-safety: immutable; Render is const.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/base/status.h"
#include "io/metadata.h"

namespace sluice {

class Tokenizer;

enum class ChatRole { kSystem, kUser, kAssistant };

struct ChatMessage {
  ChatRole role = ChatRole::kUser;
  std::string content;
};

struct RenderOptions {
  // End with the opening of the assistant's turn, so the model continues as the assistant.
  bool add_generation_prompt = true;
  // Qwen3: false pre-fills an empty think block so the model answers without reasoning
  // (GLM-4.5: /nothink; DeepSeek-V3.1: </think>; gpt-oss: low reasoning effort).
  bool enable_thinking = true;
  // gpt-oss's "Current date" (YYYY-MM-DD); empty: today, UTC.
  std::string date = {};
};

enum class ChatFamily {
  kChatML,
  kQwen3,
  kMistralV1,
  kMistralV2,
  kMistralV3,
  kLlama3,
  kDeepSeek3,
  kDeepSeekR1,
  kDeepSeekV31,
  kGlm45,
  kKimiK2,
  kHarmony,
};

class ChatTemplate {
 public:
  // Detects the family from tokenizer.chat_template, or takes `override_name` when non-empty
  // (InvalidArgument naming it and listing Names() when unknown).
  // `template_file`, when non-empty, is a Jinja template file read and detected instead of the
  // metadata's (IoError naming it when unreadable; both given: InvalidArgument).
  static Result<ChatTemplate> FromMetadata(const Metadata& metadata,
                                           std::string_view override_name = "",
                                           const std::string& template_file = "");
  // Detection alone, for a template text (`source` names it in the warning).
  static ChatTemplate Detect(std::string_view template_text, std::string_view source = "");
  // The names --chat-template accepts (canonical names, then aliases).
  static std::vector<std::string> Names();

  ChatFamily family() const { return family_; }
  const std::string& name() const { return name_; }
  // Empty unless detection fell back to ChatML; then the one-line reason.
  const std::string& warning() const { return warning_; }

  std::string Render(std::span<const ChatMessage> messages, const RenderOptions& options) const;

  // Texts of the tokens that end an assistant turn in this family ("<|im_end|>").
  std::vector<std::string> EndOfTurnTexts() const;
  // The ids to stop generating at: the tokenizer's end-of-generation set plus this family's
  // end-of-turn tokens present in the vocabulary (harmony: without <|end|>). Sorted, unique.
  std::vector<int32_t> StopTokens(const Tokenizer& tokenizer) const;

 private:
  ChatFamily family_ = ChatFamily::kChatML;
  std::string name_ = "chatml";
  std::string warning_;
  std::string bos_text_;        // what the template's {{ bos_token }} prints
  std::string eos_text_;        // what the template's {{ eos_token }} prints
  std::string default_system_;  // ChatML: system prompt used when the conversation has none
  bool think_prefill_ = false;  // qwen3, deepseek-r1: the generation prompt opens "<think>\n"
};

// Renderers (tokenizer/chat_render.cc), one per family.
struct ChatRenderInput {
  std::span<const ChatMessage> messages;
  RenderOptions options;
  std::string_view bos_text, eos_text, default_system;
  bool think_prefill = false;
};
std::string RenderChatML(const ChatRenderInput& in);
std::string RenderQwen3(const ChatRenderInput& in);
std::string RenderMistralV1(const ChatRenderInput& in, bool spaced);
std::string RenderMistralV3(const ChatRenderInput& in);
std::string RenderLlama3(const ChatRenderInput& in);
std::string RenderDeepSeek(const ChatRenderInput& in, bool strip_reasoning);
// The MoE families (tokenizer/chat_render_moe.cc).
std::string RenderDeepSeekV31(const ChatRenderInput& in);
std::string RenderGlm45(const ChatRenderInput& in);
std::string RenderKimiK2(const ChatRenderInput& in);
std::string RenderHarmony(const ChatRenderInput& in);
// gpt-oss: the final channel's text of a reply (what a user reads), without the analysis.
std::string HarmonyFinal(std::string_view reply);

}  // namespace sluice
