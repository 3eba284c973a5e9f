#include "server/batch_scheduler.h"

#include <algorithm>

#include "core/base/clock.h"
#include "core/base/log.h"

namespace sluice::server {
namespace {

size_t CommonPrefix(std::span<const int32_t> a, std::span<const int32_t> b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// The longest suffix of `text` that is a proper prefix of `stop`: it may yet become `stop`.
size_t PartialStopLength(const std::string& text, const std::string& stop) {
  for (size_t n = std::min(text.size(), stop.size() - 1); n > 0; --n) {
    if (text.compare(text.size() - n, n, stop, 0, n) == 0) return n;
  }
  return 0;
}

}  // namespace

Result<std::unique_ptr<BatchScheduler>> BatchScheduler::Create(Engine* engine,
                                                               const Tokenizer* tokenizer,
                                                               const SchedulerOptions& options) {
  CHECK(engine != nullptr && tokenizer != nullptr);
  if (options.max_sequences < 1) {
    return InvalidArgument("max sequences ", options.max_sequences, ": must be >= 1");
  }
  if (options.max_queued < 0) {
    return InvalidArgument("max queued requests ", options.max_queued, ": must be >= 0");
  }
  if (options.max_sequences > engine->batch_size()) {
    return InvalidArgument(options.max_sequences, " sequences decoding together need a batch of ",
                           options.max_sequences, " tokens; the batch size is ",
                           engine->batch_size());
  }
  std::unique_ptr<BatchScheduler> s(new BatchScheduler(engine, tokenizer, options));
  engine->sequence().Reset();
  s->slots_.push_back(Slot{.seq = &engine->sequence(), .owned = nullptr});
  for (int i = 1; i < options.max_sequences; ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<Sequence> seq, engine->NewSequence());
    Sequence* p = seq.get();
    s->slots_.push_back(Slot{.seq = p, .owned = std::move(seq)});
  }
  s->start_counters_ = engine->counters();
  s->thread_ = std::thread([p = s.get()] { p->Run(); });
  return s;
}

BatchScheduler::BatchScheduler(Engine* engine, const Tokenizer* tokenizer,
                               const SchedulerOptions& options)
    : engine_(engine), tokenizer_(tokenizer), options_(options) {}

BatchScheduler::~BatchScheduler() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BatchScheduler::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

Result<std::shared_ptr<Generation>> BatchScheduler::Submit(GenerationRequest request) {
  if (request.prompt.empty()) return InvalidArgument("the prompt is empty");
  if (static_cast<int64_t>(request.prompt.size()) >= engine_->n_ctx()) {
    return InvalidArgument("the prompt has ", request.prompt.size(), " tokens; the context holds ",
                           engine_->n_ctx(), " including the reply (--ctx)");
  }
  for (int32_t id : request.prompt) {
    if (id < 0 || id >= engine_->config().n_vocab) {
      return InvalidArgument("token id ", id, " is outside the vocabulary [0, ",
                             engine_->config().n_vocab, ")");
    }
  }
  RETURN_IF_ERROR(ValidateSamplerOptions(request.sampling));
  auto job = std::make_unique<Job>();
  job->request = std::move(request);
  job->out = std::make_shared<Generation>([this] { Wake(); });
  job->submitted_ns = NowNs();
  job->stats.prompt_tokens = static_cast<int64_t>(job->request.prompt.size());
  std::shared_ptr<Generation> out = job->out;
  {
    std::lock_guard lock(mu_);
    if (stop_) return Cancelled("the server is shutting down");
    if (static_cast<int>(queue_.size()) >= options_.max_queued) {
      ++metrics_.rejected;
      return ResourceExhausted(queue_.size(), " requests are already waiting (--max-queue)");
    }
    queue_.push_back(std::move(job));
    ++metrics_.requests;
    metrics_.queued = static_cast<int>(queue_.size());
  }
  cv_.notify_all();
  return out;
}

SchedulerMetrics BatchScheduler::metrics() const {
  std::lock_guard lock(mu_);
  return metrics_;
}

void BatchScheduler::Run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] {
        return stop_ || woken_ || !active_.empty() ||
               (!queue_.empty() && active_.size() < slots_.size());
      });
      woken_ = false;
      if (stop_) break;
      // Queued requests that were cancelled or are overdue end without a sequence.
      const uint64_t now = NowNs();
      for (auto it = queue_.begin(); it != queue_.end();) {
        Job& j = **it;
        const bool overdue = j.request.deadline_ns != 0 && now >= j.request.deadline_ns;
        if (j.out->cancelled() || overdue) {
          j.stats.queued_ns = now - j.submitted_ns;
          j.out->Finish(overdue ? FinishReason::kDeadline : FinishReason::kCancelled, Status::Ok(),
                        j.stats);
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
      Admit();
      metrics_.queued = static_cast<int>(queue_.size());
      metrics_.active = static_cast<int>(active_.size());
    }
    Reap(NowNs());
    if (active_.empty()) continue;
    Status s = RunStep();
    if (!s.ok()) {
      LOG(WARNING) << "serve: a step failed: " << s.ToString();
    }
  }
  // Shutting down: nothing is left waiting.
  const uint64_t now = NowNs();
  for (auto& j : active_) End(*j, FinishReason::kCancelled, Status::Ok(), now);
  std::lock_guard lock(mu_);
  for (auto& j : queue_) j->out->Finish(FinishReason::kCancelled, Status::Ok(), j->stats);
  queue_.clear();
}

void BatchScheduler::Admit() {
  while (!queue_.empty() && active_.size() < slots_.size()) {
    std::unique_ptr<Job> job = std::move(queue_.front());
    queue_.pop_front();
    const std::vector<int32_t>& prompt = job->request.prompt;
    // The free sequence sharing the longest prefix; at least the prompt's last token is computed
    // again, for its logits.
    int best = -1;
    size_t best_prefix = 0;
    for (int i = 0; i < static_cast<int>(slots_.size()); ++i) {
      if (slots_[i].job != nullptr) continue;
      const size_t prefix =
          std::min(CommonPrefix(slots_[i].seq->tokens(), prompt), prompt.size() - 1);
      if (best < 0 || prefix > best_prefix) {
        best = i;
        best_prefix = prefix;
      }
    }
    CHECK(best >= 0);
    Slot& slot = slots_[best];
    slot.seq->Truncate(static_cast<int64_t>(best_prefix));
    slot.job = job.get();
    job->slot = best;
    job->fed = best_prefix;
    job->stats.cached_tokens = static_cast<int64_t>(best_prefix);
    job->admitted_ns = NowNs();
    job->stats.queued_ns = job->admitted_ns - job->submitted_ns;
    job->sampler = std::make_unique<Sampler>(job->request.sampling);
    job->decoder = std::make_unique<ReplyFilter>(*tokenizer_, job->request.chat_template,
                                                 /*show_reasoning=*/false);
    active_.push_back(std::move(job));
  }
}

void BatchScheduler::Reap(uint64_t now) {
  for (auto& j : active_) {
    if (j->out->cancelled()) {
      End(*j, FinishReason::kCancelled, Status::Ok(), now);
    } else if (j->request.deadline_ns != 0 && now >= j->request.deadline_ns) {
      End(*j, FinishReason::kDeadline, Status::Ok(), now);
    }
  }
  std::erase_if(active_, [](const std::unique_ptr<Job>& j) { return j->slot < 0; });
}

Status BatchScheduler::RunStep() {
  // Every decoding request's next token first, then prompt chunks in admission order.
  std::vector<Engine::StepInput> inputs;
  std::vector<Job*> jobs;
  int64_t room = engine_->batch_size();
  for (auto& j : active_) {
    if (j->next < 0) continue;
    inputs.push_back({.seq = slots_[j->slot].seq,
                      .tokens = std::span<const int32_t>(&j->next, 1),
                      .prompt = false});
    jobs.push_back(j.get());
    --room;
  }
  for (auto& j : active_) {
    if (j->next >= 0 || room == 0) continue;
    const std::vector<int32_t>& prompt = j->request.prompt;
    const int64_t n = std::min<int64_t>(room, static_cast<int64_t>(prompt.size() - j->fed));
    inputs.push_back({.seq = slots_[j->slot].seq,
                      .tokens = std::span<const int32_t>(prompt).subspan(j->fed, n),
                      .prompt = true});
    jobs.push_back(j.get());
    room -= n;
  }
  const EngineCounters before = engine_->counters();
  const uint64_t start = NowNs();
  Status status = engine_->Step(inputs);
  const uint64_t now = NowNs();
  const EngineCounters delta = engine_->counters() - before;

  int64_t rows = 0;
  for (const auto& in : inputs) rows += static_cast<int64_t>(in.tokens.size());
  int64_t prompt_rows = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Job& j = *jobs[i];
    const int64_t n = static_cast<int64_t>(inputs[i].tokens.size());
    const double share = static_cast<double>(n) / static_cast<double>(rows);
    j.stats.bytes_read += share * static_cast<double>(delta.cache.bytes_read);
    j.stats.cache_hits += share * static_cast<double>(delta.cache.hits);
    j.stats.cache_misses += share * static_cast<double>(delta.cache.misses);
    if (inputs[i].prompt) prompt_rows += n;
  }
  int64_t generated_before = 0;
  for (Job* j : jobs) generated_before += j->stats.generated_tokens;
  if (!status.ok()) {
    for (Job* j : jobs) End(*j, FinishReason::kError, status, now);
  } else {
    for (size_t i = 0; i < inputs.size(); ++i) {
      Job& j = *jobs[i];
      if (inputs[i].prompt) {
        j.fed += inputs[i].tokens.size();
        if (j.fed < j.request.prompt.size()) continue;  // more prompt to come
      }
      Sample(j, now);
    }
  }
  int64_t generated_after = 0;
  for (Job* j : jobs) generated_after += j->stats.generated_tokens;
  const uint64_t sampled = NowNs();
  std::erase_if(active_, [](const std::unique_ptr<Job>& j) { return j->slot < 0; });
  {
    std::lock_guard lock(mu_);
    ++metrics_.steps;
    metrics_.busy_ns += now - start;
    metrics_.prompt_tokens += prompt_rows;
    metrics_.generated_tokens += generated_after - generated_before;
    metrics_.engine = engine_->counters() - start_counters_;
    if (prompt_rows == 0 && status.ok()) {
      ++metrics_.decode_steps;
      metrics_.decode_step_tokens += rows;
      metrics_.decode_step_ns += sampled - start;
      metrics_.decode_step_bytes_read += delta.cache.bytes_read;
      metrics_.decode_step_hits += delta.cache.hits;
      metrics_.decode_step_misses += delta.cache.misses;
    }
    metrics_.active = static_cast<int>(active_.size());
  }
  return status;
}

void BatchScheduler::Sample(Job& j, uint64_t now) {
  const Sequence& seq = *slots_[j.slot].seq;
  const int32_t id = j.sampler->Sample(seq.logits(), seq.tokens());
  if (j.first_token_ns == 0) {
    j.first_token_ns = now;
    j.stats.prompt_ns = now - j.admitted_ns;
  }
  const std::vector<int32_t>& stops = j.request.stop_tokens;
  if (std::find(stops.begin(), stops.end(), id) != stops.end()) {
    End(j, FinishReason::kStop, Status::Ok(), now);
    return;
  }
  ++j.stats.generated_tokens;
  Emit(j, j.decoder->Push(id));
  if (j.slot < 0) return;  // a stop string ended it
  if (j.request.max_tokens >= 0 && j.stats.generated_tokens >= j.request.max_tokens) {
    End(j, FinishReason::kLength, Status::Ok(), now);
  } else if (seq.n_past() + 1 > engine_->n_ctx()) {
    End(j, FinishReason::kLength, Status::Ok(), now);  // no room to feed it
  } else {
    j.next = id;
  }
}

void BatchScheduler::Emit(Job& j, const std::string& text) {
  j.held += text;
  const std::vector<std::string>& stops = j.request.stop;
  if (stops.empty()) {
    j.out->Append(j.held);
    j.held.clear();
    return;
  }
  size_t first = std::string::npos;
  for (const std::string& s : stops) first = std::min(first, j.held.find(s));
  if (first != std::string::npos) {
    j.out->Append(j.held.substr(0, first));
    j.held.clear();
    End(j, FinishReason::kStop, Status::Ok(), NowNs());
    return;
  }
  size_t keep = 0;
  for (const std::string& s : stops) keep = std::max(keep, PartialStopLength(j.held, s));
  j.out->Append(j.held.substr(0, j.held.size() - keep));
  j.held.erase(0, j.held.size() - keep);
}

void BatchScheduler::End(Job& j, FinishReason reason, Status error, uint64_t now) {
  if (j.slot < 0) return;
  if (reason == FinishReason::kStop || reason == FinishReason::kLength) {
    // What the decoder and the stop-string check held back is part of the reply.
    j.out->Append(j.held + j.decoder->Flush());
  }
  j.held.clear();
  if (j.first_token_ns != 0) {
    j.stats.decode_ns = now - j.first_token_ns;
  } else {
    j.stats.prompt_ns = now - j.admitted_ns;
  }
  Slot& slot = slots_[j.slot];
  if (reason == FinishReason::kError) slot.seq->Reset();  // its KV cache may be half written
  slot.job = nullptr;
  j.slot = -1;
  j.out->Finish(reason, std::move(error), j.stats);
}

}  // namespace sluice::server
