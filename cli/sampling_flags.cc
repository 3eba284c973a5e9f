// Flags of the generating commands (chat, run): sampling, the conversation, and output length.
// Listed in the `flags` of each command that reads them (cli/cmd_chat.cc, cli/cmd_run.cc).
// Defaults follow what llama.cpp users already know, so a switch between the two is like for like.
#include <gflags/gflags.h>

DEFINE_double(temp, 0.8, "Sampling temperature. 0: greedy (always the most likely token).");
DEFINE_int32(top_k, 40, "Keep only the K most likely tokens before sampling. 0: off.");
DEFINE_double(top_p, 0.95, "Keep the smallest set of tokens whose probability sums to P. 1: off.");
DEFINE_double(min_p, 0.05,
              "Drop tokens less likely than MIN_P times the most likely token. 0: off.");
DEFINE_double(repeat_penalty, 1.0,
              "Divide the logits of tokens among the last 64 by this (1: off; 1.1 is mild).");
DEFINE_int64(seed, -1, "Sampling seed. -1: a new seed each run (printed with --verbose).");
DEFINE_string(system, "", "System message at the start of the conversation.");
DEFINE_string(chat_template, "",
              "Chat template: chatml, qwen3, mistral-v1, mistral-v3, llama3, deepseek3, "
              "deepseek-r1, deepseek-v3.1, glm4.5, kimi-k2 or harmony (gpt-oss). Empty: detected "
              "from the model's tokenizer.chat_template (ChatML with a warning when "
              "unrecognised).");
DEFINE_string(chat_template_file, "",
              "A Jinja chat template file to use instead of the model's: its family is detected "
              "from it as from the model's own (see --chat-template for the families).");
DEFINE_bool(no_think, false,
            "Turn thinking off: Qwen3/3.5 (an empty <think></think> block), GLM-4.5 (/nothink), "
            "DeepSeek-V3.1 (</think>), gpt-oss (low reasoning effort).");
DEFINE_bool(show_reasoning, false,
            "gpt-oss (harmony): show the analysis channel (the reasoning) as well as the final "
            "answer, each introduced by a [analysis] / [final] line.");
DEFINE_int32(n_predict, -1,
             "Tokens to generate at most per reply. -1: until an end-of-generation token or the "
             "context is full.");
DEFINE_bool(raw, false, "run: feed the prompt as is, without the chat template.");
