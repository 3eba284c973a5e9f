// The HTTP server with a real client (cpp-httplib's) on a loopback port: the routes, OpenAI's
// error shapes and statuses for hostile requests, streamed output equal to the non-streamed
// reply, the API key, CORS, the body limit, the queue limit (503 + Retry-After), and a client that
// disconnects mid-stream cancelling its request. The server keeps answering after every one.
#include "server/http_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "diffusion/png.h"
#include "synth/sd_synth.h"
#include "tests/server/served_model.h"
#include "tests/support/temp_dir.h"

namespace sluice::server::testing {
namespace {

using nlohmann::json;

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { signal(SIGPIPE, SIG_IGN); }

  void Start(int parallel, int max_queued, ServerOptions options = {}) {
    ASSERT_TRUE(ServedModel::Open(parallel, max_queued, &model_).ok());
    options.port = 0;
    options.model_name = "test-model";
    options.max_body_bytes = 64 * 1024;
    options.defaults.sampling = SamplerOptions{.temperature = 0.0f};
    auto s = HttpServer::Create(model_.scheduler.get(), model_.engine.get(), model_.tokenizer.get(),
                                model_.chat_template.get(), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    ASSERT_TRUE(server_->Bind().ok());
    thread_ = std::thread([this] { EXPECT_TRUE(server_->Run().ok()); });
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_read_timeout(60, 0);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
    if (thread_.joinable()) thread_.join();
  }
  httplib::Result Post(const std::string& path, const std::string& body) {
    return client_->Post(path.c_str(), body, "application/json");
  }
  void ExpectError(const httplib::Result& r, int status, const std::string& says) {
    ASSERT_TRUE(r) << "no response";
    EXPECT_EQ(r->status, status) << r->body;
    const json body = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(body.is_object()) << r->body;
    ASSERT_TRUE(body.contains("error")) << r->body;
    EXPECT_NE(body["error"]["message"].get<std::string>().find(says), std::string::npos) << r->body;
  }
  // The concatenated deltas of an SSE stream, its finish_reason and its usage chunk.
  struct Streamed {
    std::string text;
    std::string finish_reason;
    json usage;
    bool done = false;
    int chunks = 0;
  };
  static Streamed ParseStream(const std::string& sse) {
    Streamed s;
    size_t pos = 0;
    while (pos < sse.size()) {
      size_t end = sse.find("\n\n", pos);
      if (end == std::string::npos) end = sse.size();
      const std::string event = sse.substr(pos, end - pos);
      pos = end + 2;
      if (!event.starts_with("data: ")) continue;
      const std::string data = event.substr(6);
      if (data == "[DONE]") {
        s.done = true;
        continue;
      }
      const json chunk = json::parse(data);
      ++s.chunks;
      if (chunk.contains("usage")) s.usage = chunk["usage"];
      if (chunk["choices"].empty()) continue;
      const json& c = chunk["choices"][0];
      if (c.contains("delta") && c["delta"].contains("content")) {
        s.text += c["delta"]["content"].get<std::string>();
      }
      if (c.contains("text")) s.text += c["text"].get<std::string>();
      if (!c["finish_reason"].is_null()) s.finish_reason = c["finish_reason"];
    }
    return s;
  }

  ServedModel model_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::unique_ptr<httplib::Client> client_;
};

// POSTs a streamed request, handing each received piece to `receive` (false: hang up).
void PostStream(httplib::Client& client, const std::string& body,
                std::function<bool(const char*, size_t)> receive) {
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.set_header("Content-Type", "application/json");
  req.body = body;
  req.content_receiver = [receive](const char* data, size_t n, uint64_t, uint64_t) {
    return receive(data, n);
  };
  client.send(req);
}

const char kChat[] = R"({"messages":[{"role":"user","content":"hello"}],"max_tokens":12)";

TEST_F(HttpServerTest, RoutesAnswer) {
  Start(2, 4);
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
  auto models = client_->Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(json::parse(models->body)["data"][0]["id"], "test-model");
  auto page = client_->Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("/v1/chat/completions"), std::string::npos);
  EXPECT_EQ(page->body.find("http://"), std::string::npos) << "the page loads nothing external";
  ExpectError(client_->Get("/nope"), 404, "no route");
  auto metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("sluice_active_sequences 0"), std::string::npos) << metrics->body;
}

TEST_F(HttpServerTest, StreamedRepliesEqualTheWholeOnes) {
  Start(2, 4);
  auto whole = Post("/v1/chat/completions", std::string(kChat) + "}");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  const json w = json::parse(whole->body);
  const std::string text = w["choices"][0]["message"]["content"];
  EXPECT_EQ(w["usage"]["completion_tokens"], 12);
  EXPECT_EQ(w["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(w["timings"].contains("bytes_read"));

  auto streamed =
      Post("/v1/chat/completions",
           std::string(kChat) + R"(,"stream":true,"stream_options":{"include_usage":true}})");
  ASSERT_TRUE(streamed);
  ASSERT_EQ(streamed->status, 200);
  EXPECT_EQ(streamed->get_header_value("Content-Type"), "text/event-stream");
  const Streamed s = ParseStream(streamed->body);
  EXPECT_EQ(s.text, text);
  EXPECT_EQ(s.finish_reason, "length");
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.usage["completion_tokens"], 12);
  EXPECT_GT(s.chunks, 2);

  // Completions: the raw prompt, streamed and not, agree too.
  const std::string completion = R"({"prompt":"once upon","max_tokens":8)";
  auto c1 = Post("/v1/completions", completion + "}");
  ASSERT_TRUE(c1);
  ASSERT_EQ(c1->status, 200) << c1->body;
  auto c2 = Post("/v1/completions", completion + R"(,"stream":true})");
  ASSERT_TRUE(c2);
  EXPECT_EQ(ParseStream(c2->body).text, json::parse(c1->body)["choices"][0]["text"]);
}

TEST_F(HttpServerTest, HostileRequestsGetClearErrorsAndTheServerStaysUp) {
  Start(1, 2);
  ExpectError(Post("/v1/chat/completions", "{not json"), 400, "not valid JSON");
  ExpectError(Post("/v1/chat/completions",
                   R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})"),
              400, "temperature");
  ExpectError(Post("/v1/chat/completions",
                   R"({"messages":[{"role":"user","content":"x"}],"max_tokens":1e999})"),
              400, "");
  ExpectError(
      Post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"\xc0\xaf\"}]}"),
      400, "UTF-8");
  ExpectError(Post("/v1/chat/completions", std::string(30000, '[')), 400, "nests deeper");
  ExpectError(Post("/v1/chat/completions", std::string(100 * 1024, ' ')), 413, "larger than");
  // A prompt longer than the context.
  std::string long_text;
  for (int i = 0; i < 1500; ++i) long_text += "word ";
  ExpectError(Post("/v1/chat/completions",
                   R"({"messages":[{"role":"user","content":")" + long_text + R"("}]})"),
              400, "tokens; at most");
  auto ok = Post("/v1/chat/completions", std::string(kChat) + "}");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, TheApiKeyGuardsTheApi) {
  ServerOptions o;
  o.api_key = "s3cret";
  o.cors_origin = "http://localhost:3000";
  Start(1, 2, o);
  ExpectError(Post("/v1/chat/completions", std::string(kChat) + "}"), 401, "API key");
  httplib::Headers wrong = {{"Authorization", "Bearer nope"}};
  auto w =
      client_->Post("/v1/chat/completions", wrong, std::string(kChat) + "}", "application/json");
  ExpectError(w, 401, "API key");
  ExpectError(client_->Get("/metrics"), 401, "API key");
  httplib::Headers right = {{"Authorization", "Bearer s3cret"}};
  auto r =
      client_->Post("/v1/chat/completions", right, std::string(kChat) + "}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(r->get_header_value("Access-Control-Allow-Origin"), "http://localhost:3000");
  auto health = client_->Get("/health");  // open: load balancers probe it
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto preflight = client_->Options("/v1/chat/completions");
  ASSERT_TRUE(preflight);
  EXPECT_EQ(preflight->status, 204);
}

TEST_F(HttpServerTest, AFullQueueAnswers503WithRetryAfter) {
  Start(1, 0);
  // A long stream holds the only sequence; the queue holds none.
  httplib::Client other("127.0.0.1", server_->port());
  std::atomic<bool> started{false}, stop{false};
  std::thread holder([&] {
    PostStream(other,
               R"({"messages":[{"role":"user","content":"long"}],"max_tokens":900,"stream":true})",
               [&](const char*, size_t) {
                 started = true;
                 return !stop.load();
               });
  });
  while (!started.load()) std::this_thread::yield();  // the holder's first chunk arrived
  auto r = Post("/v1/chat/completions", std::string(kChat) + "}");
  ExpectError(r, 503, "waiting");
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  stop = true;
  holder.join();
}

TEST_F(HttpServerTest, ASlowClientIsDroppedAndOthersAreServed) {
  ServerOptions o;
  o.read_timeout_seconds = 1;
  o.http_threads = 2;
  Start(1, 2, o);
  // Two connections that send half a request and stall: as many as the server has threads.
  std::vector<int> slow;
  for (int i = 0; i < 2; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string half =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"mess";
    ASSERT_EQ(send(fd, half.data(), half.size(), 0), static_cast<ssize_t>(half.size()));
    timeval guard{.tv_sec = 60, .tv_usec = 0};  // a server that never drops it fails, not hangs
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
    slow.push_back(fd);
  }
  // The server gives up on each (it closes the connection, perhaps after an error reply)...
  for (int fd : slow) {
    char buf[512];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0 || (n < 0 && errno == EINTR)) {
    }
    // Closed (0), or reset since our half request was never read (ECONNRESET); a timeout of
    // the guard (EAGAIN) means the server kept it.
    const int err = n < 0 ? errno : 0;
    EXPECT_TRUE(n == 0 || err == ECONNRESET)
        << "the stalled connection was not closed by the server: " << std::strerror(err);
    close(fd);
  }
  // ... and serves the next client.
  auto ok = Post("/v1/chat/completions", std::string(kChat) + "}");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);
}

TEST_F(HttpServerTest, AClientThatDisconnectsCancelsItsRequest) {
  Start(1, 4);
  httplib::Client other("127.0.0.1", server_->port());
  int chunks = 0;
  // Asks for 900 tokens and hangs up after the first chunk.
  PostStream(other,
             R"({"messages":[{"role":"user","content":"bye"}],"max_tokens":900,"stream":true})",
             [&](const char*, size_t) { return ++chunks < 2; });
  // With one sequence, this request runs only once that one is cancelled or done.
  auto r = Post("/v1/chat/completions",
                R"({"messages":[{"role":"user","content":"next"}],"max_tokens":1})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  const SchedulerMetrics m = model_.scheduler->metrics();
  EXPECT_LT(m.generated_tokens, 900) << "the disconnected stream ran to its end";
}

// Base64 (RFC 4648) back to bytes, for the images' b64_json; empty on a bad character.
std::string DecodeBase64(const std::string& text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+' || c == '/') {
      v = c == '+' ? 62 : 63;
    } else if (c == '=') {
      break;
    } else {
      return "";
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

// A tiny SD-Turbo-shaped checkpoint written to `path` and loaded resident; null on failure.
std::unique_ptr<diffusion::DiffusionModel> TinyTurbo(const std::string& path) {
  auto preset = FindSdPreset("sd-turbo", /*tiny=*/true);
  EXPECT_TRUE(preset.ok());
  if (!preset.ok() || !WriteSdCheckpoint(path, *preset, {}).ok()) return nullptr;
  auto model = diffusion::DiffusionModel::Load(path, std::nullopt);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return model.ok() ? std::move(*model) : nullptr;
}

// A client that sends an image request and hangs up once it is answered 200: the server notices
// at its next keep-alive write and the generation stops at its next step instead of running its 4 x
// 150 steps; the next request (which waits for the one generation at a time) is answered.
TEST_F(HttpServerTest, AnImageClientThatLeavesCancelsItsImages) {
  ::sluice::testing::TempDir dir;
  const std::string path = dir.File("tiny-turbo.safetensors");
  auto served = TinyTurbo(path);
  ASSERT_NE(served, nullptr);
  ImageServiceOptions io;
  io.max_images = 4;
  io.threads = 1;
  io.defaults.width = io.defaults.height = 64;
  io.defaults.steps = 1;
  auto service = ImageService::Create(std::move(served), io);
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  ServerOptions options;
  options.images = service->get();
  Start(1, 1, options);
  {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(server_->port()));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string body = R"({"prompt":"a long one","n":4,"steps":150,"size":"256x256"})";
    const std::string request =
        "POST /v1/images/generations HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    ASSERT_EQ(send(fd, request.data(), request.size(), 0), static_cast<ssize_t>(request.size()));
    // The 200 headers come once the generation is under way (after a second without an error);
    // then hang up.
    timeval guard{.tv_sec = 60, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &guard, sizeof(guard));
    char buf[64] = {};
    ssize_t got;
    do {
      got = recv(fd, buf, sizeof(buf) - 1, 0);
    } while (got < 0 && errno == EINTR);
    ASSERT_GT(got, 12) << std::strerror(errno);
    EXPECT_EQ(std::string(buf, 12), "HTTP/1.1 200");
    close(fd);
  }
  auto r = Post("/v1/images/generations", R"({"prompt":"next","size":"64x64"})");
  ASSERT_TRUE(r) << "no response";
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ((*service)->requests_cancelled(), 1u) << "the abandoned request ran to its end";
  EXPECT_LT((*service)->images_made(), 4u + 1u) << "all four abandoned images were made";
}

TEST_F(HttpServerTest, ImagesWithoutADiffusionModelAre404) {
  Start(1, 1);
  ExpectError(Post("/v1/images/generations", R"({"prompt":"a cat"})"), 404, "--diffusion-model");
}

// A tiny SD-Turbo-shaped checkpoint served: n images come back as PNGs of the seeds seed, seed+1
// whose pixels are those diffusion::Generate makes alone with the same settings, with the
// parameters text; bad requests get 400 and the server goes on.
TEST_F(HttpServerTest, ImagesAreThePngsOfTheSameGenerations) {
  ::sluice::testing::TempDir dir;
  const std::string path = dir.File("tiny-turbo.safetensors");
  auto served = TinyTurbo(path);
  ASSERT_NE(served, nullptr);
  ImageServiceOptions io;
  io.max_images = 2;
  io.threads = 2;
  io.model_name = "tiny-turbo";
  io.version = "test";
  io.defaults.width = io.defaults.height = 64;
  io.defaults.steps = 2;
  auto service = ImageService::Create(std::move(served), io);
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  ServerOptions options;
  options.images = service->get();
  Start(1, 1, options);

  auto r =
      Post("/v1/images/generations",
           R"({"prompt":"a red cube","n":2,"seed":5,"size":"64x64","response_format":"b64_json"})");
  ASSERT_TRUE(r) << "no response";
  ASSERT_EQ(r->status, 200) << r->body;
  const json body = json::parse(r->body);
  ASSERT_EQ(body["data"].size(), 2u) << r->body;

  auto alone = diffusion::DiffusionModel::Load(path, std::nullopt);
  ASSERT_TRUE(alone.ok());
  for (int i = 0; i < 2; ++i) {
    const std::string png = DecodeBase64(body["data"][i]["b64_json"].get<std::string>());
    ASSERT_GT(png.size(), 8u);
    const std::string file = dir.File("got" + std::to_string(i) + ".png");
    {
      FILE* f = std::fopen(file.c_str(), "wb");
      ASSERT_NE(f, nullptr);
      ASSERT_EQ(std::fwrite(png.data(), 1, png.size(), f), png.size());
      std::fclose(f);
    }
    auto got = diffusion::ReadPng(file);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    diffusion::GenerateOptions o = io.defaults;
    o.prompt = "a red cube";
    o.seed = 5 + static_cast<uint64_t>(i);
    auto want = diffusion::Generate(**alone, o, nullptr, {}, nullptr);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    EXPECT_EQ(got->width, 64);
    EXPECT_EQ(got->height, 64);
    EXPECT_TRUE(got->rgb == want->rgb) << "image " << i;
    ASSERT_EQ(got->text.size(), 1u);
    EXPECT_NE(got->text[0].second.find("Seed: " + std::to_string(5 + i)), std::string::npos)
        << got->text[0].second;
  }
  ExpectError(Post("/v1/images/generations", R"({"prompt":"x","n":3})"), 400, "n");
  ExpectError(Post("/v1/images/generations", R"({"prompt":"x","size":"65x64"})"), 400, "");
  ExpectError(Post("/v1/images/generations", R"({"prompt":"x","response_format":"url"})"), 400,
              "b64_json");
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

}  // namespace
}  // namespace sluice::server::testing
