// The OpenAI wire format: requests of /v1/chat/completions and /v1/completions parsed into what
// the batch scheduler runs, responses and stream chunks written back, errors in OpenAI's shape.
//
// Parsing is strict where a wrong value would silently change the result: every field has its
// type checked, numbers their range (a 1e300 max_tokens is an error, not a wrap), text must be
// valid UTF-8, JSON nesting is bounded before it is parsed. Unknown fields are ignored, as the
// OpenAI server does (clients send many). Fields we do not implement but that would change the
// output (n > 1, tools, logprobs, response_format) are refused naming the field.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "chat/sampler.h"
#include "server/generation.h"
#include "tokenizer/chat_template.h"

namespace sluice::server {

struct ApiError {
  int http_status = 400;
  std::string message = {};
  std::string type = "invalid_request_error";
  std::string param = {};  // the offending field, or empty
  std::string code = {};   // or empty
};
// {"error": {"message", "type", "param", "code"}}
std::string ErrorBody(const ApiError& error);

// What a request gets when it leaves a field out, and the server's limits.
struct RequestDefaults {
  SamplerOptions sampling;
  int64_t max_tokens = -1;        // -1: until the context is full (capped by max_tokens_limit)
  int64_t max_tokens_limit = -1;  // largest max_tokens a request may ask for; -1: none
  bool enable_thinking = true;
};

struct GenerationParams {
  std::string model;  // echoed back
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  SamplerOptions sampling;
  int64_t max_tokens = -1;
  std::vector<std::string> stop;
  bool seed_given = false;
};

struct ChatRequest {
  GenerationParams params;
  std::vector<ChatMessage> messages;
  bool enable_thinking = true;  // chat_template_kwargs.enable_thinking
};

struct CompletionRequest {
  GenerationParams params;
  std::string prompt;
};

// On failure the error says which field is wrong and why.
std::optional<ApiError> ParseChatRequest(std::string_view body, const RequestDefaults& defaults,
                                         ChatRequest* out);
std::optional<ApiError> ParseCompletionRequest(std::string_view body,
                                               const RequestDefaults& defaults,
                                               CompletionRequest* out);

// Usage and timings of a finished generation (the llama-server `timings` object plus our I/O).
struct ResponseInfo {
  std::string id;  // "chatcmpl-..." / "cmpl-..."
  std::string model;
  int64_t created = 0;  // unix seconds
  bool chat = true;     // chat.completion vs text_completion
};
std::string FinishReasonForApi(FinishReason reason);  // "stop" or "length"

// The whole non-streamed response.
std::string CompletionBody(const ResponseInfo& info, const std::string& text, FinishReason reason,
                           const GenerationStats& stats);
// One streamed chunk's JSON (without "data: "): text (role on the first), or the final one with
// finish_reason, or (usage_only) the usage chunk with no choices.
std::string ChunkJson(const ResponseInfo& info, const std::string& text, bool first,
                      std::optional<FinishReason> finish, const GenerationStats* usage);

// POST /v1/images/generations: OpenAI's fields prompt, n, size ("WxH"), response_format (only
// "b64_json": the server keeps no files to link to), model (echoed); the fields other local
// servers add for Stable Diffusion: negative_prompt, seed, steps, cfg_scale. quality, style and
// user are accepted and ignored, as they do not apply.
struct ImageRequest {
  std::string model;
  std::string prompt;
  std::string negative_prompt;
  int n = 1;
  int width = 0, height = 0;  // 0: the model's default size
  std::optional<uint64_t> seed;
  int steps = 0;  // 0: the model's default
  std::optional<float> cfg_scale;
};
// max_n: the most images one request may ask for (--max-images).
std::optional<ApiError> ParseImageRequest(std::string_view body, int max_n, ImageRequest* out);
// {"created", "data": [{"b64_json", "revised_prompt"}...]} for PNG files' bytes.
std::string ImagesBody(int64_t created, const std::vector<std::string>& pngs,
                       const std::string& prompt);
// GET /v1/models: the language model, and the diffusion model when one is loaded (marked
// "capabilities": ["images"], what the chat page looks for; image_model "" when none).
std::string ModelsBody(int64_t created, const std::string& model, const std::string& image_model);
// Standard base64 (RFC 4648, padded).
std::string Base64(std::string_view bytes);

}  // namespace sluice::server
