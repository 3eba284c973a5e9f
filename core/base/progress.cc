#include "core/base/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

#include "core/base/byte_size.h"

namespace sluice {
namespace {
std::atomic<bool> g_enabled{true};
}

void Progress::SetEnabled(bool enabled) { g_enabled.store(enabled); }

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), total_(total), unit_(std::move(unit)), tty_(isatty(STDERR_FILENO)) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
  Draw(false);
}

Progress::~Progress() { Finish(); }

void Progress::Update(uint64_t done) {
  done_ = done;
  auto now = std::chrono::steady_clock::now();
  auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(2000);
  if (now - last_draw_ >= interval) {
    last_draw_ = now;
    Draw(false);
  }
}

void Progress::Finish() {
  if (finished_) return;
  finished_ = true;
  Draw(true);
}

void Progress::Draw(bool final) {
  if (!g_enabled.load()) return;
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double fraction = total_ ? static_cast<double>(done_) / static_cast<double>(total_) : 1.0;
  if (fraction > 1) fraction = 1;
  std::string amount;
  if (unit_ == "B") {
    amount = FormatBytes(done_) + " / " + FormatBytes(total_);
    if (seconds > 0.05) {
      amount += "  " + FormatBytes(static_cast<uint64_t>(done_ / seconds)) + "/s";
    }
  } else {
    amount = std::to_string(done_) + " / " + std::to_string(total_) + " " + unit_;
  }
  constexpr int kWidth = 30;
  int filled = static_cast<int>(fraction * kWidth);
  std::string bar(filled, '#');
  bar.resize(kWidth, '.');
  if (tty_) {
    std::fprintf(stderr, "\r%s [%s] %5.1f%%  %s  %.1fs%s", label_.c_str(), bar.c_str(),
                 fraction * 100, amount.c_str(), seconds, final ? "\n" : "  ");
  } else {
    std::fprintf(stderr, "%s %5.1f%%  %s  %.1fs\n", label_.c_str(), fraction * 100, amount.c_str(),
                 seconds);
  }
  std::fflush(stderr);
}

}  // namespace sluice
