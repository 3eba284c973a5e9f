// Minimal leveled logging to stderr. Thread-safe (one write per line).
// LOG(INFO) << "io: using io_uring, queue depth " << qd;
#pragma once

#include <sstream>

namespace sluice {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Default kInfo; `--quiet` in cli/ raises it.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();

namespace internal {
class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  ~LogLine();
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace sluice

#define SLUICE_LOG_DEBUG ::sluice::LogLevel::kDebug
#define SLUICE_LOG_INFO ::sluice::LogLevel::kInfo
#define SLUICE_LOG_WARNING ::sluice::LogLevel::kWarning
#define SLUICE_LOG_ERROR ::sluice::LogLevel::kError
#define LOG(level)                                      \
  if (SLUICE_LOG_##level < ::sluice::GetLogLevel()) {   \
  } else                                                \
    ::sluice::internal::LogLine(SLUICE_LOG_##level).stream()
