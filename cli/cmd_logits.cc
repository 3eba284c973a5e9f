// sluice logits: the logits of every prompt position, for checking sluice against another
// implementation (docs/logits.md). Also the resident decode benchmark of issue 4 (--bench).
#include <gflags/gflags.h>

#include <bit>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/decode_bench.h"
#include "chat/sampler.h"
#include "cli/command.h"
#include "cli/engine_flags.h"
#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "llm/engine.h"

DEFINE_string(
    tokens, "",
    "logits: prompt token ids, separated by commas or spaces; @FILE reads them from FILE.");
DEFINE_int32(greedy, 0,
             "logits: after the prompt, generate N tokens greedily (argmax, ties to the lowest id) "
             "and print their ids on stdout.");
DEFINE_string(gen_out, "",
              "logits: write the logits each greedy token was chosen from, float32 [N][n_vocab].");
DEFINE_bool(bench, false,
            "logits: decode benchmark with every expert resident: tokens/s against the weight "
            "bytes each token touches and the DRAM read bandwidth measured in the same run "
            "(needs --greedy N and a --ram that holds the whole model, or 0).");

DECLARE_string(model);
DECLARE_string(out);

namespace sluice::cli {
namespace {

static_assert(std::endian::native == std::endian::little,
              "logits files are little-endian float32; add a byte swap for big-endian hosts");

Result<std::vector<int32_t>> ParseTokens(const std::string& flag) {
  std::string text = flag;
  if (!flag.empty() && flag[0] == '@') {
    std::ifstream in(flag.substr(1));
    if (!in) return NotFound("--tokens: cannot read ", flag.substr(1));
    std::stringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  std::vector<int32_t> ids;
  std::string item;
  for (char& c : text) {
    if (c == ',' || c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  std::istringstream in(text);
  while (in >> item) {
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (...) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > INT32_MAX) {
      return InvalidArgument("--tokens: '", item, "' is not a token id");
    }
    ids.push_back(static_cast<int32_t>(v));
  }
  if (ids.empty()) return InvalidArgument("--tokens: no token ids given");
  return ids;
}

Status WriteFloats(const std::string& path, std::span<const float> values) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return IoError(path, ": cannot create: ", ErrnoString(errno));
  const size_t n = std::fwrite(values.data(), sizeof(float), values.size(), f);
  const bool closed = std::fclose(f) == 0;
  if (n != values.size() || !closed) return IoError(path, ": write failed: ", ErrnoString(errno));
  return Status::Ok();
}

Status Run() {
  if (FLAGS_model.empty()) return InvalidArgument("-m MODEL is required");
  if (FLAGS_greedy < 0) return InvalidArgument("--greedy ", FLAGS_greedy, ": must be >= 0");
  if (FLAGS_out.empty() && FLAGS_greedy == 0 && !FLAGS_bench) {
    return InvalidArgument("nothing to do: give --out FILE and/or --greedy N");
  }
  if (FLAGS_bench && FLAGS_greedy == 0) return InvalidArgument("--bench needs --greedy N");
  ASSIGN_OR_RETURN(std::vector<int32_t> tokens, ParseTokens(FLAGS_tokens));
  ASSIGN_OR_RETURN(EngineOptions options, EngineOptionsFromFlags());
  ASSIGN_OR_RETURN(std::unique_ptr<Engine> engine, Engine::Open(FLAGS_model, options));
  const int64_t n_vocab = engine->config().n_vocab;
  if (FLAGS_bench) RETURN_IF_ERROR(engine->PreloadExperts());

  std::vector<float> logits;
  if (!FLAGS_out.empty()) logits.resize(tokens.size() * n_vocab);
  RETURN_IF_ERROR(engine->Prefill(tokens, logits));
  const EngineCounters prefill = engine->counters();
  LOG(INFO) << "prefill: " << prefill.prompt_tokens << " tokens in " << prefill.prefill_ns / 1e9
            << " s (" << prefill.prompt_tokens / (prefill.prefill_ns / 1e9) << " tok/s), "
            << prefill.moe.expert_loads << " expert loads, " << prefill.cache.misses
            << " cache misses, " << FormatBytes(prefill.cache.bytes_read) << " read, I/O wait "
            << prefill.moe.expert_wait_ns / 1e9 << " s";
  if (!FLAGS_out.empty()) RETURN_IF_ERROR(WriteFloats(FLAGS_out, logits));

  if (FLAGS_greedy > 0) {
    engine->ResetCounters();
    std::vector<float> gen_logits;
    std::vector<int32_t> generated;
    for (int i = 0; i < FLAGS_greedy; ++i) {
      if (!FLAGS_gen_out.empty()) {
        gen_logits.insert(gen_logits.end(), engine->logits().begin(), engine->logits().end());
      }
      const int32_t id = ArgMax(engine->logits());
      generated.push_back(id);
      RETURN_IF_ERROR(engine->Decode(id));
    }
    for (size_t i = 0; i < generated.size(); ++i) {
      std::printf(i == 0 ? "%d" : " %d", generated[i]);
    }
    std::printf("\n");
    std::fflush(stdout);
    if (!FLAGS_gen_out.empty()) RETURN_IF_ERROR(WriteFloats(FLAGS_gen_out, gen_logits));
  }
  if (FLAGS_bench) {
    ASSIGN_OR_RETURN(DecodeBenchReport report, MeasureDecodeBench(*engine));
    std::fprintf(stderr, "%s", FormatDecodeBench(report).c_str());
  }
  return Status::Ok();
}

int RunLogits(const std::vector<std::string>& args) {
  if (!args.empty()) return Fail("logits takes no positional arguments (use --tokens)");
  Status s = Run();
  if (!s.ok()) return Fail(s.ToString());
  return 0;
}

std::vector<const char*> LogitsFlags() {
  std::vector<const char*> flags = {"tokens", "out", "greedy", "gen_out", "bench"};
  for (const char* f : EngineFlagNames()) flags.push_back(f);
  return flags;
}

const CommandRegistration kLogits({
    .name = "logits",
    .summary = "write the logits of every prompt position (to check against other engines)",
    .usage = "sluice logits -m MODEL --tokens 1,2,3,... [--greedy N] --out FILE [--ram ...]",
    .description =
        "Runs the prompt through the model in batches and writes the float32 logits of every\n"
        "position, row-major [n_prompt][n_vocab], little-endian, to --out (row i predicts the\n"
        "token after prompt token i). With --greedy N it then generates N tokens greedily and\n"
        "prints their ids on one line on stdout; --gen-out writes the logits they were chosen\n"
        "from. --kv-type f32 and --dequantize give the tightest comparisons; docs/logits.md\n"
        "explains the format and what agreement to expect. --bench measures resident decode\n"
        "speed against the bytes of weights each token touches (docs/benchmarks.md).",
    .flags = LogitsFlags(),
    .run = RunLogits,
});

}  // namespace
}  // namespace sluice::cli
