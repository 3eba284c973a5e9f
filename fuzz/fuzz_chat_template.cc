// Chat template detection and rendering on arbitrary template text and message contents.
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t cut = input.find('\0');
  const std::string template_text = input.substr(0, cut);
  const std::string content = cut == std::string::npos ? std::string() : input.substr(cut + 1);
  sluice::ChatTemplate t = sluice::ChatTemplate::Detect(template_text, "fuzz");
  std::vector<sluice::ChatMessage> messages = {
      {.role = sluice::ChatRole::kSystem, .content = content},
      {.role = sluice::ChatRole::kUser, .content = content},
      {.role = sluice::ChatRole::kAssistant, .content = content},
      {.role = sluice::ChatRole::kUser, .content = template_text},
  };
  for (bool think : {true, false}) {
    (void)t.Render(messages, {.add_generation_prompt = true, .enable_thinking = think});
  }
  return 0;
}
