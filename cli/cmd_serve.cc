// `sluice serve`: the OpenAI-compatible server (server/http_server.h) on one engine, with
// --parallel conversations decoding together (server/batch_scheduler.h). Ctrl-C (or SIGTERM)
// stops it: requests in flight end, the port is released.
#include <gflags/gflags.h>
#include <poll.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/chat_setup.h"
#include "cli/command.h"
#include "cli/diffusion_setup.h"
#include "cli/engine_flags.h"
#include "cli/interrupt.h"
#include "core/base/log.h"
#include "server/batch_scheduler.h"
#include "server/http_server.h"
#include "server/images.h"

DEFINE_string(host, "127.0.0.1",
              "Address to listen on. Anything but loopback warns unless --api-key is set.");
DEFINE_int32(port, 8080, "Port to listen on. 0: any free port (printed at start).");
DEFINE_string(api_key, "", "Require \"Authorization: Bearer KEY\" on /v1/* and /metrics.");
DEFINE_string(api_key_file, "", "Read the API key from this file (first line).");
DEFINE_string(cors, "",
              "Allow browser pages from this origin (e.g. http://localhost:3000). "
              "Empty: no CORS headers.");
DEFINE_int32(parallel, 4,
             "Conversations generating at once (each has its own KV cache of --ctx positions; "
             "they share every expert read).");
DEFINE_int32(max_queue, 64, "Requests waiting for a free conversation slot; beyond: HTTP 503.");
DEFINE_int64(max_body, 1 << 20, "Largest request body in bytes; beyond: HTTP 413.");
DEFINE_int64(max_tokens, -1,
             "Largest max_tokens a request may ask for, and the default when it asks none "
             "(-1: no cap, a reply runs to an end token or the context's end; -n sets the "
             "default alone).");
DEFINE_int64(max_prompt_tokens, -1, "Largest prompt in tokens. -1: the context minus one.");
DEFINE_double(timeout, 600, "Seconds a request may take from arrival to its last token. 0: none.");
DEFINE_int32(threads_http, 0,
             "HTTP connections served at once. 0: --parallel + --max-queue + 4, at least 8.");
DEFINE_string(alias, "", "The model name /v1/models reports. Empty: the model file's name.");
DECLARE_string(taesd);
DEFINE_string(diffusion_model, "",
              "Also serve POST /v1/images/generations with this Stable Diffusion checkpoint "
              "(safetensors or GGUF, as `sluice diffuse -m`): its weights are mapped, resident, "
              "beside --ram's budget for the language model; one image is made at a time, with "
              "the model's default steps, guidance and size unless the request names them.");
DEFINE_int32(max_images, 4, "Largest n of an image request.");

DECLARE_int32(n_predict);
DECLARE_int64(seed);

namespace sluice::cli {
namespace {

std::string ApiKey() {
  if (FLAGS_api_key_file.empty()) return FLAGS_api_key;
  std::ifstream in(FLAGS_api_key_file);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

int RunServe(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("serve takes no arguments (got '" + args[0] + "')");
  if (FLAGS_parallel < 1 || FLAGS_parallel > 256) {
    return Fail("--parallel " + std::to_string(FLAGS_parallel) + ": expected 1..256");
  }
  if (FLAGS_max_queue < 0) return Fail("--max-queue must be >= 0");
  if (FLAGS_max_body < 1024) return Fail("--max-body must be >= 1024 bytes");
  if (FLAGS_max_tokens < -1 || FLAGS_max_tokens == 0) {
    return Fail("--max-tokens " + std::to_string(FLAGS_max_tokens) + ": expected -1 or >= 1");
  }
  if (FLAGS_max_prompt_tokens < -1) return Fail("--max-prompt-tokens must be -1 or >= 0");
  if (!(FLAGS_timeout >= 0)) return Fail("--timeout must be >= 0 seconds");
  if (FLAGS_threads_http < 0) return Fail("--threads-http must be >= 0");
  if (FLAGS_max_images < 1 || FLAGS_max_images > 64) return Fail("--max-images: expected 1..64");
  const std::string key = ApiKey();
  if (!FLAGS_api_key_file.empty() && key.empty()) {
    return Fail("--api-key-file " + FLAGS_api_key_file + ": cannot read a key from it");
  }

  InstallInterruptHandler(/*also_terminate=*/true);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is a failed write, not a dead server
  Result<GenerationSetup> setup =
      SetUpGeneration({.need_chat_template = true,
                       .sequences = FLAGS_parallel,
                       .default_cache_policy = EvictionPolicyKind::kLfuDecay,
                       .default_batch = kDefaultServeBatch});
  if (!setup.ok()) return Fail(setup.status().message());

  auto scheduler = server::BatchScheduler::Create(
      setup->engine.get(), setup->tokenizer.get(),
      {.max_sequences = FLAGS_parallel, .max_queued = FLAGS_max_queue});
  if (!scheduler.ok()) return Fail(scheduler.status().message());

  server::ServerOptions o;
  o.host = FLAGS_host;
  o.port = FLAGS_port;
  o.api_key = key;
  o.cors_origin = FLAGS_cors;
  o.max_body_bytes = static_cast<size_t>(FLAGS_max_body);
  o.max_prompt_tokens = FLAGS_max_prompt_tokens;
  o.timeout_seconds = FLAGS_timeout;
  o.http_threads = FLAGS_threads_http > 0 ? FLAGS_threads_http
                                          : std::max(8, FLAGS_parallel + FLAGS_max_queue + 4);
  o.model_name = FLAGS_alias.empty() ? setup->model_name : FLAGS_alias;
  o.defaults.sampling = setup->token_engine->sampler_options();
  o.defaults.max_tokens = setup->session_options.max_reply_tokens;
  o.defaults.max_tokens_limit = FLAGS_max_tokens;
  if (FLAGS_max_tokens > 0 &&
      (o.defaults.max_tokens < 0 || o.defaults.max_tokens > FLAGS_max_tokens)) {
    o.defaults.max_tokens = FLAGS_max_tokens;
  }
  o.defaults.enable_thinking = setup->session_options.thinking;
  o.fixed_seed = FLAGS_seed >= 0;  // --seed: the seed of every request that names none
  std::unique_ptr<server::ImageService> images;
  if (!FLAGS_diffusion_model.empty()) {
    auto model = diffusion::DiffusionModel::Load(
        FLAGS_diffusion_model, diffusion::DiffusionLoadOptions{.taesd_path = FLAGS_taesd});
    if (!model.ok()) return Fail(model.status().ToString());
    server::ImageServiceOptions io;
    io.max_images = FLAGS_max_images;
    io.model_name = std::filesystem::path(ModelName(FLAGS_diffusion_model)).stem().string();
    io.version = SLUICE_VERSION;
    if (Status s = ApplyModelDefaults(**model, FLAGS_diffusion_model, DiffuseDefaultsFromFlags(),
                                      &io.defaults);
        !s.ok()) {
      return Fail(s.message());
    }
    auto service = server::ImageService::Create(std::move(*model), io);
    if (!service.ok()) return Fail(service.status().message());
    images = std::move(*service);
    o.images = images.get();
    LOG(INFO) << "serve: images from " << FLAGS_diffusion_model << " at /v1/images/generations ("
              << io.defaults.width << "x" << io.defaults.height << ", " << io.defaults.steps
              << " steps by default)";
  }
  auto http = server::HttpServer::Create(scheduler->get(), setup->engine.get(),
                                         setup->tokenizer.get(), setup->chat_template.get(), o);
  if (!http.ok()) return Fail(http.status().message());
  if (Status s = (*http)->Bind(); !s.ok()) return Fail(s.message());

  // Ctrl-C / SIGTERM: stop listening; Run returns.
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    const int fd = InterruptWakeFd();
    while (!done.load()) {
      pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
      if (poll(&p, 1, 500) > 0) {
        LOG(INFO) << "serve: stopping";
        (*http)->Stop();
        return;
      }
    }
  });
  std::fprintf(stderr,
               "sluice: serving %s on http://%s:%d (chat page at /, API at /v1; %d at once)\n",
               o.model_name.c_str(), o.host.c_str(), (*http)->port(), FLAGS_parallel);
  std::fflush(stderr);
  Status s = (*http)->Run();
  done = true;
  watcher.join();
  scheduler->reset();  // ends what is still running before the engine goes
  if (!s.ok()) return Fail(s.message());
  return 0;
}

const CommandRegistration kServe({
    .name = "serve",
    .summary = "OpenAI-compatible HTTP server and chat page; concurrent chats share expert reads",
    .usage = "sluice serve [-m MODEL] [--ram 12G] [--host 127.0.0.1] [--port 8080] [--parallel 4]\n"
             "             [--api-key KEY] [--cors ORIGIN] [--ctx N] [sampling flags]\n"
             "             [--diffusion-model SD_CHECKPOINT [--max-images 4] [--taesd FILE]\n"
             "              [--steps N] [--cfg-scale S] [--sampler NAME] [-W 512 -H 512]]",
    .description =
        "Serves POST /v1/chat/completions and /v1/completions (streamed with server-sent events\n"
        "or not), GET /v1/models, /health, /metrics (Prometheus) and a chat page at /.\n"
        "Up to --parallel requests generate together: each step decodes one token of every\n"
        "one, so an expert several of them route to is read from storage once. More requests\n"
        "wait (--max-queue), then get HTTP 503 with Retry-After. A client that disconnects\n"
        "cancels its request. The sampling flags are the defaults a request's own fields\n"
        "override; -n is the default max_tokens. The memory plan counts --parallel KV caches\n"
        "of --ctx positions within --ram. With no -m the synthetic demo model is served\n"
        "(random weights: gibberish by design). With --diffusion-model, POST\n"
        "/v1/images/generations makes images too (prompt, n, size \"WxH\", response_format\n"
        "b64_json; negative_prompt, seed, steps, cfg_scale): PNGs with their parameters, one\n"
        "generation at a time; --steps, --cfg-scale, --sampler, --schedule, -W and -H set the\n"
        "defaults a request does not name (else the model's, as `sluice diffuse`); the chat\n"
        "page then has an Image button. A client that hangs up cancels its images. Ctrl-C\n"
        "stops the server.",
    .flags = GenerationFlags({"chat_template",
                              "chat_template_file",
                              "no_think",
                              "host",
                              "port",
                              "api_key",
                              "api_key_file",
                              "cors",
                              "parallel",
                              "max_queue",
                              "max_body",
                              "max_tokens",
                              "max_prompt_tokens",
                              "timeout",
                              "threads_http",
                              "alias",
                              "diffusion_model",
                              "taesd",
                              "max_images",
                              "steps",
                              "cfg_scale",
                              "sampler",
                              "schedule",
                              "width",
                              "height"}),
    .short_flags = {{"-W", "--width"}, {"-H", "--height"}},
    .run = RunServe,
});

}  // namespace
}  // namespace sluice::cli
