#include "tokenizer/chat_template.h"

#include <algorithm>
#include <fstream>
#include <iterator>

#include "core/base/log.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

struct FamilyName {
  const char* name;
  ChatFamily family;
};

// Canonical names first (the name() of a template), aliases after.
constexpr FamilyName kFamilyNames[] = {
    {"chatml", ChatFamily::kChatML},
    {"qwen3", ChatFamily::kQwen3},
    {"mistral-v1", ChatFamily::kMistralV1},
    {"mistral-v3", ChatFamily::kMistralV3},
    {"llama3", ChatFamily::kLlama3},
    {"deepseek3", ChatFamily::kDeepSeek3},
    {"deepseek-r1", ChatFamily::kDeepSeekR1},
    {"qwen2", ChatFamily::kChatML},
    {"mistral", ChatFamily::kMistralV1},
    {"mixtral", ChatFamily::kMistralV1},
    {"llama-3", ChatFamily::kLlama3},
    {"deepseek", ChatFamily::kDeepSeek3},
    {"deepseek-v3", ChatFamily::kDeepSeek3},
    {"deepseek-v3.1", ChatFamily::kDeepSeekV31},
    {"glm4.5", ChatFamily::kGlm45},
    {"kimi-k2", ChatFamily::kKimiK2},
    {"harmony", ChatFamily::kHarmony},
    {"gpt-oss", ChatFamily::kHarmony},
    {"glm4", ChatFamily::kGlm45},
    {"kimi", ChatFamily::kKimiK2},
};

const char* CanonicalName(ChatFamily family) {
  for (const FamilyName& f : kFamilyNames) {
    if (f.family == family) return f.name;
  }
  return "chatml";
}

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// A ChatML template's built-in system prompt, as in Qwen2.5's
//   {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. ...<|im_end|>\n' }}
// i.e. a string literal that runs from "<|im_start|>system\n" to "<|im_end|>" with no Jinja
// expression inside. Empty when the template has none.
std::string DefaultChatMLSystem(std::string_view text) {
  static constexpr std::string_view kOpen = "<|im_start|>system";
  for (size_t pos = text.find(kOpen); pos != std::string_view::npos;
       pos = text.find(kOpen, pos + 1)) {
    std::string_view rest = text.substr(pos + kOpen.size());
    if (rest.substr(0, 2) == "\\n") {
      rest.remove_prefix(2);
    } else if (rest.substr(0, 1) == "\n") {
      rest.remove_prefix(1);
    } else {
      continue;
    }
    const size_t end = rest.find("<|im_end|>");
    if (end == std::string_view::npos || end == 0) continue;
    const std::string_view literal = rest.substr(0, end);
    if (literal.find_first_of("'\"{}") != std::string_view::npos) continue;
    return std::string(literal);
  }
  return "";
}

std::string TokenText(const Metadata& metadata, std::string_view id_key) {
  const MetaValue* tokens = metadata.Find("tokenizer.ggml.tokens");
  Result<uint64_t> id = metadata.GetUintOr(id_key, UINT64_MAX);
  if (tokens == nullptr || !id.ok() || *id >= tokens->strings.size()) return "";
  return tokens->strings[*id];
}

}  // namespace

std::vector<std::string> ChatTemplate::Names() {
  std::vector<std::string> names;
  for (const FamilyName& f : kFamilyNames) names.push_back(f.name);
  return names;
}

ChatTemplate ChatTemplate::Detect(std::string_view text, std::string_view source) {
  ChatTemplate t;
  if (Contains(text, "<|im_middle|>")) {
    t.family_ = ChatFamily::kKimiK2;
  } else if (Contains(text, "<|im_start|>")) {
    const bool thinking = Contains(text, "<think>") || Contains(text, "enable_thinking");
    t.family_ = thinking ? ChatFamily::kQwen3 : ChatFamily::kChatML;
    if (!thinking) t.default_system_ = DefaultChatMLSystem(text);
    // Templates that open the reasoning themselves end a literal with "<think>\n": Qwen3.5's
    // {{- '<think>\n' }} (unless thinking is off), Qwen3 Thinking-2507's
    // {{- '<|im_start|>assistant\n<think>\n' }}. Plain Qwen3 only writes "<think>\n' +".
    t.think_prefill_ = thinking && Contains(text, "<think>\\n' }}");
  } else if (Contains(text, "<|start|>") && Contains(text, "<|message|>")) {
    t.family_ = ChatFamily::kHarmony;
  } else if (Contains(text, "[gMASK]<sop>")) {
    t.family_ = ChatFamily::kGlm45;
  } else if (Contains(text, "<|start_header_id|>")) {
    t.family_ = ChatFamily::kLlama3;
  } else if (Contains(text, "<｜User｜>")) {
    if (Contains(text, "thinking is defined") || Contains(text, "if thinking")) {
      t.family_ = ChatFamily::kDeepSeekV31;
    } else {
      t.family_ = Contains(text, "</think>") ? ChatFamily::kDeepSeekR1 : ChatFamily::kDeepSeek3;
      t.think_prefill_ = Contains(text, "<｜Assistant｜><think>");
    }
  } else if (Contains(text, "[INST]")) {
    // v2 opens the user turn with " [INST] ", v1 closes it with " [/INST]", v3 with "[/INST]".
    if (Contains(text, "' [INST] '") || Contains(text, "\" [INST] \"")) {
      t.family_ = ChatFamily::kMistralV2;
    } else if (Contains(text, " [/INST]")) {
      t.family_ = ChatFamily::kMistralV1;
    } else {
      t.family_ = ChatFamily::kMistralV3;
    }
  } else {
    t.family_ = ChatFamily::kChatML;
    const std::string where = source.empty() ? std::string() : std::string(source) + ": ";
    t.warning_ = text.empty() ? where + "no tokenizer.chat_template; using ChatML"
                              : where +
                                    "tokenizer.chat_template not recognised; using ChatML (pick "
                                    "another with --chat-template)";
  }
  t.name_ = CanonicalName(t.family_);
  return t;
}

Result<ChatTemplate> ChatTemplate::FromMetadata(const Metadata& metadata,
                                                std::string_view override_name,
                                                const std::string& template_file) {
  ChatTemplate t;
  if (!template_file.empty()) {
    if (!override_name.empty()) {
      return InvalidArgument("give a chat template by name or by file, not both ('", override_name,
                             "' and ", template_file, ")");
    }
    std::ifstream in(template_file, std::ios::binary);
    if (!in) return IoError(template_file, ": cannot open the chat template file");
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    if (in.bad()) return IoError(template_file, ": read failed");
    t = Detect(text, template_file);
    if (!t.warning_.empty()) {
      LOG(WARNING) << t.warning_;
    }
  } else if (!override_name.empty()) {
    const FamilyName* found = nullptr;
    for (const FamilyName& f : kFamilyNames) {
      if (override_name == f.name) found = &f;
    }
    if (found == nullptr) {
      std::string names;
      for (const std::string& n : Names()) names += (names.empty() ? "" : ", ") + n;
      return InvalidArgument("unknown chat template '", override_name, "' (known: ", names, ")");
    }
    t.family_ = found->family;
    t.name_ = CanonicalName(found->family);
    t.think_prefill_ = found->family == ChatFamily::kDeepSeekR1;
    if (found->family == ChatFamily::kChatML) {
      ASSIGN_OR_RETURN(std::string text, metadata.GetStringOr("tokenizer.chat_template", ""));
      t.default_system_ = DefaultChatMLSystem(text);
    }
  } else {
    ASSIGN_OR_RETURN(std::string text, metadata.GetStringOr("tokenizer.chat_template", ""));
    t = Detect(text, metadata.source());
    if (!t.warning_.empty()) {
      LOG(WARNING) << t.warning_;
    }
  }
  t.bos_text_ = TokenText(metadata, "tokenizer.ggml.bos_token_id");
  t.eos_text_ = TokenText(metadata, "tokenizer.ggml.eos_token_id");
  return t;
}

std::string ChatTemplate::Render(std::span<const ChatMessage> messages,
                                 const RenderOptions& options) const {
  const ChatRenderInput in{messages,  options,         bos_text_,
                           eos_text_, default_system_, think_prefill_};
  switch (family_) {
    case ChatFamily::kChatML:
      return RenderChatML(in);
    case ChatFamily::kQwen3:
      return RenderQwen3(in);
    case ChatFamily::kMistralV1:
      return RenderMistralV1(in, /*spaced=*/false);
    case ChatFamily::kMistralV2:
      return RenderMistralV1(in, /*spaced=*/true);
    case ChatFamily::kMistralV3:
      return RenderMistralV3(in);
    case ChatFamily::kLlama3:
      return RenderLlama3(in);
    case ChatFamily::kDeepSeek3:
      return RenderDeepSeek(in, /*strip_reasoning=*/false);
    case ChatFamily::kDeepSeekR1:
      return RenderDeepSeek(in, /*strip_reasoning=*/true);
    case ChatFamily::kDeepSeekV31:
      return RenderDeepSeekV31(in);
    case ChatFamily::kGlm45:
      return RenderGlm45(in);
    case ChatFamily::kKimiK2:
      return RenderKimiK2(in);
    case ChatFamily::kHarmony:
      return RenderHarmony(in);
  }
  return RenderChatML(in);
}

std::vector<std::string> ChatTemplate::EndOfTurnTexts() const {
  switch (family_) {
    case ChatFamily::kChatML:
    case ChatFamily::kQwen3:
      return {"<|im_end|>", "<|endoftext|>"};
    case ChatFamily::kLlama3:
      return {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"};
    case ChatFamily::kDeepSeek3:
    case ChatFamily::kDeepSeekR1:
    case ChatFamily::kDeepSeekV31:
      return {"<｜end▁of▁sentence｜>"};
    case ChatFamily::kGlm45:  // the model ends its turn by opening the next one
      return {"<|user|>", "<|observation|>", "<|endoftext|>"};
    case ChatFamily::kKimiK2:
      return {"<|im_end|>"};
    case ChatFamily::kHarmony:  // <|end|> closes the analysis message, not the reply
      return {"<|return|>", "<|call|>"};
    case ChatFamily::kMistralV1:
    case ChatFamily::kMistralV2:
    case ChatFamily::kMistralV3:
      return {eos_text_.empty() ? "</s>" : eos_text_};
  }
  return {};
}

std::vector<int32_t> ChatTemplate::StopTokens(const Tokenizer& tokenizer) const {
  std::vector<int32_t> ids = tokenizer.end_of_generation_ids();
  if (family_ == ChatFamily::kHarmony) {
    // <|end|> ends a turn elsewhere (Phi-3), but in harmony it closes the analysis message and
    // the reply goes on with the final one.
    const int32_t end = tokenizer.FindToken("<|end|>");
    std::erase(ids, end);
  }
  for (const std::string& text : EndOfTurnTexts()) {
    const int32_t id = tokenizer.FindToken(text);
    if (id >= 0) ids.push_back(id);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

}  // namespace sluice
