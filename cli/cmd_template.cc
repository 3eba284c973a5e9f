// `sluice template -m MODEL --messages conv.json`: prints the exact prompt a conversation renders
// to with the model's chat template (the family detected from its tokenizer.chat_template, or
// --chat-template NAME / --chat-template-file FILE), the generation prompt appended, so users
// can check it against what the model expects.
//   conv.json: an OpenAI-style JSON list of {"role": "system"|"user"|"assistant", "content": "..."}
#include <gflags/gflags.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/command.h"
#include "io/model_open.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

DEFINE_string(messages, "",
              "template: a JSON file (- for stdin) holding the conversation, an OpenAI-style list "
              "of {\"role\": \"system\"|\"user\"|\"assistant\", \"content\": TEXT}.");
DEFINE_bool(no_generation_prompt, false,
            "template: do not append the opening of the assistant's turn.");
DEFINE_bool(show_tokens, false, "template: also print the token ids the prompt encodes to.");
DECLARE_string(model);
DECLARE_string(chat_template);
DECLARE_string(chat_template_file);
DECLARE_bool(no_think);

namespace sluice::cli {
namespace {

Result<std::vector<ChatMessage>> ReadMessages(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), {});
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) return IoError(path, ": cannot open");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgument(path, ": not valid JSON");
  if (!j.is_array()) return InvalidArgument(path, ": expected a JSON list of messages");
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& m = j[i];
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string()) {
      return InvalidArgument(path, ": message ", i,
                             " must be an object with string \"role\" and \"content\"");
    }
    const std::string role = m["role"].get<std::string>();
    ChatMessage msg;
    if (role == "system" || role == "developer") {
      msg.role = ChatRole::kSystem;
    } else if (role == "user") {
      msg.role = ChatRole::kUser;
    } else if (role == "assistant") {
      msg.role = ChatRole::kAssistant;
    } else {
      return InvalidArgument(path, ": message ", i, " has role '", role,
                             "' (expected system, user or assistant)");
    }
    msg.content = m["content"].get<std::string>();
    messages.push_back(std::move(msg));
  }
  return messages;
}

int RunTemplate(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("template takes no positional arguments (got '" + args[0] + "')");
  if (FLAGS_model.empty()) return Fail("template needs -m MODEL (a GGUF or a .sluice archive)");
  if (FLAGS_messages.empty()) return Fail("template needs --messages FILE.json (- for stdin)");
  Result<std::vector<ChatMessage>> messages = ReadMessages(FLAGS_messages);
  if (!messages.ok()) return Fail(messages.status().ToString());
  Result<std::unique_ptr<ModelFile>> model = OpenModelFile(FLAGS_model);
  if (!model.ok()) return Fail(model.status().ToString());
  Result<ChatTemplate> chat_template = ChatTemplate::FromMetadata(
      (*model)->metadata(), FLAGS_chat_template, FLAGS_chat_template_file);
  if (!chat_template.ok()) return Fail(chat_template.status().ToString());
  const std::string prompt = chat_template->Render(
      *messages, RenderOptions{.add_generation_prompt = !FLAGS_no_generation_prompt,
                               .enable_thinking = !FLAGS_no_think});
  std::fprintf(stderr, "sluice: template: %s\n", chat_template->name().c_str());
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  if (FLAGS_show_tokens) {
    Result<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromMetadata((*model)->metadata());
    if (!tokenizer.ok()) return Fail(tokenizer.status().ToString());
    const std::vector<int32_t> ids =
        (*tokenizer)->Encode(prompt, {.add_bos = false, .parse_special = true});
    std::string line = "\n";
    for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
    line += "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : Fail("writing stdout failed");
}

const CommandRegistration kTemplate({
    .name = "template",
    .summary = "print the exact prompt a conversation renders to with the model's chat template",
    .usage = "sluice template -m MODEL --messages CONV.json [--chat-template NAME | "
             "--chat-template-file FILE] [--no-think] [--no-generation-prompt] [--show-tokens]",
    .description =
        "Renders an OpenAI-style conversation (a JSON list of {\"role\", \"content\"}) with the\n"
        "model's chat template, as chat, run and serve do, and prints the prompt text exactly,\n"
        "ending with the opening of the assistant's turn (unless --no-generation-prompt). The\n"
        "family is detected from the model's tokenizer.chat_template (printed on stderr);\n"
        "--chat-template names one, --chat-template-file detects it from a Jinja file.\n"
        "--no-think renders the family's thinking switch off. --show-tokens adds the token ids.",
    .flags = {"model", "messages", "chat_template", "chat_template_file", "no_think",
              "no_generation_prompt", "show_tokens"},
    .run = RunTemplate,
});

}  // namespace
}  // namespace sluice::cli
