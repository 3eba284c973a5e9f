#include "cli/engine_flags.h"

#include <gflags/gflags.h>
#include <unistd.h>

#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "core/base/memory_limit.h"

DEFINE_int64(ctx, 0,
             "Context length (KV cache positions). 0: the model's context_length, at most 4096.");
DEFINE_string(kv_type, "f16", "KV cache element type: f16 (half the memory) or f32 (exact).");
DEFINE_string(dense, "copy",
              "Dense weights residency: copy (anonymous memory; file pages dropped), mlock (lock "
              "the mapping) or mmap (the page cache decides).");
DEFINE_string(expert_source, "cache",
              "Where routed experts come from: cache (read into the RAM-budgeted expert cache) or "
              "mmap (computed straight from the mapped file, the naive baseline).");
DEFINE_int32(batch, 0,
             "Prompt tokens processed per forward batch. 0: 256 (each expert then multiplies "
             "the tokens of 256 prompt positions routed to it at once: prompt tok/s 1.36x that "
             "of 64 on qwen3-30b-a3b shapes, for 4x the activation scratch), and for serve 64 "
             "(a step with a prompt chunk in it stays short for the streams decoding).");
DEFINE_int32(prefetch_next, 2,
             "While decoding, read up to N of the experts the next layer will probably use (its "
             "router applied to this layer's state; for a token's first layer, to its embedding; "
             "or the routing's simulated predictor) before it routes, so the device keeps "
             "reading during attention; a wrong guess costs an expert's read. 0: read each "
             "layer's experts only once it has routed.");
DEFINE_bool(dequantize, false,
            "Dequantize every weight to f32 at load and compute in f32 (for comparisons with "
            "references computed that way; slow and large).");

DECLARE_string(ram);
DECLARE_int32(threads);
DECLARE_string(io);
DECLARE_int32(queue_depth);
DECLARE_string(cache_policy);
DECLARE_bool(mlock);
DECLARE_int32(experts);

namespace sluice::cli {

Result<EngineOptions> EngineOptionsFromFlags() {
  EngineOptions o;
  const MemoryLimit limit = ReadMemoryLimit();
  if (FLAGS_ram.empty()) {
    o.ram_budget_bytes = limit.usable_bytes() / 2;
  } else {
    Result<uint64_t> ram = ParseByteSize(FLAGS_ram);
    if (!ram.ok()) return InvalidArgument("--ram: ", ram.status().message());
    o.ram_budget_bytes = *ram;
    if (limit.cgroup_bytes != 0 && *ram > limit.cgroup_bytes) {
      LOG(WARNING) << "--ram " << FormatBytes(*ram) << " is above this container's memory limit "
                   << FormatBytes(limit.cgroup_bytes)
                   << " (cgroup memory.max): the kernel may kill the process first";
    }
  }
  if (FLAGS_threads < 0) return InvalidArgument("--threads ", FLAGS_threads, ": must be >= 0");
  o.threads = FLAGS_threads;
  if (FLAGS_ctx < 0) return InvalidArgument("--ctx ", FLAGS_ctx, ": must be >= 0");
  o.context_length = FLAGS_ctx;
  if (FLAGS_experts < 0) return InvalidArgument("--experts ", FLAGS_experts, ": must be >= 0");
  o.experts_per_token = FLAGS_experts;
  if (FLAGS_batch < 0) return InvalidArgument("--batch ", FLAGS_batch, ": must be >= 0");
  o.batch_size = FLAGS_batch > 0 ? FLAGS_batch : kDefaultPromptBatch;
  if (FLAGS_kv_type == "f16") {
    o.kv_type = KvType::kF16;
  } else if (FLAGS_kv_type == "f32") {
    o.kv_type = KvType::kF32;
  } else {
    return InvalidArgument("--kv-type '", FLAGS_kv_type, "': expected f16 or f32");
  }
  ASSIGN_OR_RETURN(o.dense, ParseDenseResidency(FLAGS_dense));
  ASSIGN_OR_RETURN(o.expert_source, ParseExpertSource(FLAGS_expert_source));
  o.dequantize_weights = FLAGS_dequantize;
  ASSIGN_OR_RETURN(o.io, ParseIoBackendKind(FLAGS_io));
  if (FLAGS_queue_depth < 1) {
    return InvalidArgument("--queue-depth ", FLAGS_queue_depth, ": must be >= 1");
  }
  o.queue_depth = FLAGS_queue_depth;
  ASSIGN_OR_RETURN(o.cache_policy, ParseEvictionPolicy(FLAGS_cache_policy));
  o.lock_memory = FLAGS_mlock;
  if (FLAGS_prefetch_next < 0 || FLAGS_prefetch_next > kMaxExpertsPerToken) {
    return InvalidArgument("--prefetch-next ", FLAGS_prefetch_next, ": expected 0..",
                           kMaxExpertsPerToken);
  }
  o.prefetch_next = FLAGS_prefetch_next;
  return o;
}

bool BatchFlagIsDefault() { return FLAGS_batch == 0; }

bool CachePolicyFlagIsDefault() {
  gflags::CommandLineFlagInfo info;
  return gflags::GetCommandLineFlagInfo("cache_policy", &info) && info.is_default;
}

const std::vector<const char*>& EngineFlagNames() {
  static const std::vector<const char*> names = {
      "model",   "ram",         "threads",       "experts", "ctx",
      "kv_type", "dense",       "expert_source", "batch",   "dequantize",
      "io",      "queue_depth", "cache_policy",  "mlock",   "prefetch_next"};
  return names;
}

}  // namespace sluice::cli
