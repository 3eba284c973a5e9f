// The chat formats, rendered natively. Each function reproduces what its family's Jinja template
// (as published with the models' tokenizer_config.json) produces for system/user/assistant
// messages without tools; the format is spelled out above each one.
#include <string>

#include "tokenizer/chat_template.h"

namespace sluice {
namespace {

const char* RoleName(ChatRole role) {
  switch (role) {
    case ChatRole::kSystem:
      return "system";
    case ChatRole::kUser:
      return "user";
    case ChatRole::kAssistant:
      return "assistant";
  }
  return "user";
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view StripLeft(std::string_view s, std::string_view chars) {
  const size_t i = s.find_first_not_of(chars);
  return i == std::string_view::npos ? std::string_view() : s.substr(i);
}
std::string_view StripRight(std::string_view s, std::string_view chars) {
  const size_t i = s.find_last_not_of(chars);
  return i == std::string_view::npos ? std::string_view() : s.substr(0, i + 1);
}
// Jinja's |trim: whitespace off both ends.
std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Python's s.split(sep)[0] and s.split(sep)[-1].
std::string_view BeforeFirst(std::string_view s, std::string_view sep) {
  const size_t i = s.find(sep);
  return i == std::string_view::npos ? s : s.substr(0, i);
}
std::string_view AfterLast(std::string_view s, std::string_view sep) {
  const size_t i = s.rfind(sep);
  return i == std::string_view::npos ? s : s.substr(i + sep.size());
}

void AppendChatMLTurn(std::string_view role, std::string_view content, std::string* out) {
  out->append("<|im_start|>").append(role).append("\n").append(content).append("<|im_end|>\n");
}

}  // namespace

// <|im_start|>system\n{system}<|im_end|>\n          (or the template's default system prompt)
// <|im_start|>user\n{user}<|im_end|>\n
// <|im_start|>assistant\n{answer}<|im_end|>\n
// <|im_start|>assistant\n                              (generation prompt)
std::string RenderChatML(const ChatRenderInput& in) {
  std::string out;
  const bool has_system = !in.messages.empty() && in.messages[0].role == ChatRole::kSystem;
  if (!has_system && !in.default_system.empty()) {
    AppendChatMLTurn("system", in.default_system, &out);
  }
  for (const ChatMessage& m : in.messages) AppendChatMLTurn(RoleName(m.role), m.content, &out);
  if (in.options.add_generation_prompt) out.append("<|im_start|>assistant\n");
  return out;
}

// Qwen3: ChatML, except assistant turns. An answer "<think>\nR\n</think>\n\nA" keeps its
// reasoning R only when it comes after the last user message:
//   <|im_start|>assistant\n<think>\n{R}\n</think>\n\n{A}<|im_end|>\n
// and earlier answers become "<|im_start|>assistant\n{A}<|im_end|>\n". With enable_thinking
// false the generation prompt is followed by an empty think block "<think>\n\n</think>\n\n";
// templates that open the reasoning themselves (Qwen3.5) otherwise append "<think>\n".
std::string RenderQwen3(const ChatRenderInput& in) {
  std::string out;
  size_t last_query = in.messages.empty() ? 0 : in.messages.size() - 1;
  for (size_t i = in.messages.size(); i-- > 0;) {
    if (in.messages[i].role == ChatRole::kUser) {
      last_query = i;
      break;
    }
  }
  for (size_t i = 0; i < in.messages.size(); ++i) {
    const ChatMessage& m = in.messages[i];
    if (m.role != ChatRole::kAssistant) {
      AppendChatMLTurn(RoleName(m.role), m.content, &out);
      continue;
    }
    std::string_view content = m.content;
    std::string_view reasoning;
    if (content.find("</think>") != std::string_view::npos) {
      reasoning =
          StripLeft(AfterLast(StripRight(BeforeFirst(content, "</think>"), "\n"), "<think>"), "\n");
      content = StripLeft(AfterLast(content, "</think>"), "\n");
    }
    out.append("<|im_start|>assistant\n");
    const bool last = i + 1 == in.messages.size();
    if (i > last_query && (last || !reasoning.empty())) {
      out.append("<think>\n")
          .append(StripRight(StripLeft(reasoning, "\n"), "\n"))
          .append("\n</think>\n\n")
          .append(StripLeft(content, "\n"));
    } else {
      out.append(content);
    }
    out.append("<|im_end|>\n");
  }
  if (in.options.add_generation_prompt) {
    out.append("<|im_start|>assistant\n");
    if (!in.options.enable_thinking) {
      out.append("<think>\n\n</think>\n\n");
    } else if (in.think_prefill) {
      out.append("<think>\n");
    }
  }
  return out;
}

// Mistral v1, the first Mixtral 8x7B Instruct template:
//   {bos}[INST] {user} [/INST]{answer}{eos}[INST] {user} [/INST]
// and v2 (`spaced`), the template Mistral later published for v0.1/v0.2:
//   {bos} [INST] {user} [/INST] {answer}{eos} [INST] {user} [/INST]
// v1 has no system role; both put the system prompt in front of the first user message,
// separated by a blank line, as v2 does. The generation prompt is the closing [/INST] itself.
std::string RenderMistralV1(const ChatRenderInput& in, bool spaced) {
  std::string out(in.bos_text);
  std::string system;
  bool first_user = true;
  for (const ChatMessage& m : in.messages) {
    if (m.role == ChatRole::kSystem) {
      system += (system.empty() ? "" : "\n\n") + m.content;
    } else if (m.role == ChatRole::kUser) {
      out.append(spaced ? " [INST] " : "[INST] ");
      if (first_user && !system.empty()) out.append(system).append("\n\n");
      out.append(m.content).append(" [/INST]");
      first_user = false;
    } else {
      out.append(spaced ? " " : "").append(m.content).append(in.eos_text);
    }
  }
  return out;
}

// Mistral v3 (Mixtral 8x22B, Mistral 7B v0.3):
//   {bos}[INST] {user}[/INST] {answer|trim}{eos}[INST] {system}\n\n{last user}[/INST]
// The system prompt goes in front of the user message only when that message is the last one.
std::string RenderMistralV3(const ChatRenderInput& in) {
  std::string out(in.bos_text);
  std::string system;
  for (size_t i = 0; i < in.messages.size(); ++i) {
    const ChatMessage& m = in.messages[i];
    if (m.role == ChatRole::kSystem) {
      system += (system.empty() ? "" : "\n\n") + m.content;
    } else if (m.role == ChatRole::kUser) {
      out.append("[INST] ");
      if (i + 1 == in.messages.size() && !system.empty()) out.append(system).append("\n\n");
      out.append(m.content).append("[/INST]");
    } else {
      out.append(" ").append(Trim(m.content)).append(in.eos_text);
    }
  }
  return out;
}

// Llama 3: {bos}<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>...
// generation prompt <|start_header_id|>assistant<|end_header_id|>\n\n
std::string RenderLlama3(const ChatRenderInput& in) {
  std::string out(in.bos_text);
  for (const ChatMessage& m : in.messages) {
    out.append("<|start_header_id|>")
        .append(RoleName(m.role))
        .append("<|end_header_id|>\n\n")
        .append(Trim(m.content))
        .append("<|eot_id|>");
  }
  if (in.options.add_generation_prompt) {
    out.append("<|start_header_id|>assistant<|end_header_id|>\n\n");
  }
  return out;
}

// DeepSeek V3 / R1: {bos}{system prompts joined by \n\n}<｜User｜>{user}<｜Assistant｜>{answer}
// <｜end▁of▁sentence｜>... generation prompt <｜Assistant｜> (R1 templates that pre-fill reasoning:
// <｜Assistant｜><think>\n). R1 drops past reasoning: only the text after the last </think> stays.
std::string RenderDeepSeek(const ChatRenderInput& in, bool strip_reasoning) {
  std::string out(in.bos_text);
  std::string system;
  bool first_system = true;
  for (const ChatMessage& m : in.messages) {
    if (m.role != ChatRole::kSystem) continue;
    if (!first_system) system.append("\n\n");
    system.append(m.content);
    first_system = false;
  }
  out.append(system);
  for (const ChatMessage& m : in.messages) {
    if (m.role == ChatRole::kUser) {
      out.append("<｜User｜>").append(m.content);
    } else if (m.role == ChatRole::kAssistant) {
      std::string_view content = m.content;
      if (strip_reasoning) content = AfterLast(content, "</think>");
      out.append("<｜Assistant｜>").append(content).append(in.eos_text);
    }
  }
  if (in.options.add_generation_prompt) {
    out.append("<｜Assistant｜>");
    if (in.think_prefill) out.append("<think>\n");
  }
  return out;
}

}  // namespace sluice
