// Chat templates: detection from template sources, and each family rendered for one fixed
// conversation, compared with the exact text written out by hand from the family's published
// format (the model cards and tokenizer_config.json templates).
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include "tests/tokenizer/test_vocab.h"
#include "tokenizer/tokenizer.h"

namespace sluice {
namespace {

// Excerpts of real templates: enough of each to carry the markers detection looks for.
constexpr const char* kQwen25Template =
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] "
    "+ '<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba "
    "Cloud. You are a helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- for message in messages "
    "%}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- "
    "endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
constexpr const char* kQwen3Template =
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' }}{%- if '</think>' "
    "in content %}{%- set content = content.split('</think>')[-1] %}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is "
    "defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- "
    "endif %}";
constexpr const char* kMixtralTemplate =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
    "message['content'] + eos_token}}{% endif %}{% endfor %}";
constexpr const char* kMistralV2Template =
    "{{- bos_token }}{%- for message in loop_messages %}{%- if message['role'] == 'user' %}{%- if "
    "loop.first and system_message is defined %}{{- ' [INST] ' + system_message + '\\n\\n' + "
    "message['content'] + ' [/INST]' }}{%- else %}{{- ' [INST] ' + message['content'] + ' [/INST]' "
    "}}{%- endif %}{%- elif message['role'] == 'assistant' %}{{- ' ' + message['content'] + "
    "eos_token}}{%- endif %}{%- endfor %}";
constexpr const char* kMistralV3Template =
    "{{- bos_token }}{%- for message in loop_messages %}{%- if message[\"role\"] == \"user\" %}{{- "
    "\"[INST] \" + message[\"content\"] + \"[/INST]\" }}{%- elif message[\"role\"] == "
    "\"assistant\" "
    "%}{{- \" \" + message[\"content\"]|trim + eos_token}}{%- endif %}{%- endfor %}";
constexpr const char* kLlama3Template =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | "
    "trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% "
    "endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
constexpr const char* kDeepSeekV3Template =
    "{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == "
    "'user' %}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == "
    "'assistant' %}{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- endif "
    "%}{%- endfor %}{% if add_generation_prompt %}{{'<｜Assistant｜>'}}{% endif %}";
constexpr const char* kDeepSeekR1Template =
    "{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}{%- if message['role'] == "
    "'user' %}{{'<｜User｜>' + message['content']}}{%- endif %}{%- if message['role'] == "
    "'assistant' %}{% set content = message['content'] %}{% if '</think>' in content %}{% set "
    "content = content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + "
    "'<｜end▁of▁sentence｜>'}}{%- endif %}{%- endfor %}{% if add_generation_prompt %}"
    "{{'<｜Assistant｜><think>\\n'}}{% endif %}";

Metadata MetaWith(const std::string& chat_template, const std::string& bos,
                  const std::string& eos) {
  Metadata meta("chat.gguf");
  meta.SetStringArray("tokenizer.ggml.tokens", {"<unk>", bos, eos});
  meta.SetU32("tokenizer.ggml.bos_token_id", 1);
  meta.SetU32("tokenizer.ggml.eos_token_id", 2);
  if (!chat_template.empty()) meta.SetString("tokenizer.chat_template", chat_template);
  return meta;
}

ChatTemplate FromTemplate(const std::string& text, const std::string& bos = "<s>",
                          const std::string& eos = "</s>") {
  Result<ChatTemplate> t = ChatTemplate::FromMetadata(MetaWith(text, bos, eos));
  EXPECT_TRUE(t.ok()) << t.status().ToString();
  return t.ok() ? *t : ChatTemplate();
}

// The fixed conversation.
const std::vector<ChatMessage> kConversation = {
    {ChatRole::kSystem, "You are terse."},
    {ChatRole::kUser, "Hi"},
    {ChatRole::kAssistant, "Hello!"},
    {ChatRole::kUser, "What is 2+2?"},
};

TEST(ChatTemplateTest, ChatML) {
  const ChatTemplate t = FromTemplate(kQwen25Template);
  EXPECT_EQ(t.family(), ChatFamily::kChatML);
  EXPECT_TRUE(t.warning().empty());
  EXPECT_EQ(t.Render(kConversation, {}),
            "<|im_start|>system\nYou are terse.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  // Without a system message, Qwen2.5's template supplies its own.
  const std::vector<ChatMessage> bare = {{ChatRole::kUser, "Hi"}};
  EXPECT_EQ(t.Render(bare, {}),
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
            "assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.Render(bare, {.add_generation_prompt = false}).find("<|im_start|>assistant"),
            std::string::npos);
}

TEST(ChatTemplateTest, Qwen3) {
  const ChatTemplate t = FromTemplate(kQwen3Template);
  EXPECT_EQ(t.family(), ChatFamily::kQwen3);
  std::vector<ChatMessage> conversation = kConversation;
  conversation[2].content = "<think>\nThe user greets me.\n</think>\n\nHello!";
  const std::string history =
      "<|im_start|>system\nYou are terse.<|im_end|>\n"
      "<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\nHello!<|im_end|>\n"  // reasoning of past turns is dropped
      "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
      "<|im_start|>assistant\n";
  EXPECT_EQ(t.Render(conversation, {}), history);
  EXPECT_EQ(t.Render(conversation, {.enable_thinking = false}),
            history + "<think>\n\n</think>\n\n");
  // An answer after the last user message keeps its reasoning.
  const std::vector<ChatMessage> last = {{ChatRole::kUser, "Hi"},
                                         {ChatRole::kAssistant, "<think>\nR\n</think>\n\nHello!"}};
  EXPECT_EQ(t.Render(last, {.add_generation_prompt = false}),
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\n<think>\nR\n</think>\n\nHello!<|im_end|>\n");
}

TEST(ChatTemplateTest, Qwen35PrefillsThinking) {
  // Qwen3.5's generation prompt: an empty think block when thinking is off, else "<think>\n".
  const std::string text = std::string(kQwen3Template) +
                           "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if "
                           "enable_thinking is defined and enable_thinking is false %}{{- "
                           "'<think>\\n\\n</think>\\n\\n' }}{%- else %}{{- '<think>\\n' }}{%- "
                           "endif %}{%- endif %}";
  const ChatTemplate t = FromTemplate(text);
  EXPECT_EQ(t.family(), ChatFamily::kQwen3);
  const std::vector<ChatMessage> one = {{ChatRole::kUser, "Hi"}};
  EXPECT_EQ(t.Render(one, {}), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n");
  EXPECT_EQ(t.Render(one, {.enable_thinking = false}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
  // Qwen3 Thinking-2507 writes the opening into the generation prompt literal.
  const ChatTemplate thinking_2507 = FromTemplate(
      "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' }}{%- endfor %}{%- "
      "if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}");
  EXPECT_EQ(thinking_2507.family(), ChatFamily::kQwen3);
  EXPECT_EQ(thinking_2507.Render(one, {}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n");
  // Plain Qwen3 (kQwen3Template) does not pre-fill.
  EXPECT_EQ(FromTemplate(kQwen3Template).Render(one, {}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
}

// Edge cases, expected strings from rendering Qwen3-8B's published template with Jinja2
// (trim_blocks, lstrip_blocks, as transformers does).
TEST(ChatTemplateTest, Qwen3EdgeCases) {
  const ChatTemplate t = FromTemplate(kQwen3Template);
  const std::vector<ChatMessage> later_system = {{ChatRole::kUser, "Hi"},
                                                 {ChatRole::kAssistant, "plain"},
                                                 {ChatRole::kSystem, "later sys"},
                                                 {ChatRole::kUser, "x"}};
  EXPECT_EQ(t.Render(later_system, {}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nplain<|im_end|>\n"
            "<|im_start|>system\nlater sys<|im_end|>\n<|im_start|>user\nx<|im_end|>\n"
            "<|im_start|>assistant\n");
  const std::vector<ChatMessage> nested = {
      {ChatRole::kUser, "Hi"}, {ChatRole::kAssistant, "\n\n<think>a</think>b</think>\n\nc"}};
  EXPECT_EQ(t.Render(nested, {.add_generation_prompt = false}),
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\na\n</think>\n\nc"
            "<|im_end|>\n");
  const std::vector<ChatMessage> no_user = {{ChatRole::kAssistant, "<think>x</think>y"}};
  EXPECT_EQ(t.Render(no_user, {}), "<|im_start|>assistant\ny<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplateTest, MistralV1) {
  const ChatTemplate t = FromTemplate(kMixtralTemplate);
  EXPECT_EQ(t.family(), ChatFamily::kMistralV1);
  EXPECT_EQ(t.Render(kConversation, {}),
            "<s>[INST] You are terse.\n\nHi [/INST]Hello!</s>[INST] What is 2+2? [/INST]");
}

TEST(ChatTemplateTest, MistralV2) {
  const ChatTemplate t = FromTemplate(kMistralV2Template);
  EXPECT_EQ(t.family(), ChatFamily::kMistralV2);
  EXPECT_EQ(t.Render(kConversation, {}),
            "<s> [INST] You are terse.\n\nHi [/INST] Hello!</s> [INST] What is 2+2? [/INST]");
}

TEST(ChatTemplateTest, MistralV3) {
  const ChatTemplate t = FromTemplate(kMistralV3Template);
  EXPECT_EQ(t.family(), ChatFamily::kMistralV3);
  EXPECT_EQ(t.Render(kConversation, {}),
            "<s>[INST] Hi[/INST] Hello!</s>[INST] You are terse.\n\nWhat is 2+2?[/INST]");
}

TEST(ChatTemplateTest, Llama3) {
  const ChatTemplate t = FromTemplate(kLlama3Template, "<|begin_of_text|>", "<|eot_id|>");
  EXPECT_EQ(t.family(), ChatFamily::kLlama3);
  EXPECT_EQ(t.Render(kConversation, {}),
            "<|begin_of_text|>"
            "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplateTest, DeepSeekV3) {
  const ChatTemplate t =
      FromTemplate(kDeepSeekV3Template, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  EXPECT_EQ(t.family(), ChatFamily::kDeepSeek3);
  EXPECT_EQ(t.Render(kConversation, {}),
            "<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜>Hello!"
            "<｜end▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜>");
}

TEST(ChatTemplateTest, DeepSeekR1) {
  const ChatTemplate t =
      FromTemplate(kDeepSeekR1Template, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  EXPECT_EQ(t.family(), ChatFamily::kDeepSeekR1);
  std::vector<ChatMessage> conversation = kConversation;
  conversation[2].content = "<think>\nR\n</think>\n\nHello!";
  EXPECT_EQ(t.Render(conversation, {}),
            "<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜>\n\nHello!"
            "<｜end▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜><think>\n");
}

TEST(ChatTemplateTest, UnknownTemplateFallsBackToChatMLWithAWarning) {
  ::testing::internal::CaptureStderr();
  const ChatTemplate t = FromTemplate("{% for m in messages %}{{ m.content }}{% endfor %}");
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(t.family(), ChatFamily::kChatML);
  EXPECT_NE(t.warning().find("not recognised; using ChatML"), std::string::npos) << t.warning();
  EXPECT_NE(err.find("not recognised; using ChatML"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "one line: " << err;
  EXPECT_EQ(t.Render(kConversation, {}).substr(0, 22), "<|im_start|>system\nYou");

  const ChatTemplate none = FromTemplate("");
  EXPECT_EQ(none.family(), ChatFamily::kChatML);
  EXPECT_NE(none.warning().find("no tokenizer.chat_template"), std::string::npos);
}

TEST(ChatTemplateTest, OverrideByName) {
  Result<ChatTemplate> t =
      ChatTemplate::FromMetadata(MetaWith(kQwen25Template, "<s>", "</s>"), "mistral");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->family(), ChatFamily::kMistralV1);
  EXPECT_EQ(t->name(), "mistral-v1");
  Result<ChatTemplate> bad =
      ChatTemplate::FromMetadata(MetaWith(kQwen25Template, "<s>", "</s>"), "vicuna");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("'vicuna'"), std::string::npos);
  EXPECT_NE(bad.status().message().find("qwen3"), std::string::npos) << "lists the names";
}

TEST(ChatTemplateTest, StopTokensJoinTheTokenizerAndTheFamily) {
  // A vocabulary whose eos is <|endoftext|> and whose turn end is <|im_end|>.
  Metadata meta = testing_vocab::MakeBpeMetadata({.control = {"<|endoftext|>", "<|im_end|>"}});
  meta.SetString("tokenizer.chat_template", kQwen3Template);
  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::FromMetadata(meta);
  ASSERT_TRUE(tok.ok());
  Result<ChatTemplate> t = ChatTemplate::FromMetadata(meta);
  ASSERT_TRUE(t.ok());
  const std::vector<int32_t> stops = t->StopTokens(**tok);
  EXPECT_EQ(stops, (std::vector<int32_t>{(*tok)->FindToken("<|endoftext|>"),
                                         (*tok)->FindToken("<|im_end|>")}));
}

TEST(ChatTemplateTest, RenderedPromptTokenizesWithSpecialTokens) {
  Metadata meta = testing_vocab::MakeBpeMetadata({.control = {"<|im_start|>", "<|im_end|>"}});
  Result<std::unique_ptr<Tokenizer>> tok = Tokenizer::FromMetadata(meta);
  ASSERT_TRUE(tok.ok());
  const ChatTemplate t = FromTemplate(kQwen25Template);
  const std::vector<ChatMessage> one = {{ChatRole::kUser, "Hi"}};
  const std::vector<int32_t> ids = (*tok)->Encode(t.Render(one, {}), {.parse_special = true});
  const int32_t start = (*tok)->FindToken("<|im_start|>");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), start), 3);  // system, user, assistant
  EXPECT_EQ(ids.front(), start);
}

// The MoE families. Template excerpts carry the markers detection looks for; the expected
// prompts are written out by hand from each family's published template.
constexpr const char* kGlm45Template =
    "[gMASK]<sop>{%- for m in messages %}{%- if m.role == 'user' -%}<|user|>\n{{ m.content }}"
    "{{- '/nothink' if (enable_thinking is defined and not enable_thinking) else '' -}}{%- elif "
    "m.role == 'assistant' -%}<|assistant|>{{- '\n<think></think>' }}{%- endif -%}{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}";
constexpr const char* kKimiK2Template =
    "{%- for message in messages -%}{%- if message['role'] == 'user' -%}<|im_user|>user"
    "<|im_middle|>{%- endif -%}{{ message['content'] }}<|im_end|>{%- endfor -%}{%- if "
    "add_generation_prompt -%}<|im_assistant|>assistant<|im_middle|>{%- endif -%}";
constexpr const char* kGptOssTemplate =
    "{{- \"<|start|>system<|message|>\" }}{{- \"You are ChatGPT, a large language model trained "
    "by OpenAI.\\n\" }}{%- if add_generation_prompt -%}<|start|>assistant{%- endif -%}";
constexpr const char* kDeepSeekV31Template =
    "{{ bos_token }}{%- for message in messages %}{%- if message['role'] == 'user' %}{{'<｜User｜>'"
    " + message['content']}}{%- endif %}{%- endfor %}{% if add_generation_prompt and thinking is "
    "defined and thinking %}{{'<｜Assistant｜><think>'}}{% elif add_generation_prompt %}"
    "{{'<｜Assistant｜></think>'}}{% endif %}";

TEST(ChatTemplateTest, MoeFamiliesAreDetected) {
  EXPECT_EQ(FromTemplate(kGlm45Template).name(), "glm4.5");
  EXPECT_EQ(FromTemplate(kKimiK2Template).name(), "kimi-k2");
  EXPECT_EQ(FromTemplate(kGptOssTemplate).name(), "harmony");
  EXPECT_EQ(FromTemplate(kDeepSeekV31Template, "<｜begin▁of▁sentence｜>").name(), "deepseek-v3.1");
  EXPECT_EQ(FromTemplate(kDeepSeekR1Template).name(), "deepseek-r1");  // unchanged
}

TEST(ChatTemplateTest, Glm45) {
  const ChatTemplate t = FromTemplate(kGlm45Template);
  const std::vector<ChatMessage> conv = {{ChatRole::kSystem, "You are terse."},
                                         {ChatRole::kUser, "Hi"},
                                         {ChatRole::kAssistant, "<think>greet</think>\nHello!"},
                                         {ChatRole::kUser, "What is 2+2?"}};
  EXPECT_EQ(t.Render(conv, {}),
            "[gMASK]<sop><|system|>\nYou are terse.<|user|>\nHi<|assistant|>\n<think></think>\n"
            "Hello!<|user|>\nWhat is 2+2?<|assistant|>");
  EXPECT_EQ(t.Render(conv, {.enable_thinking = false}),
            "[gMASK]<sop><|system|>\nYou are terse.<|user|>\nHi/nothink<|assistant|>\n"
            "<think></think>\nHello!<|user|>\nWhat is 2+2?/nothink<|assistant|>\n<think></think>");
}

TEST(ChatTemplateTest, KimiK2) {
  const ChatTemplate t = FromTemplate(kKimiK2Template);
  EXPECT_EQ(t.Render(kConversation, {}),
            "<|im_system|>system<|im_middle|>You are terse.<|im_end|><|im_user|>user<|im_middle|>"
            "Hi<|im_end|><|im_assistant|>assistant<|im_middle|>Hello!<|im_end|><|im_user|>user"
            "<|im_middle|>What is 2+2?<|im_end|><|im_assistant|>assistant<|im_middle|>");
  const std::vector<ChatMessage> bare = {{ChatRole::kUser, "Hi"}};
  EXPECT_EQ(t.Render(bare, {}),
            "<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot "
            "AI.<|im_end|><|im_user|>user<|im_middle|>Hi<|im_end|><|im_assistant|>assistant"
            "<|im_middle|>");
}

TEST(ChatTemplateTest, HarmonyForGptOss) {
  const ChatTemplate t = FromTemplate(kGptOssTemplate);
  const std::vector<ChatMessage> conv = {
      {ChatRole::kSystem, "You are terse."},
      {ChatRole::kUser, "Hi"},
      {ChatRole::kAssistant,
       "<|channel|>analysis<|message|>They greet.<|end|><|start|>assistant<|channel|>final"
       "<|message|>Hello!<|return|>"},
      {ChatRole::kUser, "What is 2+2?"}};
  const std::string system =
      "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
      "Knowledge cutoff: 2024-06\nCurrent date: 2026-12-07\n\nReasoning: medium\n\n# Valid "
      "channels: analysis, commentary, final. Channel must be included for every message.<|end|>";
  EXPECT_EQ(t.Render(conv, {.date = "2026-12-07"}),
            system +
                "<|start|>developer<|message|># Instructions\n\nYou are terse.\n\n<|end|>"
                "<|start|>user<|message|>Hi<|end|><|start|>assistant<|channel|>final<|message|>"
                "Hello!<|end|><|start|>user<|message|>What is 2+2?<|end|><|start|>assistant");
  const std::string low = t.Render(conv, {.enable_thinking = false, .date = "2026-12-07"});
  EXPECT_NE(low.find("Reasoning: low"), std::string::npos);
  EXPECT_EQ(HarmonyFinal("<|channel|>analysis<|message|>x<|end|><|start|>assistant<|channel|>"
                         "final<|message|>The answer.<|return|>"),
            "The answer.");
  EXPECT_EQ(t.EndOfTurnTexts(), (std::vector<std::string>{"<|return|>", "<|call|>"}));
}

TEST(ChatTemplateTest, DeepSeekV31ThinkingSwitch) {
  const ChatTemplate t =
      FromTemplate(kDeepSeekV31Template, "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>");
  const std::vector<ChatMessage> conv = {{ChatRole::kSystem, "You are terse."},
                                         {ChatRole::kUser, "Hi"},
                                         {ChatRole::kAssistant, "<think>x</think>Hello!"},
                                         {ChatRole::kUser, "What is 2+2?"}};
  const std::string history =
      "<｜begin▁of▁sentence｜>You are terse.<｜User｜>Hi<｜Assistant｜></think>Hello!"
      "<｜end▁of▁sentence｜><｜User｜>What is 2+2?<｜Assistant｜>";
  EXPECT_EQ(t.Render(conv, {}), history + "<think>");
  EXPECT_EQ(t.Render(conv, {.enable_thinking = false}), history + "</think>");
}

}  // namespace
}  // namespace sluice
