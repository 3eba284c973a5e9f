// A progress bar on stderr for long work (convert, synth, verify, load). Redraws at most
// ~10 times a second; prints plain periodic lines instead when stderr is not a terminal.
// Not thread-safe: update it from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sluice {

class Progress {
 public:
  // `total` in `unit`s (bytes when unit is "B": shown as MiB/GiB with a rate).
  Progress(std::string label, uint64_t total, std::string unit = "B");
  ~Progress();  // calls Finish() if not yet finished
  void Update(uint64_t done);
  void Add(uint64_t delta) { Update(done_ + delta); }
  void Finish();
  static void SetEnabled(bool enabled);  // `--quiet` turns bars off

 private:
  void Draw(bool final);
  std::string label_;
  uint64_t total_;
  std::string unit_;
  uint64_t done_ = 0;
  bool finished_ = false;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace sluice
