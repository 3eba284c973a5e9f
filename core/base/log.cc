#include "core/base/log.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace sluice {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
}

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }

namespace internal {
LogLine::~LogLine() {
  static const char* kPrefix[] = {"debug: ", "", "warning: ", "error: "};
  std::string line = "sluice: ";
  line += kPrefix[static_cast<int>(level_)];
  line += stream_.str();
  line += '\n';
  // One write(2) so lines from several threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}
}  // namespace internal

}  // namespace sluice
