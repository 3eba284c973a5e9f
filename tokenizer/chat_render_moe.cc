// The chat formats of the 200B+ MoE families, rendered natively like tokenizer/chat_render.cc:
// what each family's published Jinja template produces for system/user/assistant messages
// without tools. The format is spelled out above each function.
#include <ctime>
#include <string>

#include "tokenizer/chat_template.h"

namespace sluice {
namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// The text after the last "</think>" (the answer without its reasoning), trimmed.
std::string_view Answer(std::string_view content) {
  const size_t i = content.rfind("</think>");
  return Trim(i == std::string_view::npos ? content : content.substr(i + 8));
}

}  // namespace

// GLM-4.5 / 4.6: [gMASK]<sop>, then per message
//   <|system|>\n{system}   <|user|>\n{user}[/nothink]   <|assistant|>\n<think></think>\n{answer}
// (past answers lose their reasoning: an empty think block and the trimmed answer); generation
// prompt <|assistant|>, followed by \n<think></think> when thinking is off (and every user
// message then ends "/nothink", as the template appends it).
std::string RenderGlm45(const ChatRenderInput& in) {
  std::string out = "[gMASK]<sop>";
  const bool no_think = !in.options.enable_thinking;
  for (const ChatMessage& m : in.messages) {
    switch (m.role) {
      case ChatRole::kSystem:
        out.append("<|system|>\n").append(m.content);
        break;
      case ChatRole::kUser:
        out.append("<|user|>\n").append(m.content);
        if (no_think && !std::string_view(m.content).ends_with("/nothink")) out.append("/nothink");
        break;
      case ChatRole::kAssistant: {
        out.append("<|assistant|>\n<think></think>");
        const std::string_view answer = Answer(m.content);
        if (!answer.empty()) out.append("\n").append(answer);
        break;
      }
    }
  }
  if (in.options.add_generation_prompt) {
    out.append("<|assistant|>");
    if (no_think) out.append("\n<think></think>");
  }
  return out;
}

// Kimi-K2: <|im_system|>system<|im_middle|>{system}<|im_end|> (the template's default "You are
// Kimi, an AI assistant created by Moonshot AI." when the conversation has none), then
//   <|im_user|>user<|im_middle|>{user}<|im_end|>
//   <|im_assistant|>assistant<|im_middle|>{answer}<|im_end|>
// generation prompt <|im_assistant|>assistant<|im_middle|>.
std::string RenderKimiK2(const ChatRenderInput& in) {
  std::string out;
  bool has_system = false;
  for (const ChatMessage& m : in.messages) has_system |= m.role == ChatRole::kSystem;
  if (!has_system) {
    out.append("<|im_system|>system<|im_middle|>")
        .append(in.default_system.empty() ? "You are Kimi, an AI assistant created by Moonshot AI."
                                          : in.default_system)
        .append("<|im_end|>");
  }
  for (const ChatMessage& m : in.messages) {
    switch (m.role) {
      case ChatRole::kSystem:
        out.append("<|im_system|>system<|im_middle|>");
        break;
      case ChatRole::kUser:
        out.append("<|im_user|>user<|im_middle|>");
        break;
      case ChatRole::kAssistant:
        out.append("<|im_assistant|>assistant<|im_middle|>");
        break;
    }
    out.append(m.content).append("<|im_end|>");
  }
  if (in.options.add_generation_prompt) out.append("<|im_assistant|>assistant<|im_middle|>");
  return out;
}

// gpt-oss (harmony):
//   <|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n
//   Knowledge cutoff: 2024-06\nCurrent date: {YYYY-MM-DD}\n\nReasoning: {medium|low}\n\n
//   # Valid channels: analysis, commentary, final. Channel must be included for every
//   message.<|end|>
//   <|start|>developer<|message|># Instructions\n\n{system}\n\n<|end|>      (when there is one)
//   <|start|>user<|message|>{user}<|end|>
//   <|start|>assistant<|channel|>final<|message|>{answer}<|end|>
// generation prompt <|start|>assistant. Thinking off asks for low reasoning effort (harmony has no
// switch). The date is today's (UTC) unless options.date says otherwise.
std::string RenderHarmony(const ChatRenderInput& in) {
  std::string date = in.options.date;
  if (date.empty()) {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[16];
    std::strftime(buf, sizeof(buf), "%Y-%m-%d", &tm);
    date = buf;
  }
  std::string out =
      "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
      "Knowledge cutoff: 2024-06\nCurrent date: " +
      date + "\n\nReasoning: " + (in.options.enable_thinking ? "medium" : "low") +
      "\n\n# Valid channels: analysis, commentary, final. Channel must be included for every "
      "message.<|end|>";
  std::string developer;
  for (const ChatMessage& m : in.messages) {
    if (m.role == ChatRole::kSystem) developer += (developer.empty() ? "" : "\n") + m.content;
  }
  if (!developer.empty()) {
    out.append("<|start|>developer<|message|># Instructions\n\n")
        .append(developer)
        .append("\n\n<|end|>");
  }
  for (const ChatMessage& m : in.messages) {
    if (m.role == ChatRole::kUser) {
      out.append("<|start|>user<|message|>").append(m.content).append("<|end|>");
    } else if (m.role == ChatRole::kAssistant) {
      out.append("<|start|>assistant<|channel|>final<|message|>")
          .append(HarmonyFinal(m.content))
          .append("<|end|>");
    }
  }
  if (in.options.add_generation_prompt) out.append("<|start|>assistant");
  return out;
}

// DeepSeek-V3.1: as DeepSeek-V3, with its thinking switch: past answers are
// <｜Assistant｜></think>{answer}<｜end▁of▁sentence｜>, the generation prompt ends <think> when
// thinking is on and </think> when it is off.
std::string RenderDeepSeekV31(const ChatRenderInput& in) {
  std::string out(in.bos_text);
  for (const ChatMessage& m : in.messages) {
    if (m.role == ChatRole::kSystem) out.append(m.content);
  }
  for (const ChatMessage& m : in.messages) {
    if (m.role == ChatRole::kUser) {
      out.append("<｜User｜>").append(m.content);
    } else if (m.role == ChatRole::kAssistant) {
      out.append("<｜Assistant｜></think>").append(Answer(m.content)).append(in.eos_text);
    }
  }
  if (in.options.add_generation_prompt) {
    out.append("<｜Assistant｜>").append(in.options.enable_thinking ? "<think>" : "</think>");
  }
  return out;
}

std::string HarmonyFinal(std::string_view reply) {
  static constexpr std::string_view kFinal = "<|channel|>final<|message|>";
  const size_t i = reply.rfind(kFinal);
  std::string_view text = i == std::string_view::npos ? reply : reply.substr(i + kFinal.size());
  for (std::string_view end : {"<|return|>", "<|end|>", "<|call|>"}) {
    const size_t e = text.find(end);
    if (e != std::string_view::npos) text = text.substr(0, e);
  }
  return std::string(text);
}

}  // namespace sluice
