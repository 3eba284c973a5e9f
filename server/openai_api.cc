#include "server/openai_api.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>

#include "tokenizer/unicode.h"

namespace sluice::server {
namespace {

using nlohmann::json;

constexpr int kMaxNesting = 32;        // messages[i].content[j].text is 4 deep
constexpr size_t kMaxStopStrings = 4;  // as OpenAI

// Deepest [ / { nesting outside strings, stopping once past `limit`.
int NestingDepth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// The offset of the first byte that does not start a valid UTF-8 sequence, or npos.
size_t InvalidUtf8At(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    bool partial = false;
    const size_t n = ValidUtf8SequenceLength(s.substr(i), &partial);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

bool IsValidUtf8(std::string_view s) { return InvalidUtf8At(s) == std::string_view::npos; }

ApiError Bad(std::string param, std::string message) {
  return ApiError{.http_status = 400, .message = std::move(message), .param = std::move(param)};
}

// Each reader: absent leaves *out; wrong type or range is an error naming the field.
std::optional<ApiError> ReadNumber(const json& j, const char* key, double lo, double hi,
                                   float* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) return Bad(key, std::string(key) + " must be a number");
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < lo || v > hi) {
    return Bad(key, std::string(key) + " " + it->dump() + " is outside [" + json(lo).dump() + ", " +
                        json(hi).dump() + "]");
  }
  *out = static_cast<float>(v);
  return std::nullopt;
}

std::optional<ApiError> ReadInteger(const json& j, const char* key, int64_t lo, int64_t hi,
                                    int64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer()) {
    return Bad(key, std::string(key) + " must be an integer in [" + std::to_string(lo) + ", " +
                        std::to_string(hi) + "], got " + it->dump());
  }
  // Unsigned values above int64 and negative ones are told apart before converting.
  if (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi)) {
    return Bad(key, std::string(key) + " " + it->dump() + " is above " + std::to_string(hi));
  }
  const int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return Bad(key, std::string(key) + " " + it->dump() + " is outside [" + std::to_string(lo) +
                        ", " + std::to_string(hi) + "]");
  }
  *out = v;
  return std::nullopt;
}

std::optional<ApiError> ReadBool(const json& j, const char* key, bool* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return Bad(key, std::string(key) + " must be true or false");
  *out = it->get<bool>();
  return std::nullopt;
}

std::optional<ApiError> ReadText(const json& v, const std::string& param, std::string* out) {
  if (!v.is_string()) return Bad(param, param + " must be a string");
  const std::string& s = v.get_ref<const std::string&>();
  if (!IsValidUtf8(s)) return Bad(param, param + " is not valid UTF-8");
  *out = s;
  return std::nullopt;
}

// The body as a JSON object, or the error.
std::optional<ApiError> ParseObject(std::string_view body, json* out) {
  if (NestingDepth(body, kMaxNesting) > kMaxNesting) {
    return Bad("", "the JSON body nests deeper than " + std::to_string(kMaxNesting) + " levels");
  }
  if (const size_t at = InvalidUtf8At(body); at != std::string_view::npos) {
    return Bad("", "the body is not valid UTF-8 (byte " + std::to_string(at) + ")");
  }
  *out = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) return Bad("", "the body is not valid JSON");
  if (!out->is_object()) return Bad("", "the body must be a JSON object");
  return std::nullopt;
}

std::optional<ApiError> ParseCommon(const json& j, const RequestDefaults& d, bool chat,
                                    GenerationParams* p) {
  p->sampling = d.sampling;
  p->max_tokens = d.max_tokens;
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (auto e = ReadText(*it, "model", &p->model)) return e;
  }
  if (auto e = ReadBool(j, "stream", &p->stream)) return e;
  if (auto it = j.find("stream_options"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("stream_options", "stream_options must be an object");
    if (auto e = ReadBool(*it, "include_usage", &p->include_usage)) return e;
  }
  SamplerOptions& s = p->sampling;
  if (auto e = ReadNumber(j, "temperature", 0.0, 2.0, &s.temperature)) return e;
  if (auto e = ReadNumber(j, "top_p", 0.0, 1.0, &s.top_p)) return e;
  if (j.contains("top_p") && !j["top_p"].is_null() && !(s.top_p > 0.0f)) {
    return Bad("top_p", "top_p must be in (0, 1]");
  }
  if (auto e = ReadNumber(j, "min_p", 0.0, 1.0, &s.min_p)) return e;
  if (auto e = ReadNumber(j, "presence_penalty", -2.0, 2.0, &s.presence_penalty)) return e;
  if (auto e = ReadNumber(j, "frequency_penalty", -2.0, 2.0, &s.frequency_penalty)) return e;
  if (auto e = ReadNumber(j, "repeat_penalty", 1e-3, 100.0, &s.repeat_penalty)) return e;
  int64_t top_k = s.top_k;
  if (auto e = ReadInteger(j, "top_k", 0, 1 << 30, &top_k)) return e;
  s.top_k = static_cast<int>(top_k);
  int64_t seed = -1;
  if (auto e = ReadInteger(j, "seed", std::numeric_limits<int64_t>::min(),
                           std::numeric_limits<int64_t>::max(), &seed)) {
    return e;
  }
  if (j.contains("seed") && !j["seed"].is_null()) {
    s.seed = static_cast<uint64_t>(seed);
    p->seed_given = true;
  }
  const int64_t cap = d.max_tokens_limit >= 0 ? d.max_tokens_limit : (int64_t{1} << 40);
  const char* max_key =
      chat && j.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (auto e = ReadInteger(j, max_key, 1, cap, &p->max_tokens)) return e;
  if (p->max_tokens < 0 && d.max_tokens_limit >= 0) p->max_tokens = d.max_tokens_limit;
  if (auto it = j.find("stop"); it != j.end() && !it->is_null()) {
    std::vector<json> stops;
    if (it->is_string()) {
      stops.push_back(*it);
    } else if (it->is_array()) {
      stops.assign(it->begin(), it->end());
    } else {
      return Bad("stop", "stop must be a string or an array of strings");
    }
    if (stops.size() > kMaxStopStrings) {
      return Bad("stop", "at most " + std::to_string(kMaxStopStrings) + " stop strings");
    }
    for (const json& v : stops) {
      std::string text;
      if (auto e = ReadText(v, "stop", &text)) return e;
      if (text.empty()) return Bad("stop", "a stop string is empty");
      p->stop.push_back(std::move(text));
    }
  }
  int64_t n = 1;
  if (auto e = ReadInteger(j, "n", 1, 1, &n)) {
    e->message = "n must be 1: one choice per request";
    return e;
  }
  for (const char* unsupported : {"tools", "functions", "logprobs", "response_format", "logit_bias",
                                  "best_of", "suffix", "echo"}) {
    auto it = j.find(unsupported);
    if (it == j.end() || it->is_null() || (it->is_boolean() && !it->get<bool>()) ||
        (it->is_array() && it->empty()) || (it->is_object() && it->empty())) {
      continue;
    }
    return Bad(unsupported, std::string(unsupported) + " is not supported by this server");
  }
  return std::nullopt;
}

std::optional<ApiError> ParseMessage(const json& m, size_t i, ChatMessage* out) {
  const std::string where = "messages[" + std::to_string(i) + "]";
  if (!m.is_object()) return Bad("messages", where + " must be an object");
  auto role = m.find("role");
  if (role == m.end() || !role->is_string()) {
    return Bad("messages", where + ".role must be a string");
  }
  const std::string& r = role->get_ref<const std::string&>();
  if (r == "system" || r == "developer") {
    out->role = ChatRole::kSystem;
  } else if (r == "user") {
    out->role = ChatRole::kUser;
  } else if (r == "assistant") {
    out->role = ChatRole::kAssistant;
  } else {
    return Bad("messages", where + ".role '" + (IsValidUtf8(r) ? r : "?") +
                               "' is not system, developer, user or assistant");
  }
  auto content = m.find("content");
  if (content == m.end() || content->is_null()) {
    out->content.clear();
    return std::nullopt;
  }
  if (content->is_string()) return ReadText(*content, where + ".content", &out->content);
  if (!content->is_array()) {
    return Bad("messages", where + ".content must be a string or an array of text parts");
  }
  // [{"type": "text", "text": "..."}, ...]: the texts joined.
  out->content.clear();
  for (size_t k = 0; k < content->size(); ++k) {
    const json& part = (*content)[k];
    const std::string pw = where + ".content[" + std::to_string(k) + "]";
    if (!part.is_object() || !part.contains("type") || part["type"] != "text") {
      return Bad("messages", pw + ": only parts of type \"text\" are supported");
    }
    std::string text;
    if (auto e = ReadText(part.contains("text") ? part["text"] : json(), pw + ".text", &text)) {
      return e;
    }
    out->content += text;
  }
  return std::nullopt;
}

json Usage(const GenerationStats& s) {
  return json{{"prompt_tokens", s.prompt_tokens},
              {"completion_tokens", s.generated_tokens},
              {"total_tokens", s.prompt_tokens + s.generated_tokens},
              {"prompt_tokens_details", {{"cached_tokens", s.cached_tokens}}}};
}

double PerSecond(int64_t n, uint64_t ns) { return ns == 0 ? 0.0 : n * 1e9 / ns; }

// llama-server's timings, plus our storage figures.
json Timings(const GenerationStats& s) {
  const int64_t computed = s.prompt_tokens - s.cached_tokens;
  const double lookups = s.cache_hits + s.cache_misses;
  return json{{"prompt_n", computed},
              {"prompt_ms", s.prompt_ns / 1e6},
              {"prompt_per_second", PerSecond(computed, s.prompt_ns)},
              {"predicted_n", s.generated_tokens},
              {"predicted_ms", s.decode_ns / 1e6},
              {"predicted_per_second",
               PerSecond(std::max<int64_t>(0, s.generated_tokens - 1), s.decode_ns)},
              {"cache_n", s.cached_tokens},
              {"queued_ms", s.queued_ns / 1e6},
              {"bytes_read", static_cast<uint64_t>(s.bytes_read)},
              {"expert_hit_rate", lookups > 0 ? s.cache_hits / lookups : 1.0}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string ErrorBody(const ApiError& e) {
  json err{{"message", e.message}, {"type", e.type}};
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return Dump(json{{"error", err}});
}

std::optional<ApiError> ParseChatRequest(std::string_view body, const RequestDefaults& defaults,
                                         ChatRequest* out) {
  json j;
  if (auto e = ParseObject(body, &j)) return e;
  if (auto e = ParseCommon(j, defaults, /*chat=*/true, &out->params)) return e;
  auto messages = j.find("messages");
  if (messages == j.end() || !messages->is_array() || messages->empty()) {
    return Bad("messages", "messages must be a non-empty array");
  }
  out->messages.resize(messages->size());
  for (size_t i = 0; i < messages->size(); ++i) {
    if (auto e = ParseMessage((*messages)[i], i, &out->messages[i])) return e;
  }
  out->enable_thinking = defaults.enable_thinking;
  if (auto it = j.find("chat_template_kwargs"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Bad("chat_template_kwargs", "chat_template_kwargs must be an object");
    }
    if (auto e = ReadBool(*it, "enable_thinking", &out->enable_thinking)) return e;
  }
  return std::nullopt;
}

std::optional<ApiError> ParseCompletionRequest(std::string_view body,
                                               const RequestDefaults& defaults,
                                               CompletionRequest* out) {
  json j;
  if (auto e = ParseObject(body, &j)) return e;
  if (auto e = ParseCommon(j, defaults, /*chat=*/false, &out->params)) return e;
  auto prompt = j.find("prompt");
  if (prompt == j.end()) return Bad("prompt", "prompt is required");
  if (prompt->is_array()) {
    if (prompt->size() != 1) return Bad("prompt", "prompt must be a string (or one string)");
    return ReadText((*prompt)[0], "prompt", &out->prompt);
  }
  return ReadText(*prompt, "prompt", &out->prompt);
}

std::string FinishReasonForApi(FinishReason reason) {
  // A deadline or a cancel cut the reply short, as a token limit does.
  return reason == FinishReason::kStop ? "stop" : "length";
}

std::string CompletionBody(const ResponseInfo& info, const std::string& text, FinishReason reason,
                           const GenerationStats& stats) {
  json choice{{"index", 0}, {"finish_reason", FinishReasonForApi(reason)}};
  if (info.chat) {
    choice["message"] = json{{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  json body{{"id", info.id},
            {"object", info.chat ? "chat.completion" : "text_completion"},
            {"created", info.created},
            {"model", info.model},
            {"choices", json::array({choice})},
            {"usage", Usage(stats)},
            {"timings", Timings(stats)}};
  return Dump(body);
}

std::string ChunkJson(const ResponseInfo& info, const std::string& text, bool first,
                      std::optional<FinishReason> finish, const GenerationStats* usage) {
  json body{{"id", info.id},
            {"object", info.chat ? "chat.completion.chunk" : "text_completion"},
            {"created", info.created},
            {"model", info.model}};
  if (usage != nullptr && !finish.has_value()) {
    body["choices"] = json::array();
    body["usage"] = Usage(*usage);
    body["timings"] = Timings(*usage);
    return Dump(body);
  }
  json choice{{"index", 0}};
  choice["finish_reason"] = finish.has_value() ? json(FinishReasonForApi(*finish)) : json(nullptr);
  if (info.chat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!finish.has_value()) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  body["choices"] = json::array({choice});
  if (finish.has_value() && usage != nullptr) body["timings"] = Timings(*usage);
  return Dump(body);
}

std::optional<ApiError> ParseImageRequest(std::string_view body, int max_n, ImageRequest* out) {
  json j;
  if (auto e = ParseObject(body, &j)) return e;
  auto prompt = j.find("prompt");
  if (prompt == j.end()) return Bad("prompt", "prompt is required");
  if (auto e = ReadText(*prompt, "prompt", &out->prompt)) return e;
  if (auto it = j.find("model"); it != j.end() && !it->is_null()) {
    if (auto e = ReadText(*it, "model", &out->model)) return e;
  }
  if (auto it = j.find("negative_prompt"); it != j.end() && !it->is_null()) {
    if (auto e = ReadText(*it, "negative_prompt", &out->negative_prompt)) return e;
  }
  int64_t n = 1;
  if (auto e = ReadInteger(j, "n", 1, max_n, &n)) return e;
  out->n = static_cast<int>(n);
  if (auto it = j.find("size"); it != j.end() && !it->is_null()) {
    std::string size;
    if (auto e = ReadText(*it, "size", &size)) return e;
    int w = 0, h = 0;
    char tail = 0;
    if (std::sscanf(size.c_str(), "%dx%d%c", &w, &h, &tail) != 2 || w < 64 || h < 64 || w > 2048 ||
        h > 2048) {
      return Bad("size", "size '" + size + "' must be WIDTHxHEIGHT, each 64..2048 (e.g. 512x512)");
    }
    out->width = w;
    out->height = h;
  }
  if (auto it = j.find("response_format"); it != j.end() && !it->is_null()) {
    std::string format;
    if (auto e = ReadText(*it, "response_format", &format)) return e;
    if (format != "b64_json") {
      return Bad("response_format", "response_format '" + format +
                                        "' is not served: only b64_json (the server keeps no "
                                        "files to link to)");
    }
  }
  int64_t seed = -1;
  if (auto e = ReadInteger(j, "seed", -1, INT64_MAX, &seed)) return e;
  if (seed >= 0) out->seed = static_cast<uint64_t>(seed);
  int64_t steps = 0;
  if (auto e = ReadInteger(j, "steps", 1, 150, &steps)) return e;
  out->steps = static_cast<int>(steps);
  float cfg = -1;
  if (auto e = ReadNumber(j, "cfg_scale", 0, 30, &cfg)) return e;
  if (cfg >= 0) out->cfg_scale = cfg;
  return std::nullopt;
}

std::string Base64(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                       static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (const size_t rest = bytes.size() - i; rest > 0) {
    uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
    if (rest == 2) v |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string ImagesBody(int64_t created, const std::vector<std::string>& pngs,
                       const std::string& prompt) {
  json data = json::array();
  for (const std::string& png : pngs) {
    data.push_back(json{{"b64_json", Base64(png)}, {"revised_prompt", prompt}});
  }
  return Dump(json{{"created", created}, {"data", data}});
}

std::string ModelsBody(int64_t created, const std::string& model, const std::string& image_model) {
  json data = json::array(
      {json{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "sluice"}}});
  if (!image_model.empty()) {
    data.push_back(json{{"id", image_model},
                        {"object", "model"},
                        {"created", created},
                        {"owned_by", "sluice"},
                        {"capabilities", json::array({"images"})}});
  }
  return Dump(json{{"object", "list"}, {"data", data}});
}

}  // namespace sluice::server
