#include "synth/synth_vocab.h"

#include <string>
#include <vector>

namespace sluice {
namespace {

std::string Utf8(int cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    s.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    s.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// GPT-2's byte-to-character map: printable Latin-1 bytes stand for themselves, the other 68
// bytes for U+0100.. in byte order (so the space byte is U+0120 'Ġ'). Token id = byte value.
std::vector<std::string> ByteTokens() {
  std::vector<std::string> tokens(256);
  int next = 0x100;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    tokens[b] = printable ? Utf8(b) : Utf8(next++);
  }
  return tokens;
}

// Merges in rank order, as "left right"; each result is added as a token. Space + letter first
// (so "Ġt" forms before "th" can take the t), then letter pairs, then short words whose pieces the
// earlier merges produce ("Ġthe" = "Ġt" + "he").
const char* const kMerges[] = {
    "Ġ t",   "Ġ a",  "Ġ s",  "Ġ w",   "Ġ c",  "Ġ b",   "Ġ p",  "Ġ f",  "Ġ m",  "Ġ d",  "Ġ h",
    "Ġ i",   "Ġ o",  "Ġ l",  "Ġ n",   "Ġ e",  "Ġ r",   "Ġ g",  "Ġ u",  "Ġ v",  "Ġ y",  "Ġ j",
    "Ġ k",   "Ġ q",  "Ġ x",  "Ġ z",   "h e",  "i n",   "e r",  "a n",  "r e",  "o n",  "a t",
    "e n",   "n d",  "t i",  "e s",   "o r",  "t e",   "e d",  "i s",  "i t",  "a l",  "a r",
    "s t",   "n t",  "n g",  "s e",   "h a",  "a s",   "o u",  "i o",  "l e",  "v e",  "c o",
    "m e",   "d e",  "h i",  "r i",   "r o",  "i c",   "n e",  "e a",  "r a",  "c e",  "l i",
    "c h",   "l l",  "b e",  "m a",   "s i",  "o m",   "u r",  "t h",  "o w",  "l y",  "Ġt he",
    "Ġa nd", "Ġo f", "Ġt o", "Ġi n",  "Ġi s", "Ġi t",  "Ġa s", "Ġb e", "Ġo n", "Ġh e", "Ġa t",
    "Ġo r",  "Ġa n", "Ġw e", "Ġa re", "Ġs t", "Ġc on", "Ġr e",
};

constexpr const char* kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' }}{% endif %}";

// Tokens needed by kMerges that are not merge results themselves ("ave" in "Ġh ave").
std::vector<std::string> MergeTokens() {
  std::vector<std::string> out;
  auto has = [&](const std::string& t) {
    for (const std::string& s : out) {
      if (s == t) return true;
    }
    return false;
  };
  for (const char* merge : kMerges) {
    std::string m = merge;
    size_t space = m.find(' ');
    std::string left = m.substr(0, space), right = m.substr(space + 1);
    // A piece no earlier merge produced is still added as a token, so the merge list is always
    // consistent with the token list (the tokenizer may check that).
    for (const std::string& piece : {left, right}) {
      bool single = piece.size() == 1 || piece == "Ġ";
      if (!single && !has(piece)) out.push_back(piece);
    }
    if (!has(left + right)) out.push_back(left + right);
  }
  return out;
}

}  // namespace

int64_t SynthVocabSize() { return 256 + static_cast<int64_t>(MergeTokens().size()) + 3; }

void AddSynthTokenizer(Metadata* m) {
  std::vector<std::string> tokens = ByteTokens();
  for (std::string& t : MergeTokens()) tokens.push_back(std::move(t));
  std::vector<int32_t> types(tokens.size(), 1);  // NORMAL
  const int32_t end_of_text = static_cast<int32_t>(tokens.size());
  tokens.push_back("<|endoftext|>");
  tokens.push_back("<|im_start|>");
  tokens.push_back("<|im_end|>");
  types.insert(types.end(), {3, 3, 3});  // CONTROL
  std::vector<std::string> merges(std::begin(kMerges), std::end(kMerges));
  m->SetString("tokenizer.ggml.model", "gpt2");
  m->SetString("tokenizer.ggml.pre", "qwen2");
  m->SetStringArray("tokenizer.ggml.tokens", std::move(tokens));
  m->SetI32Array("tokenizer.ggml.token_type", std::move(types));
  m->SetStringArray("tokenizer.ggml.merges", std::move(merges));
  m->SetU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(end_of_text));
  m->SetU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(end_of_text + 2));
  m->SetU32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(end_of_text));
  m->SetBool("tokenizer.ggml.add_bos_token", false);
  m->SetString("tokenizer.chat_template", kChatMlTemplate);
}

}  // namespace sluice
