// The OpenAI wire format: requests parse into exactly the values sent (defaults where absent),
// and every hostile or malformed body is refused with a 400 naming the field, never accepted with
// a wrapped or clamped value. Responses and stream chunks have OpenAI's shape.
#include "server/openai_api.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace sluice::server {
namespace {

using nlohmann::json;

RequestDefaults Defaults() {
  RequestDefaults d;
  d.sampling = SamplerOptions{.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f};
  d.max_tokens = 100;
  d.max_tokens_limit = 1000;
  return d;
}

TEST(OpenAiApi, ChatRequestFieldsArriveAsSent) {
  ChatRequest r;
  const auto e = ParseChatRequest(R"({
      "model": "m", "stream": true, "stream_options": {"include_usage": true},
      "messages": [{"role": "system", "content": "be brief"},
                   {"role": "user", "content": [{"type": "text", "text": "a"},
                                                {"type": "text", "text": "b"}]},
                   {"role": "assistant", "content": null}],
      "temperature": 0.25, "top_p": 0.5, "top_k": 7, "min_p": 0.1, "seed": 42,
      "presence_penalty": -0.5, "frequency_penalty": 1.5, "max_tokens": 12, "stop": ["x", "yz"],
      "chat_template_kwargs": {"enable_thinking": false}, "user": "ignored", "n": 1})",
                                  Defaults(), &r);
  ASSERT_FALSE(e.has_value()) << e->message;
  EXPECT_EQ(r.params.model, "m");
  EXPECT_TRUE(r.params.stream);
  EXPECT_TRUE(r.params.include_usage);
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, ChatRole::kSystem);
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.messages[2].role, ChatRole::kAssistant);
  EXPECT_EQ(r.messages[2].content, "");
  EXPECT_FLOAT_EQ(r.params.sampling.temperature, 0.25f);
  EXPECT_FLOAT_EQ(r.params.sampling.top_p, 0.5f);
  EXPECT_EQ(r.params.sampling.top_k, 7);
  EXPECT_FLOAT_EQ(r.params.sampling.min_p, 0.1f);
  EXPECT_EQ(r.params.sampling.seed, 42u);
  EXPECT_TRUE(r.params.seed_given);
  EXPECT_FLOAT_EQ(r.params.sampling.presence_penalty, -0.5f);
  EXPECT_FLOAT_EQ(r.params.sampling.frequency_penalty, 1.5f);
  EXPECT_EQ(r.params.max_tokens, 12);
  EXPECT_EQ(r.params.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_FALSE(r.enable_thinking);
}

TEST(OpenAiApi, AbsentFieldsTakeTheServerDefaults) {
  ChatRequest r;
  ASSERT_FALSE(
      ParseChatRequest(R"({"messages":[{"role":"user","content":"hi"}]})", Defaults(), &r));
  EXPECT_FALSE(r.params.stream);
  EXPECT_FLOAT_EQ(r.params.sampling.temperature, 0.8f);
  EXPECT_EQ(r.params.sampling.top_k, 40);
  EXPECT_EQ(r.params.max_tokens, 100);
  EXPECT_FALSE(r.params.seed_given);
  EXPECT_TRUE(r.enable_thinking);
  // max_completion_tokens is the newer name of max_tokens.
  ASSERT_FALSE(
      ParseChatRequest(R"({"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":5})",
                       Defaults(), &r));
  EXPECT_EQ(r.params.max_tokens, 5);
}

TEST(OpenAiApi, HostileBodiesAreRefusedNamingTheField) {
  const std::string ok_messages = R"("messages":[{"role":"user","content":"hi"}])";
  struct Case {
    std::string body;
    std::string param;  // expected "param"; "" for the body as a whole
    std::string says;   // part of the message
  };
  const std::vector<Case> cases = {
      {"", "", "not valid JSON"},
      {"{", "", "not valid JSON"},
      {"[1,2]", "", "JSON object"},
      {"{\"messages\": 3}", "messages", "non-empty array"},
      {"{\"messages\": []}", "messages", "non-empty array"},
      {R"({"messages":[{"role":"robot","content":"x"}]})", "messages", "role"},
      {R"({"messages":[{"content":"x"}]})", "messages", "role must be a string"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages", "content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", "messages", "text"},
      {"{" + ok_messages + R"(,"temperature":"hot"})", "temperature", "number"},
      {"{" + ok_messages + R"(,"temperature":3})", "temperature", "outside"},
      {"{" + ok_messages + R"(,"temperature":-0.1})", "temperature", "outside"},
      {"{" + ok_messages + R"(,"top_p":0})", "top_p", "(0, 1]"},
      {"{" + ok_messages + R"(,"top_k":-1})", "top_k", "outside"},
      {"{" + ok_messages + R"(,"top_k":2.5})", "top_k", "integer"},
      {"{" + ok_messages + R"(,"max_tokens":1e300})", "max_tokens", "integer"},
      {"{" + ok_messages + R"(,"max_tokens":99999999999999999999})", "max_tokens", "integer"},
      {"{" + ok_messages + R"(,"max_tokens":18446744073709551615})", "max_tokens", "above"},
      {"{" + ok_messages + R"(,"max_tokens":0})", "max_tokens", "outside"},
      {"{" + ok_messages + R"(,"max_tokens":1001})", "max_tokens", "above 1000"},  // the limit
      {"{" + ok_messages + R"(,"seed":"7"})", "seed", "integer"},
      {"{" + ok_messages + R"(,"stream":"yes"})", "stream", "true or false"},
      {"{" + ok_messages + R"(,"stop":["a","b","c","d","e"]})", "stop", "at most 4"},
      {"{" + ok_messages + R"(,"stop":[""]})", "stop", "empty"},
      {"{" + ok_messages + R"(,"stop":7})", "stop", "string"},
      {"{" + ok_messages + R"(,"n":2})", "n", "n must be 1"},
      {"{" + ok_messages + R"(,"tools":[{"type":"function"}]})", "tools", "not supported"},
      {"{" + ok_messages + R"(,"presence_penalty":2.5})", "presence_penalty", "outside"},
      {"{" + ok_messages + R"(,"stream_options":1})", "stream_options", "object"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}", "", "UTF-8 (byte 39)"},
      {"{\"messages\":[{\"role\":\"user\",\"content\":\"\xc3\"}]}", "", "UTF-8"},
      {"{" + ok_messages + ",\"stop\":\"\xed\xa0\x80\"}", "", "UTF-8"},    // a surrogate
      {"{" + ok_messages + R"(,"stop":"\ud800"})", "", "not valid JSON"},  // escaped surrogate
      {std::string(100000, '[') + std::string(100000, ']'), "", "nests deeper"},
  };
  for (const Case& c : cases) {
    ChatRequest r;
    const auto e = ParseChatRequest(c.body, Defaults(), &r);
    ASSERT_TRUE(e.has_value()) << "accepted: " << c.body.substr(0, 80);
    EXPECT_EQ(e->http_status, 400);
    EXPECT_EQ(e->param, c.param) << c.body.substr(0, 80);
    EXPECT_NE(e->message.find(c.says), std::string::npos)
        << "'" << e->message << "' lacks '" << c.says << "' for " << c.body.substr(0, 80);
    // The error body is valid JSON of OpenAI's shape.
    const json body = json::parse(ErrorBody(*e));
    EXPECT_EQ(body["error"]["message"], e->message);
    EXPECT_EQ(body["error"]["type"], "invalid_request_error");
  }
}

TEST(OpenAiApi, CompletionRequestTakesAStringOrOneString) {
  CompletionRequest r;
  ASSERT_FALSE(ParseCompletionRequest(R"({"prompt":"abc","max_tokens":3})", Defaults(), &r));
  EXPECT_EQ(r.prompt, "abc");
  EXPECT_EQ(r.params.max_tokens, 3);
  ASSERT_FALSE(ParseCompletionRequest(R"({"prompt":["xyz"]})", Defaults(), &r));
  EXPECT_EQ(r.prompt, "xyz");
  EXPECT_TRUE(ParseCompletionRequest(R"({"prompt":["a","b"]})", Defaults(), &r).has_value());
  EXPECT_TRUE(ParseCompletionRequest(R"({"max_tokens":3})", Defaults(), &r).has_value());
  EXPECT_TRUE(ParseCompletionRequest(R"({"prompt":[1,2,3]})", Defaults(), &r).has_value());
}

TEST(OpenAiApi, ResponsesHaveOpenAisShape) {
  const GenerationStats stats{.prompt_tokens = 10,
                              .cached_tokens = 4,
                              .generated_tokens = 3,
                              .prompt_ns = 2'000'000,
                              .decode_ns = 1'000'000,
                              .bytes_read = 1e6,
                              .cache_hits = 3,
                              .cache_misses = 1};
  const ResponseInfo chat{.id = "chatcmpl-1", .model = "m", .created = 5, .chat = true};
  json full = json::parse(CompletionBody(chat, "héllo", FinishReason::kStop, stats));
  EXPECT_EQ(full["object"], "chat.completion");
  EXPECT_EQ(full["choices"][0]["message"]["content"], "héllo");
  EXPECT_EQ(full["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(full["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(full["usage"]["prompt_tokens"], 10);
  EXPECT_EQ(full["usage"]["completion_tokens"], 3);
  EXPECT_EQ(full["usage"]["total_tokens"], 13);
  EXPECT_EQ(full["timings"]["prompt_n"], 6);  // computed: 10 - 4 cached
  EXPECT_DOUBLE_EQ(full["timings"]["prompt_per_second"].get<double>(), 6 / 2e-3);
  EXPECT_DOUBLE_EQ(full["timings"]["predicted_per_second"].get<double>(), 2 / 1e-3);
  EXPECT_DOUBLE_EQ(full["timings"]["expert_hit_rate"].get<double>(), 0.75);
  EXPECT_EQ(full["timings"]["bytes_read"], 1000000);

  json first = json::parse(ChunkJson(chat, "a", true, std::nullopt, nullptr));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first["choices"][0]["delta"]["content"], "a");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  json last = json::parse(ChunkJson(chat, "", false, FinishReason::kLength, &stats));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(last["choices"][0]["delta"].empty());
  json usage = json::parse(ChunkJson(chat, "", false, std::nullopt, &stats));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 13);

  const ResponseInfo text{.id = "cmpl-1", .model = "m", .created = 5, .chat = false};
  json completion = json::parse(CompletionBody(text, "xyz", FinishReason::kLength, stats));
  EXPECT_EQ(completion["object"], "text_completion");
  EXPECT_EQ(completion["choices"][0]["text"], "xyz");
  EXPECT_EQ(completion["choices"][0]["finish_reason"], "length");
}

TEST(OpenAiApi, Base64IsRfc4648) {
  // RFC 4648 section 10's test vectors.
  EXPECT_EQ(Base64(""), "");
  EXPECT_EQ(Base64("f"), "Zg==");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  EXPECT_EQ(Base64("foo"), "Zm9v");
  EXPECT_EQ(Base64("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64(std::string("\xff\x00\xfe", 3)), "/wD+");
}

TEST(OpenAiApi, ImageRequestsAreCheckedFieldByField) {
  ImageRequest r;
  ASSERT_FALSE(ParseImageRequest(
      R"({"prompt":"a cat","n":2,"size":"512x768","response_format":"b64_json","seed":7,)"
      R"("steps":3,"cfg_scale":1.5,"negative_prompt":"dog","quality":"hd"})",
      4, &r));
  EXPECT_EQ(r.prompt, "a cat");
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.width, 512);
  EXPECT_EQ(r.height, 768);
  ASSERT_TRUE(r.seed.has_value());
  EXPECT_EQ(*r.seed, 7u);
  EXPECT_EQ(r.steps, 3);
  ASSERT_TRUE(r.cfg_scale.has_value());
  EXPECT_EQ(*r.cfg_scale, 1.5f);
  EXPECT_EQ(r.negative_prompt, "dog");

  ImageRequest d;
  ASSERT_FALSE(ParseImageRequest(R"({"prompt":"x"})", 4, &d));
  EXPECT_EQ(d.n, 1);
  EXPECT_EQ(d.width, 0);
  EXPECT_FALSE(d.seed.has_value());
  EXPECT_FALSE(d.cfg_scale.has_value());

  struct Bad {
    const char* body;
    const char* param;
  };
  const Bad bad[] = {
      {R"({})", "prompt"},
      {R"({"prompt":3})", "prompt"},
      {R"({"prompt":"x","n":5})", "n"},
      {R"({"prompt":"x","n":0})", "n"},
      {R"({"prompt":"x","size":"big"})", "size"},
      {R"({"prompt":"x","size":"512x512x3"})", "size"},
      {R"({"prompt":"x","size":"99999x512"})", "size"},
      {R"({"prompt":"x","response_format":"url"})", "response_format"},
      {R"({"prompt":"x","seed":-2})", "seed"},
      {R"({"prompt":"x","steps":1e300})", "steps"},
      {R"({"prompt":"x","cfg_scale":"high"})", "cfg_scale"},
  };
  for (const Bad& b : bad) {
    ImageRequest x;
    const std::optional<ApiError> e = ParseImageRequest(b.body, 4, &x);
    ASSERT_TRUE(e.has_value()) << b.body;
    EXPECT_EQ(e->http_status, 400) << b.body;
    EXPECT_EQ(e->param, b.param) << b.body << ": " << e->message;
  }
}

}  // namespace
}  // namespace sluice::server
