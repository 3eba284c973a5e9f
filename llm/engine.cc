#include "llm/engine.h"

#include <algorithm>
#include <thread>

#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "io/model_open.h"
#include "llm/tensor_plan.h"

namespace sluice {
namespace {}  // namespace

Result<std::unique_ptr<Engine>> Engine::Open(const std::string& path,
                                             const EngineOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<ModelFile> model, OpenModelFile(path));
  return Create(std::move(model), options);
}

Result<std::unique_ptr<Engine>> Engine::Create(std::unique_ptr<ModelFile> model,
                                               const EngineOptions& options) {
  CHECK(model != nullptr);
  std::unique_ptr<Engine> engine(new Engine());
  engine->options_ = options;
  engine->model_ = std::move(model);
  RETURN_IF_ERROR(engine->Init());
  return engine;
}

Engine::~Engine() = default;

Status Engine::Init() {
  const EngineOptions& o = options_;
  ASSIGN_OR_RETURN(config_, ReadModelConfig(model_->metadata()));
  const ModelConfig& c = config_;

  experts_per_token_ = o.experts_per_token > 0 ? o.experts_per_token : c.n_expert_used;
  if (experts_per_token_ > c.n_expert || experts_per_token_ > kMaxExpertsPerToken) {
    return InvalidArgument("experts per token ", experts_per_token_, " exceeds the model's ",
                           c.n_expert, " experts (or the limit ", kMaxExpertsPerToken, ")");
  }
  if (experts_per_token_ > c.n_expert_groups_used * (c.n_expert / c.n_expert_groups)) {
    return InvalidArgument("experts per token ", experts_per_token_, " exceeds the ",
                           c.n_expert_groups_used * (c.n_expert / c.n_expert_groups),
                           " experts of the ", c.n_expert_groups_used,
                           " expert groups routing uses");
  }
  if (experts_per_token_ != c.n_expert_used) {
    LOG(WARNING) << "using " << experts_per_token_ << " experts per token instead of the model's "
                 << c.n_expert_used << ": "
                 << (experts_per_token_ < c.n_expert_used ? "faster" : "slower (more reads)")
                 << ", and the output changes";
  }
  if (o.context_length < 0 || o.context_length > kMaxContextLength) {
    return InvalidArgument("context length ", o.context_length, " is outside 1..",
                           kMaxContextLength, " (--ctx)");
  }
  if (o.batch_size < 1 || o.batch_size > kMaxBatchSize) {
    return InvalidArgument("batch size ", o.batch_size, " is outside 1..", kMaxBatchSize);
  }
  if (o.max_sequences < 1 || o.max_sequences > kMaxSequences) {
    return InvalidArgument("max_sequences ", o.max_sequences, " is outside 1..", kMaxSequences);
  }
  n_ctx_ = o.context_length > 0 ? o.context_length
                                : std::min<int64_t>(c.n_ctx_train, kDefaultContextLength);
  if (n_ctx_ > c.n_ctx_train) {
    LOG(WARNING) << "context " << n_ctx_ << " exceeds the model's training context "
                 << c.n_ctx_train << "; quality past it is not guaranteed";
  }
  batch_size_ = o.batch_size;

  // Every tensor against the config before anything walks them (the memory plan visits every
  // expert): a file whose metadata disagrees with its tensors is an error naming the tensor.
  RETURN_IF_ERROR(CheckModelTensors(*model_, c));
  ASSIGN_OR_RETURN(plan_, PlanMemory(*model_, c, o, experts_per_token_, n_ctx_));
  LOG(DEBUG) << DescribeConfig(c) << "; memory: " << DescribeMemoryPlan(plan_);

  const int threads = o.threads > 0
                          ? o.threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  ASSIGN_OR_RETURN(pool_, ThreadPool::Create(threads));

  ASSIGN_OR_RETURN(weights_,
                   ModelWeights::Load(*model_, c,
                                      WeightOptions{.residency = o.dense,
                                                    .lock_copy = o.lock_memory,
                                                    .dequantize_to_f32 = o.dequantize_weights,
                                                    .verify_checksums = o.verify_checksums}));
  ASSIGN_OR_RETURN(own_, MakeSequence());

  if (o.expert_source == ExpertSourceKind::kCache) {
    ASSIGN_OR_RETURN(
        io_, CreateIoBackend(
                 IoOptions{.kind = o.io, .queue_depth = o.queue_depth, .faults = o.io_faults},
                 model_->file_paths()));
    ASSIGN_OR_RETURN(
        cache_, ExpertCache::Create(*model_, c.n_layer, io_.get(),
                                    WeightCacheOptions{.budget_bytes = plan_.expert_cache_bytes,
                                                       .min_resident_blocks = experts_per_token_,
                                                       .policy = o.cache_policy,
                                                       .lock_memory = o.lock_memory,
                                                       .verify_checksums = o.verify_checksums}));
    source_ = MakeCacheExpertSource(cache_.get(), c.moe(), weights_->expert_types());
  } else {
    ASSIGN_OR_RETURN(source_, MakeMappedExpertSource(*model_, c.moe(), weights_->expert_types(),
                                                     o.verify_checksums));
  }

  if (c.spec->attention == AttentionKind::kMla) {
    ASSIGN_OR_RETURN(mla_, MlaBlock::Create(c, batch_size_, n_ctx_));
  } else {
    ASSIGN_OR_RETURN(attention_, AttentionBlock::Create(c, batch_size_, n_ctx_));
  }
  if (c.n_delta_net_layers() > 0) {
    ASSIGN_OR_RETURN(delta_net_, DeltaNetBlock::Create(c, batch_size_));
  }
  ASSIGN_OR_RETURN(moe_, MoeBlock::Create(c.moe(),
                                          MoeBlockOptions{
                                              .max_tokens = batch_size_,
                                              .experts_per_token = experts_per_token_,
                                              .dequantize_experts = o.dequantize_weights,
                                              .prefetch_next = o.prefetch_next,
                                              .hook = o.routing_hook,
                                          },
                                          source_.get(), pool_.get()));
  ASSIGN_OR_RETURN(state_, RunState::Create(c.n_embd, batch_size_, c.n_ff));
  if (o.max_sequences > 1) {
    step_logits_.assign(static_cast<size_t>(o.max_sequences) * c.n_vocab, 0.0f);
  }
  return Status::Ok();
}

Result<std::unique_ptr<Sequence>> Engine::MakeSequence() {
  const int max = std::max(1, options_.max_sequences);
  if (live_sequences_ >= max) {
    return ResourceExhausted("all ", max, " sequences the memory plan reserved a KV cache for (",
                             FormatBytes(plan_.kv_bytes / max),
                             " each) are in use; raise max_sequences");
  }
  const ModelConfig& c = config_;
  std::unique_ptr<Sequence> seq(new Sequence(this));
  ASSIGN_OR_RETURN(seq->state_, RecurrentState::Create(c, options_.lock_memory));
  seq->state_.Reset();
  ASSIGN_OR_RETURN(seq->kv_, KvCache::Create(KvCacheShape{.n_layer = c.n_attention_layers(),
                                                          .n_ctx = n_ctx_,
                                                          .k_dim = c.k_dim(),
                                                          .v_dim = c.v_dim(),
                                                          .type = options_.kv_type},
                                             options_.lock_memory));
  seq->tokens_.reserve(n_ctx_);
  seq->logits_.assign(c.n_vocab, 0.0f);
  size_t id = 0;
  while (id < sequence_ids_.size() && sequence_ids_[id]) ++id;
  if (id == sequence_ids_.size()) sequence_ids_.push_back(false);
  sequence_ids_[id] = true;
  seq->id_ = static_cast<int>(id);
  ++live_sequences_;
  return seq;
}

Result<std::unique_ptr<Sequence>> Engine::NewSequence() { return MakeSequence(); }

Sequence::~Sequence() {
  --engine_->live_sequences_;
  engine_->sequence_ids_[id_] = false;
}

Status Engine::CheckTokens(const Sequence& seq, std::span<const int32_t> tokens) const {
  const int64_t n_past = seq.n_past();
  if (n_past + static_cast<int64_t>(tokens.size()) > n_ctx_) {
    return InvalidArgument("context full: ", n_past, " tokens in context + ", tokens.size(),
                           " new exceed the context length ", n_ctx_, " (set with --ctx; ",
                           config_.arch, " was trained on ", config_.n_ctx_train, ")");
  }
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= config_.n_vocab) {
      return InvalidArgument("token id ", tokens[i], " at index ", i,
                             " is outside the vocabulary"
                             " [0, ",
                             config_.n_vocab, ")");
    }
  }
  return Status::Ok();
}

Status Engine::PreloadExperts() {
  if (cache_ == nullptr) return Status::Ok();
  const int64_t all = int64_t{config_.n_layer - config_.n_dense_layers} * config_.n_expert;
  if (cache_->slot_count() < all) {
    return InvalidArgument("the expert cache holds ", cache_->slot_count(), " of the model's ", all,
                           " experts: raise --ram to at least ",
                           FormatBytes(plan_.fixed_bytes() + plan_.all_experts_bytes),
                           " to preload them all");
  }
  std::vector<int> ids(config_.n_expert);
  for (int e = 0; e < config_.n_expert; ++e) ids[e] = e;
  for (int l = config_.n_dense_layers; l < config_.n_layer; ++l) {
    cache_->Prefetch(l, ids);
    for (int e : ids) {
      ASSIGN_OR_RETURN(ExpertRef ref, cache_->Acquire(l, e));
      cache_->Release(ref);
    }
  }
  return Status::Ok();
}

EngineCounters Engine::counters() const {
  EngineCounters c = counters_;
  c.moe = moe_->counters();
  if (cache_ != nullptr) c.cache = cache_->counters();
  return c;
}

void Engine::ResetCounters() {
  counters_ = EngineCounters{};
  moe_->ResetCounters();
  if (cache_ != nullptr) cache_->ResetCounters();
}

}  // namespace sluice
