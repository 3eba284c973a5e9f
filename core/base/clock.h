// The one clock of the project: steady (monotonic), in nanoseconds or seconds. Every duration
// sluice reports (tokens/s, I/O wait, busy time, bench rounds) is measured with it.
// Thread-safety: pure functions.
#pragma once

#include <chrono>
#include <cstdint>

namespace sluice {

using Clock = std::chrono::steady_clock;

// Nanoseconds since an arbitrary fixed point (differences are what count).
inline uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
          .count());
}

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
inline double Seconds(Clock::time_point from, Clock::time_point to) { return Seconds(to - from); }
// Nanoseconds from `start` to now.
inline uint64_t NsSince(Clock::time_point start) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
}

}  // namespace sluice
