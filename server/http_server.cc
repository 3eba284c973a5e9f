#include "server/http_server.h"

#include <httplib.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <future>
#include <random>

#include "chat/chat_tokens.h"
#include "core/base/clock.h"
#include "core/base/log.h"
#include "server/chat_page.h"

namespace sluice::server {
namespace {

constexpr int kWaitMs = 200;          // how often a waiting handler looks at its client
constexpr int kKeepAliveWaits = 10;   // a stream idle this many waits gets an SSE comment
constexpr int kFirstAnswerWaits = 5;  // a non-streamed reply answers with headers after these

void Reply(httplib::Response& res, const ApiError& e) {
  res.status = e.http_status;
  if (e.http_status == 503) res.set_header("Retry-After", "1");
  res.set_content(ErrorBody(e), "application/json");
}

ApiError FromStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return ApiError{.http_status = 400, .message = s.message()};
    case StatusCode::kResourceExhausted:
      return ApiError{
          .http_status = 503, .message = s.message(), .type = "server_busy", .code = "queue_full"};
    case StatusCode::kCancelled:
      return ApiError{.http_status = 503, .message = s.message(), .type = "server_busy"};
    default:
      return ApiError{.http_status = 500, .message = s.ToString(), .type = "server_error"};
  }
}

uint64_t RandomSeed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) | rd();
}

int64_t UnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsLoopback(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host.starts_with("127.");
}

// What a streamed response keeps between calls of its content provider.
struct StreamState {
  std::shared_ptr<Generation> gen;
  ResponseInfo info;
  bool include_usage = false;
  bool first = true;
  int idle_waits = 0;
};

bool WriteEvent(httplib::DataSink& sink, const std::string& json) {
  const std::string event = "data: " + json + "\n\n";
  return sink.write(event.data(), event.size());
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Create(BatchScheduler* scheduler, Engine* engine,
                                                       const Tokenizer* tokenizer,
                                                       const ChatTemplate* chat_template,
                                                       const ServerOptions& options) {
  CHECK(scheduler != nullptr && engine != nullptr && tokenizer != nullptr &&
        chat_template != nullptr);
  if (options.port < 0 || options.port > 65535) {
    return InvalidArgument("port ", options.port, " is outside 0..65535");
  }
  if (options.http_threads < 1) return InvalidArgument("HTTP threads must be >= 1");
  std::unique_ptr<HttpServer> s(new HttpServer());
  s->scheduler_ = scheduler;
  s->engine_ = engine;
  s->tokenizer_ = tokenizer;
  s->chat_template_ = chat_template;
  s->options_ = options;
  s->http_ = std::make_unique<httplib::Server>();
  s->started_ns_ = NowNs();
  s->Routes();
  return s;
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Bind() {
  if (!IsLoopback(options_.host) && options_.api_key.empty()) {
    LOG(WARNING) << "serve: listening on " << options_.host
                 << " without --api-key: anyone who can reach this address can use the model";
  }
  if (options_.port == 0) {
    port_ = http_->bind_to_any_port(options_.host);
    if (port_ < 0) return IoError("cannot bind ", options_.host, " to any port");
  } else {
    if (!http_->bind_to_port(options_.host, options_.port)) {
      return IoError("cannot bind ", options_.host, ":", options_.port,
                     " (in use, or not an address of this machine)");
    }
    port_ = options_.port;
  }
  return Status::Ok();
}

Status HttpServer::Run() {
  if (!http_->listen_after_bind()) return IoError("the HTTP server stopped with an error");
  return Status::Ok();
}

void HttpServer::Stop() {
  if (http_ != nullptr) http_->stop();
}

void HttpServer::Routes() {
  httplib::Server& h = *http_;
  const int threads = options_.http_threads;
  h.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  h.set_payload_max_length(options_.max_body_bytes);
  h.set_read_timeout(options_.read_timeout_seconds, 0);
  h.set_write_timeout(options_.write_timeout_seconds, 0);

  // Every request: count it, answer CORS preflights, check the key.
  h.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    ++http_requests_;
    if (!options_.cors_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", options_.cors_origin);
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      if (req.method == "OPTIONS") {
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    const bool open = req.path == "/" || req.path == "/health";
    if (!options_.api_key.empty() && !open &&
        req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
      Reply(res, ApiError{.http_status = 401,
                          .message = "missing or wrong API key (Authorization: Bearer KEY)",
                          .type = "authentication_error",
                          .code = "invalid_api_key"});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  h.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
    ++http_errors_;
    if (!res.body.empty()) return;  // ours already
    std::string message = "no route for " + req.method + " " + req.path;
    if (res.status == 413) {
      message = "the body is larger than " + std::to_string(options_.max_body_bytes) +
                " bytes (--max-body)";
    } else if (res.status != 404) {
      message = "HTTP " + std::to_string(res.status);
    }
    res.set_content(ErrorBody(ApiError{.http_status = res.status, .message = message}),
                    "application/json");
  });
  h.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        Reply(res, ApiError{.http_status = 500, .message = what, .type = "server_error"});
      });

  h.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(ChatPageHtml()), "text/html; charset=utf-8");
  });
  h.Get("/health", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"({"status":"ok"})", "application/json");
  });
  h.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    const std::string body =
        ModelsBody(UnixSeconds(), options_.model_name,
                   options_.images != nullptr ? options_.images->model_name() : std::string());
    res.set_content(body, "application/json");
  });
  h.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(Metrics(), "text/plain; version=0.0.4");
  });
  h.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Generate(req, res, /*chat=*/true);
  });
  h.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Generate(req, res, /*chat=*/false);
  });
  h.Post("/v1/images/generations",
         [this](const httplib::Request& req, httplib::Response& res) { GenerateImages(req, res); });
}

void HttpServer::GenerateImages(const httplib::Request& req, httplib::Response& res) {
  if (options_.images == nullptr) {
    return Reply(res, ApiError{.http_status = 404,
                               .message = "no diffusion model is loaded: start the server with "
                                          "--diffusion-model CHECKPOINT to serve images",
                               .code = "model_not_found"});
  }
  ImageRequest request;
  if (auto e = ParseImageRequest(req.body, options_.images->max_images(), &request)) {
    return Reply(res, *e);
  }
  // The images are made on their own thread while this one watches the client as a
  // non-streamed chat reply does: errors that show at once keep their status; after that the
  // answer is 200 with a space a second until the body, and a failed write (the client gone)
  // cancels the generation at its next step.
  struct ImageJob {
    ~ImageJob() { cancel = true; }  // then `result`'s destructor waits for the thread
    std::atomic<bool> cancel{false};
    ImageRequest request;
    int idle_waits = 0;
    std::future<Result<std::vector<std::string>>> result;  // last: destroyed first
  };
  auto job = std::make_shared<ImageJob>();
  job->request = std::move(request);
  ImageService* images = options_.images;
  ImageJob* j = job.get();
  job->result = std::async(std::launch::async,
                           [images, j] { return images->Generate(j->request, &j->cancel); });
  auto answer = [job](Result<std::vector<std::string>> pngs) -> std::pair<int, std::string> {
    if (pngs.ok()) return {200, ImagesBody(UnixSeconds(), *pngs, job->request.prompt)};
    const bool bad = pngs.status().code() == StatusCode::kInvalidArgument;
    const ApiError e{.http_status = bad ? 400 : 500,
                     .message = pngs.status().message(),
                     .type = bad ? "invalid_request_error" : "server_error"};
    return {e.http_status, ErrorBody(e)};
  };
  const auto wait = std::chrono::milliseconds(kWaitMs);
  for (int i = 0; i < kFirstAnswerWaits; ++i) {
    if (job->result.wait_for(wait) == std::future_status::ready) {
      auto [status, body] = answer(job->result.get());
      res.status = status;
      res.set_content(body, "application/json");
      return;
    }
  }
  res.set_chunked_content_provider(
      "application/json",
      [job, answer, wait](size_t, httplib::DataSink& sink) {
        if (job->result.wait_for(wait) != std::future_status::ready) {
          if (++job->idle_waits >= 5) {
            job->idle_waits = 0;
            if (!sink.write(" ", 1)) {
              job->cancel = true;
              return false;
            }
          }
          return true;
        }
        const std::string body = answer(job->result.get()).second;
        const bool ok = sink.write(body.data(), body.size());
        sink.done();
        return ok;
      },
      [job](bool success) {
        if (!success) job->cancel = true;
      });
}

void HttpServer::Generate(const httplib::Request& req, httplib::Response& res, bool chat) {
  const uint64_t arrived = NowNs();
  GenerationParams params;
  GenerationRequest request;
  if (chat) {
    ChatRequest r;
    if (auto e = ParseChatRequest(req.body, options_.defaults, &r)) return Reply(res, *e);
    params = r.params;
    const std::vector<std::vector<int32_t>> generated(r.messages.size());
    request.prompt = ConversationTokens(
        *chat_template_, *tokenizer_, r.messages, generated,
        RenderOptions{.add_generation_prompt = true, .enable_thinking = r.enable_thinking});
    request.stop_tokens = chat_template_->StopTokens(*tokenizer_);
    request.chat_template = chat_template_;
  } else {
    CompletionRequest r;
    if (auto e = ParseCompletionRequest(req.body, options_.defaults, &r)) return Reply(res, *e);
    params = r.params;
    request.prompt = tokenizer_->Encode(
        r.prompt, EncodeOptions{.add_bos = tokenizer_->add_bos(), .parse_special = true});
    request.stop_tokens = chat_template_->StopTokens(*tokenizer_);
  }
  const int64_t max_prompt =
      options_.max_prompt_tokens >= 0 ? options_.max_prompt_tokens : engine_->n_ctx() - 1;
  if (static_cast<int64_t>(request.prompt.size()) > max_prompt) {
    return Reply(res, ApiError{.http_status = 400,
                               .message = "the prompt is " + std::to_string(request.prompt.size()) +
                                          " tokens; at most " + std::to_string(max_prompt) +
                                          " are allowed (--max-prompt-tokens, --ctx)",
                               .param = chat ? "messages" : "prompt",
                               .code = "context_length_exceeded"});
  }
  request.sampling = params.sampling;
  if (!params.seed_given && !options_.fixed_seed) request.sampling.seed = RandomSeed();
  request.max_tokens = params.max_tokens;
  request.stop = params.stop;
  if (options_.timeout_seconds > 0) {
    request.deadline_ns = arrived + static_cast<uint64_t>(options_.timeout_seconds * 1e9);
  }
  Result<std::shared_ptr<Generation>> submitted = scheduler_->Submit(std::move(request));
  if (!submitted.ok()) return Reply(res, FromStatus(submitted.status()));

  auto st = std::make_shared<StreamState>();
  st->gen = *submitted;
  st->include_usage = params.include_usage;
  st->info = ResponseInfo{.id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++),
                          .model = params.model.empty() ? options_.model_name : params.model,
                          .created = UnixSeconds(),
                          .chat = chat};
  if (params.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [st](size_t, httplib::DataSink& sink) {
          Generation::Update u = st->gen->Wait(kWaitMs);
          if (!u.text.empty()) {
            st->idle_waits = 0;
            if (!WriteEvent(sink, ChunkJson(st->info, u.text, st->first, std::nullopt, nullptr))) {
              st->gen->Cancel();
              return false;
            }
            st->first = false;
            return true;
          }
          if (!u.done) {
            // An idle stream still writes now and then: it is how a gone client is noticed.
            if (++st->idle_waits >= kKeepAliveWaits) {
              st->idle_waits = 0;
              static constexpr char kComment[] = ": waiting\n\n";
              if (!sink.write(kComment, sizeof(kComment) - 1)) {
                st->gen->Cancel();
                return false;
              }
            }
            return true;
          }
          bool ok = true;
          if (u.reason == FinishReason::kError) {
            ok = WriteEvent(sink, ErrorBody(FromStatus(u.error)));
          } else {
            if (st->first)
              ok = WriteEvent(sink, ChunkJson(st->info, "", true, std::nullopt, nullptr));
            ok = ok && WriteEvent(sink, ChunkJson(st->info, "", false, u.reason, &u.stats));
            if (st->include_usage) {
              ok = ok && WriteEvent(sink, ChunkJson(st->info, "", false, std::nullopt, &u.stats));
            }
          }
          static constexpr char kDone[] = "data: [DONE]\n\n";
          ok = ok && sink.write(kDone, sizeof(kDone) - 1);
          sink.done();
          return ok;
        },
        [st](bool success) {
          if (!success) st->gen->Cancel();
        });
    return;
  }
  // Not streamed: wait a little with the status still open (most failures show by then) ...
  std::string text;
  for (int i = 0; i < kFirstAnswerWaits; ++i) {
    Generation::Update u = st->gen->Wait(kWaitMs);
    text += u.text;
    if (u.done) {
      if (u.reason == FinishReason::kError) return Reply(res, FromStatus(u.error));
      res.set_content(CompletionBody(st->info, text, u.reason, u.stats), "application/json");
      return;
    }
  }
  // ... then answer 200 and keep writing a space a second until the body: a closed client is
  // noticed by the failed write and its request cancelled.
  auto collected = std::make_shared<std::string>(std::move(text));
  res.set_chunked_content_provider(
      "application/json",
      [st, collected](size_t, httplib::DataSink& sink) {
        Generation::Update u = st->gen->Wait(kWaitMs);
        *collected += u.text;
        if (!u.done) {
          if (++st->idle_waits >= 5) {
            st->idle_waits = 0;
            if (!sink.write(" ", 1)) {
              st->gen->Cancel();
              return false;
            }
          }
          return true;
        }
        const std::string body = u.reason == FinishReason::kError
                                     ? ErrorBody(FromStatus(u.error))
                                     : CompletionBody(st->info, *collected, u.reason, u.stats);
        const bool ok = sink.write(body.data(), body.size());
        sink.done();
        return ok;
      },
      [st](bool success) {
        if (!success) st->gen->Cancel();
      });
}

std::string HttpServer::Metrics() const {
  const SchedulerMetrics m = scheduler_->metrics();
  const double seconds = (NowNs() - started_ns_) / 1e9;
  const double lookups = static_cast<double>(m.engine.cache.hits + m.engine.cache.misses);
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, double value) {
    char line[512];
    std::snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name,
                  type, name, value);
    out += line;
  };
  metric("sluice_requests_total", "counter", "Generation requests accepted.",
         static_cast<double>(m.requests));
  metric("sluice_requests_rejected_total", "counter", "Requests refused: the queue was full.",
         static_cast<double>(m.rejected));
  metric("sluice_http_requests_total", "counter", "HTTP requests received.",
         static_cast<double>(http_requests_.load()));
  metric("sluice_prompt_tokens_total", "counter", "Prompt tokens computed (cached excluded).",
         static_cast<double>(m.prompt_tokens));
  metric("sluice_generated_tokens_total", "counter", "Tokens generated.",
         static_cast<double>(m.generated_tokens));
  metric("sluice_steps_total", "counter", "Forward steps (all sequences together).",
         static_cast<double>(m.steps));
  metric("sluice_busy_seconds_total", "counter", "Time spent in forward steps.", m.busy_ns / 1e9);
  metric("sluice_tokens_per_second", "gauge",
         "Generated tokens per second of forward steps since start.",
         m.busy_ns == 0 ? 0.0 : m.generated_tokens * 1e9 / m.busy_ns);
  metric("sluice_expert_hit_ratio", "gauge", "Expert cache hits per lookup since start.",
         lookups > 0 ? m.engine.cache.hits / lookups : 1.0);
  metric("sluice_expert_bytes_read_total", "counter", "Bytes read from storage for experts.",
         static_cast<double>(m.engine.cache.bytes_read));
  metric("sluice_expert_reads_in_flight", "gauge", "Expert reads submitted, not complete.",
         static_cast<double>(m.engine.cache.reads_in_flight));
  metric("sluice_queue_length", "gauge", "Requests waiting for a sequence.",
         static_cast<double>(m.queued));
  metric("sluice_active_sequences", "gauge", "Requests generating now.",
         static_cast<double>(m.active));
  metric("sluice_uptime_seconds", "gauge", "Seconds since the server started.", seconds);
  return out;
}

}  // namespace sluice::server
