#include "server/generation.h"

#include <chrono>

namespace sluice::server {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    case FinishReason::kDeadline:
      return "deadline";
    case FinishReason::kError:
      return "error";
  }
  return "none";
}

Generation::Update Generation::Wait(int timeout_ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
               [&] { return !text_.empty() || done_; });
  Update u;
  u.text.swap(text_);
  // The end is reported once all text before it was taken.
  if (done_ && u.text.empty()) {
    u.done = true;
    u.reason = reason_;
    u.error = error_;
    u.stats = stats_;
  }
  return u;
}

void Generation::Cancel() {
  {
    std::lock_guard lock(mu_);
    if (done_ || cancelled_) return;
    cancelled_ = true;
  }
  if (wake_scheduler_) wake_scheduler_();
}

bool Generation::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

bool Generation::done() const {
  std::lock_guard lock(mu_);
  return done_;
}

void Generation::Append(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard lock(mu_);
    text_ += text;
  }
  cv_.notify_all();
}

void Generation::Finish(FinishReason reason, Status error, const GenerationStats& stats) {
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    reason_ = reason;
    error_ = std::move(error);
    stats_ = stats;
  }
  cv_.notify_all();
}

}  // namespace sluice::server
