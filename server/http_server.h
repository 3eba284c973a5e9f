// HttpServer: the OpenAI-compatible HTTP front of `sluice serve` (cpp-httplib).
//
//   POST /v1/chat/completions   chat, streamed (server-sent events) or not
//   POST /v1/completions        raw text continuation, streamed or not
//   GET  /v1/models             the one loaded model
//   GET  /health                {"status":"ok"} once the model is loaded
//   GET  /metrics               Prometheus text: tokens, steps, expert I/O, queue, sequences
//   GET  /                      the chat page (server/chat_page.html, built in)
//   POST /v1/images/generations text to image (b64_json PNGs) when a diffusion model is loaded
//                               (server/images.h); 404 naming --diffusion-model otherwise
//
// Requests are parsed and tokenized on the connection's thread and run by the batch scheduler
// (server/batch_scheduler.h). Errors have OpenAI's shape and the matching status: 400 bad request,
// 401 missing or wrong key, 404 unknown path, 413 body too large, 503 queue full (Retry-After),
// 500 a failure while generating. A streamed client that goes away cancels its request at the
// next step; a non-streamed one is detected by the whitespace the body starts with while it
// waits (JSON allows it), after the first second.
//
// Safety: binds 127.0.0.1 unless told otherwise; with --api-key every /v1 and /metrics request
// needs "Authorization: Bearer KEY"; CORS headers only for --cors ORIGIN; read and write timeouts
// bound slow clients; the body size is capped before it is read.
//
// Thread-safety: Run blocks; Stop may be called from any thread (or a signal-watching one).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/base/status.h"
#include "llm/engine.h"
#include "server/batch_scheduler.h"
#include "server/images.h"
#include "server/openai_api.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace sluice::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;          // 0: any free port (port() says which)
  std::string api_key;      // empty: no key needed
  std::string cors_origin;  // empty: no CORS headers
  size_t max_body_bytes = 1 << 20;
  int64_t max_prompt_tokens = -1;  // -1: the context minus one
  double timeout_seconds = 600;    // per request, from arrival; 0: none
  int read_timeout_seconds = 30;   // a client sending its request slower than this is dropped
  int write_timeout_seconds = 30;
  int http_threads = 16;  // connections served at once
  std::string model_name = "sluice";
  RequestDefaults defaults;
  bool fixed_seed = false;  // true: a request without `seed` uses defaults.sampling.seed (--seed);
                            // false: a random one
  ImageService* images = nullptr;  // the diffusion model, or null (must outlive the server)
};

class HttpServer {
 public:
  // Everything must outlive the server.
  static Result<std::unique_ptr<HttpServer>> Create(BatchScheduler* scheduler, Engine* engine,
                                                    const Tokenizer* tokenizer,
                                                    const ChatTemplate* chat_template,
                                                    const ServerOptions& options);
  ~HttpServer();

  // Binds host:port (IoError naming them when it cannot).
  Status Bind();
  int port() const { return port_; }
  // Serves until Stop().
  Status Run();
  void Stop();

 private:
  HttpServer() = default;
  void Routes();
  void Generate(const httplib::Request& req, httplib::Response& res, bool chat);
  void GenerateImages(const httplib::Request& req, httplib::Response& res);
  std::string Metrics() const;

  BatchScheduler* scheduler_ = nullptr;
  Engine* engine_ = nullptr;
  const Tokenizer* tokenizer_ = nullptr;
  const ChatTemplate* chat_template_ = nullptr;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  int port_ = 0;
  uint64_t started_ns_ = 0;
  std::atomic<uint64_t> next_id_{1};
  std::atomic<int64_t> http_requests_{0};
  std::atomic<int64_t> http_errors_{0};
};

}  // namespace sluice::server
