// The engine's forward pass: one batch of consecutive tokens of one sequence (or of several,
// Step), stage by stage, as
// the model card states it (llm/engine.h). Every stage works on state_ (llm/run_state.h).
#include <algorithm>
#include <cstring>

#include "core/base/clock.h"
#include "core/base/log.h"
#include "core/base/mapped_files.h"
#include "core/kernels/matmul.h"
#include "core/ops/norm.h"
#include "llm/engine.h"
#include "moe/expert_ffn.h"

namespace sluice {
namespace {

void AddInPlace(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

Status Engine::ForwardBatch(Sequence& seq, const int32_t* tokens, int64_t n, float* all_logits) {
  const StepInput input{.seq = &seq, .tokens = std::span<const int32_t>(tokens, n)};
  return ForwardBatch(std::span<const StepInput>(&input, 1), all_logits);
}

Status Engine::ForwardBatch(std::span<const StepInput> inputs, float* all_logits) {
  if (options_.dense != DenseResidency::kCopy ||
      options_.expert_source == ExpertSourceKind::kMmap) {
    // This step computes on mapped bytes: a model file that shrank since the last step would
    // fault (SIGBUS) instead of failing here with its name.
    RETURN_IF_ERROR(CheckMappedFileSizes());
  }
  for (const StepInput& in : inputs) RETURN_IF_ERROR(Replay(*in.seq));
  // The rows: every input's tokens in order, each input one attention span on its own KV cache
  // (and one delta-net span on its own recurrent state).
  std::vector<AttentionBlock::Span> spans;
  std::vector<DeltaNetBlock::Span> state_spans;
  row_streams_.clear();
  int64_t n = 0;
  for (const StepInput& in : inputs) {
    const int64_t count = static_cast<int64_t>(in.tokens.size());
    spans.push_back({.kv = &in.seq->kv_, .pos0 = in.seq->n_past(), .n = count});
    if (delta_net_ != nullptr) {
      state_spans.push_back({.state = &in.seq->state_, .n = count});
      in.seq->state_stale_ = true;  // until this step completes
    }
    row_streams_.insert(row_streams_.end(), count, in.seq->id());
    DCHECK(n + count <= batch_size_);
    Embed(in.tokens.data(), count, n);  // x = embed(tokens)
    n += count;
  }
  moe_->SetRowStreams(row_streams_);  // each row's routing history is its sequence's
  if (n == 1 && moe_->reads_ahead()) ReadAheadFirstLayer();
  for (int l = 0; l < config_.n_layer; ++l) {
    Attention(l, spans, state_spans, n);  // x += attention(rmsnorm(x) * attn_norm)
    if (config_.is_moe_layer(l)) {
      RETURN_IF_ERROR(Moe(l, n));  // x += moe(rmsnorm(x) * ffn_norm)
    } else {
      DenseFfn(l, n);  // x += down(silu(gate h) * up h), h = rmsnorm(x) * ffn_norm
    }
  }
  // logits = output(rmsnorm(x) * out_norm)
  if (inputs.size() == 1) {
    Logits(n, all_logits, inputs[0].seq->logits_.data());
  } else {
    StepLogits(inputs);
  }
  tokens_seen_ += n;
  for (const StepInput& in : inputs) {
    in.seq->tokens_.insert(in.seq->tokens_.end(), in.tokens.begin(), in.tokens.end());
    in.seq->state_stale_ = false;
  }
  return Status::Ok();
}

Status Engine::Replay(Sequence& seq) {
  if (!seq.state_stale_) return Status::Ok();
  const std::vector<int32_t> tokens = seq.tokens_;
  seq.tokens_.clear();
  seq.state_.Reset();
  seq.state_stale_ = false;
  LOG(DEBUG) << "replaying " << tokens.size() << " tokens to rebuild the recurrent state";
  for (size_t b = 0; b < tokens.size(); b += static_cast<size_t>(batch_size_)) {
    const int64_t count = std::min<int64_t>(batch_size_, static_cast<int64_t>(tokens.size() - b));
    Status s = ForwardBatch(seq, tokens.data() + b, count, nullptr);
    if (!s.ok()) {  // try again next time, from the whole history
      seq.tokens_ = tokens;
      seq.state_stale_ = true;
      return s;
    }
  }
  return Status::Ok();
}

void Engine::Embed(const int32_t* tokens, int64_t n, int64_t row0) {
  // Quantized rows are dequantized on lookup: the table stays as the file has it.
  const Matrix& embd = weights_->token_embd;
  for (int64_t t = 0; t < n; ++t) {
    DequantizeRow(embd.type, embd.row(tokens[t]), state_.x + (row0 + t) * config_.n_embd,
                  config_.n_embd);
  }
}

void Engine::ReadAheadFirstLayer() {
  // No earlier layer read ahead for the first MoE layer: guess its experts from the embedding
  // (its router on the embedding normalised as its MoE input will be) and start their reads
  // before the attention (and dense layers) before it.
  const int first = config_.n_dense_layers;
  const LayerWeights& w = weights_->layers[first];
  RmsNormRows(state_.x, w.ffn_norm, 1, config_.n_embd, config_.rms_eps, state_.xb);
  moe_->ReadAheadFirst({.index = first, .weights = &w.moe}, state_.xb, tokens_seen_);
}

void Engine::Attention(int layer, std::span<const AttentionBlock::Span> spans,
                       std::span<const DeltaNetBlock::Span> state_spans, int64_t n) {
  const LayerWeights& w = weights_->layers[layer];
  const int64_t d = config_.n_embd;
  const uint64_t start = NowNs();
  RmsNormRows(state_.x, w.attn_norm, n, d, config_.rms_eps, state_.xb);
  if (mla_ != nullptr) {
    mla_->Forward(config_.kv_layer(layer), w.mla, spans, state_.xb, state_.out, pool_.get());
  } else if (config_.is_attention_layer(layer)) {
    attention_->Forward(layer, w, spans, state_.xb, state_.out, pool_.get());
  } else {
    delta_net_->Forward(layer, w.delta_net, state_spans, state_.xb, state_.out, pool_.get());
  }
  AddInPlace(state_.x, state_.out, n * d);
  counters_.attention_ns += NowNs() - start;
}

Status Engine::Moe(int layer, int64_t n) {
  const LayerWeights& w = weights_->layers[layer];
  const int64_t d = config_.n_embd;
  RmsNormRows(state_.x, w.ffn_norm, n, d, config_.rms_eps, state_.xb);
  MoeBlock::Layer next;  // the next layer's experts are guessed while this one finishes
  if (layer + 1 < config_.n_layer)
    next = {.index = layer + 1, .weights = &weights_->layers[layer + 1].moe};
  RETURN_IF_ERROR(moe_->Forward({.index = layer, .weights = &w.moe}, next, state_.xb, n,
                                tokens_seen_, state_.out));
  AddInPlace(state_.x, state_.out, n * d);
  return Status::Ok();
}

void Engine::DenseFfn(int layer, int64_t n) {
  const LayerWeights& w = weights_->layers[layer];
  const int64_t d = config_.n_embd;
  const uint64_t start = NowNs();
  RmsNormRows(state_.x, w.ffn_norm, n, d, config_.rms_eps, state_.xb);
  ExpertFfn(ExpertWeights{.gate = w.ffn_gate, .up = w.ffn_up, .down = w.ffn_down}, state_.xb, n,
            state_.ffn_gate, state_.ffn_up, state_.out, pool_.get());
  AddInPlace(state_.x, state_.out, n * d);
  counters_.dense_ffn_ns += NowNs() - start;
}

void Engine::Logits(int64_t n, float* all_logits, float* last_logits) {
  const int64_t d = config_.n_embd;
  if (all_logits != nullptr) {
    RmsNormRows(state_.x, weights_->output_norm, n, d, config_.rms_eps, state_.xb);
    Linear(weights_->output, state_.xb, n, all_logits, pool_.get());
    std::memcpy(last_logits, all_logits + (n - 1) * config_.n_vocab,
                sizeof(float) * config_.n_vocab);
  } else {
    RmsNorm(state_.x + (n - 1) * d, weights_->output_norm, d, config_.rms_eps, state_.xb);
    Linear(weights_->output, state_.xb, 1, last_logits, pool_.get());
  }
}

void Engine::StepLogits(std::span<const StepInput> inputs) {
  // The last row of each input, normalised into consecutive rows of xb, then one MatMul: a row's
  // logits are the same as alone (MatMul rows equal MatVec).
  const int64_t d = config_.n_embd;
  const int64_t m = static_cast<int64_t>(inputs.size());
  CHECK(static_cast<int64_t>(step_logits_.size()) >= m * config_.n_vocab);
  int64_t last = -1;
  for (int64_t i = 0; i < m; ++i) {
    last += static_cast<int64_t>(inputs[i].tokens.size());
    RmsNorm(state_.x + last * d, weights_->output_norm, d, config_.rms_eps, state_.xb + i * d);
  }
  Linear(weights_->output, state_.xb, m, step_logits_.data(), pool_.get());
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(inputs[i].seq->logits_.data(), step_logits_.data() + i * config_.n_vocab,
                sizeof(float) * config_.n_vocab);
  }
}

Status Engine::Step(std::span<const StepInput> inputs) {
  if (inputs.empty()) return InvalidArgument("a step of no sequences");
  int64_t n = 0;
  bool decoding = false;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const StepInput& in = inputs[i];
    CHECK(in.seq != nullptr && in.seq->engine_ == this) << "a sequence of another engine";
    if (in.tokens.empty()) return InvalidArgument("step input ", i, " has no tokens");
    for (size_t j = 0; j < i; ++j) {
      if (inputs[j].seq == in.seq) return InvalidArgument("step input ", i, " repeats input ", j);
    }
    RETURN_IF_ERROR(CheckTokens(*in.seq, in.tokens));
    n += static_cast<int64_t>(in.tokens.size());
    decoding |= !in.prompt;
  }
  if (n > batch_size_) {
    return InvalidArgument("a step of ", n, " tokens; the batch size is ", batch_size_);
  }
  // Distinct live sequences: at most max_sequences, which step_logits_ holds.
  CHECK(inputs.size() == 1 || static_cast<int64_t>(step_logits_.size()) >=
                                  static_cast<int64_t>(inputs.size()) * config_.n_vocab);
  const uint64_t start = NowNs();
  Status status = ForwardBatch(inputs, nullptr);
  (decoding ? counters_.decode_ns : counters_.prefill_ns) += NowNs() - start;
  if (status.ok()) {
    for (const StepInput& in : inputs) {
      (in.prompt ? counters_.prompt_tokens : counters_.decoded_tokens) +=
          static_cast<int64_t>(in.tokens.size());
    }
  }
  return status;
}

Status Engine::Prefill(Sequence& seq, std::span<const int32_t> tokens,
                       std::span<float> all_logits) {
  CHECK(seq.engine_ == this) << "a sequence of another engine";
  if (tokens.empty()) return InvalidArgument("prefill of an empty prompt");
  RETURN_IF_ERROR(CheckTokens(seq, tokens));
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (!all_logits.empty() && static_cast<int64_t>(all_logits.size()) != n * config_.n_vocab) {
    return InvalidArgument("logits buffer of ", all_logits.size(), " floats, expected ", n, " x ",
                           config_.n_vocab);
  }
  const uint64_t start = NowNs();
  Status status = Status::Ok();
  for (int64_t b = 0; b < n && status.ok(); b += batch_size_) {
    const int64_t count = std::min<int64_t>(batch_size_, n - b);
    float* rows = all_logits.empty() ? nullptr : all_logits.data() + b * config_.n_vocab;
    status = ForwardBatch(seq, tokens.data() + b, count, rows);
    if (status.ok()) counters_.prompt_tokens += count;
  }
  counters_.prefill_ns += NowNs() - start;
  return status;
}

Status Engine::Decode(Sequence& seq, int32_t token) {
  CHECK(seq.engine_ == this) << "a sequence of another engine";
  RETURN_IF_ERROR(CheckTokens(seq, std::span<const int32_t>(&token, 1)));
  const uint64_t start = NowNs();
  Status status = ForwardBatch(seq, &token, 1, nullptr);
  counters_.decode_ns += NowNs() - start;
  if (status.ok()) counters_.decoded_tokens += 1;
  return status;
}

}  // namespace sluice
