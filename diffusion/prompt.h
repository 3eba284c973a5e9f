// Prompts as the popular Stable Diffusion tools read them: emphasis syntax, then CLIP tokens with
// a weight each, in the 77-token window the text encoders take.
//
// Emphasis (AUTOMATIC1111's parse_prompt_attention, which ComfyUI and stable-diffusion.cpp
// follow): "(text)" multiplies the weight of text by 1.1, "[text]" by 1/1.1, "(text:1.3)" by 1.3;
// nesting multiplies; "\(" "\)" "\[" "\]" "\\" are the literal characters; an unclosed bracket
// applies to the end. A weight that does not parse as a number leaves the text as written.
// The weights scale the encoder's output per token, then the whole is rescaled to its original
// mean (ApplyTokenWeights), as those tools do.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/clip_tokenizer.h"

namespace sluice::diffusion {

struct WeightedText {
  std::string text;
  float weight = 1.0f;
  bool operator==(const WeightedText&) const = default;
};

// Runs of text with their weights; adjacent runs of equal weight are merged. Never empty (an empty
// prompt is one empty run of weight 1).
std::vector<WeightedText> ParseEmphasis(std::string_view prompt);

struct ClipTokens {
  std::vector<int32_t> ids;    // (77): start, up to 75 tokens, end, then padding
  std::vector<float> weights;  // (77): 1 for start, end and padding
  int prompt_tokens = 0;       // tokens of the prompt before truncation
  bool truncated = false;      // more than 75: the rest was dropped
};

// pad_id: 49407 (<|endoftext|>) for OpenAI CLIP (SD 1.x, SDXL's first encoder), 0 for OpenCLIP
// (SD 2.x, SDXL's second encoder), as each was trained.
ClipTokens TokenizePrompt(const ClipTokenizer& tokenizer, std::string_view prompt, int32_t pad_id);

// hidden: (77, width) the encoder's output for `tokens`, scaled in place per token by its weight,
// then by (mean before / mean after). Nothing happens when every weight is 1.
void ApplyTokenWeights(const ClipTokens& tokens, int64_t width, float* hidden);

}  // namespace sluice::diffusion
