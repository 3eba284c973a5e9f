#include "core/base/mapped_files.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "core/base/str_cat.h"

namespace sluice {
namespace {

struct Entry {
  std::atomic<uintptr_t> base{0};  // 0: free
  uint64_t bytes = 0;
  int fd = -1;
  char path[512] = {};
};

Entry g_entries[kMaxMappedFiles];
std::mutex g_mu;

// Async-signal-safe decimal.
void WriteNumber(uint64_t v) {
  char buf[24];
  int i = sizeof(buf);
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && i > 0);
  ssize_t ignored = write(STDERR_FILENO, buf + i, sizeof(buf) - i);
  (void)ignored;
}

void WriteText(const char* s) {
  ssize_t ignored = write(STDERR_FILENO, s, strlen(s));
  (void)ignored;
}

void OnSigbus(int sig, siginfo_t* info, void*) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (const Entry& e : g_entries) {
    const uintptr_t base = e.base.load(std::memory_order_acquire);
    if (base != 0 && addr >= base && addr < base + e.bytes) {
      WriteText("sluice: error: ");
      WriteText(e.path);
      WriteText(" shrank while sluice had it mapped: the page at offset ");
      WriteNumber(addr - base);
      WriteText(" of its ");
      WriteNumber(e.bytes);
      WriteText(
          " bytes is gone (truncated or rewritten by another process?); restart once the "
          "file is whole again\n");
      _exit(1);
    }
  }
  // Not ours: the default action (core dump) with the same signal.
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

int RegisterMappedFile(const void* base, uint64_t bytes, const std::string& path, int fd) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (int i = 0; i < kMaxMappedFiles; ++i) {
    Entry& e = g_entries[i];
    if (e.base.load(std::memory_order_relaxed) != 0) continue;
    e.bytes = bytes;
    e.fd = fd;
    std::strncpy(e.path, path.c_str(), sizeof(e.path) - 1);
    e.path[sizeof(e.path) - 1] = '\0';
    e.base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
    return i;
  }
  return -1;
}

void UnregisterMappedFile(int handle) {
  if (handle < 0) return;
  std::lock_guard<std::mutex> lock(g_mu);
  g_entries[handle].base.store(0, std::memory_order_release);
  g_entries[handle].fd = -1;
}

Status CheckMappedFileSizes() {
  std::lock_guard<std::mutex> lock(g_mu);
  for (const Entry& e : g_entries) {
    if (e.base.load(std::memory_order_relaxed) == 0 || e.fd < 0) continue;
    struct stat st;
    if (fstat(e.fd, &st) != 0) continue;
    if (static_cast<uint64_t>(st.st_size) < e.bytes) {
      return Corrupt(e.path, ": the file shrank from ", e.bytes, " to ", st.st_size,
                     " bytes while sluice had it mapped (truncated or rewritten by another "
                     "process?); restart once the file is whole again");
    }
  }
  return Status::Ok();
}

void InstallMappedFileFaultHandler() {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_sigaction = OnSigbus;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGBUS, &action, nullptr);
}

}  // namespace sluice
