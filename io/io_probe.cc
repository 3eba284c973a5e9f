#include "io/io_probe.h"

#include <fcntl.h>
#include <liburing.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>

#include "core/base/aligned_buffer.h"
#include "core/base/log.h"
#include "io/pread_backend.h"
#include "io/uring_backend.h"

namespace sluice {
namespace {

std::string ProbeUring() {
  io_uring ring;
  int rc = io_uring_queue_init(2, &ring, 0);
  if (rc < 0) {
    std::string reason = StrCat("io_uring_queue_init: ", ErrnoString(-rc));
    int sysctl = IoUringDisabledSysctl();
    if (sysctl > 0) reason += StrCat("; kernel.io_uring_disabled = ", sysctl);
    if (-rc == ENOSYS) reason += " (kernel without io_uring)";
    if (-rc == EPERM && sysctl <= 0) reason += " (blocked, e.g. by a seccomp profile)";
    return reason;
  }
  std::string reason;
  io_uring_sqe* sqe = io_uring_get_sqe(&ring);
  io_uring_prep_nop(sqe);
  rc = io_uring_submit(&ring);
  io_uring_cqe* cqe = nullptr;
  if (rc >= 0) rc = io_uring_wait_cqe(&ring, &cqe);
  if (rc < 0) {
    reason = StrCat("io_uring NOP round trip: ", ErrnoString(-rc));
  } else {
    io_uring_cqe_seen(&ring, cqe);
  }
  io_uring_queue_exit(&ring);
  return reason;
}

std::string ProbeDirect(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
  if (fd < 0) {
    return StrCat("O_DIRECT open of ", path, " refused: ", ErrnoString(errno),
                  errno == EINVAL ? " (the filesystem does not support it, e.g. tmpfs)" : "");
  }
  AlignedBuffer buffer(kIoAlignment);
  ssize_t n = pread(fd, buffer.data(), kIoAlignment, 0);
  int err = errno;
  close(fd);
  if (n < 0) return StrCat("aligned O_DIRECT read of ", path, " failed: ", ErrnoString(err));
  return "";
}

}  // namespace

int IoUringDisabledSysctl() {
  std::ifstream in("/proc/sys/kernel/io_uring_disabled");
  int value = -1;
  if (!(in >> value)) return -1;
  return value;
}

IoProbeResult ProbeIo(const std::string& sample_path) {
  IoProbeResult r;
  r.uring_reason = ProbeUring();
  r.uring_ok = r.uring_reason.empty();
  r.direct_reason = ProbeDirect(sample_path);
  r.direct_ok = r.direct_reason.empty();
  return r;
}

Result<std::unique_ptr<IoBackend>> CreateIoBackend(const IoOptions& options,
                                                   const std::vector<std::string>& file_paths) {
  if (file_paths.empty()) return InvalidArgument("io: no files to read");
  IoOptions o = options;
  if (o.kind == IoBackendKind::kPread) {
    ASSIGN_OR_RETURN(auto b, PreadBackend::Create(o, file_paths));
    return std::unique_ptr<IoBackend>(std::move(b));
  }
  if (o.kind == IoBackendKind::kUring) {
    Result<std::unique_ptr<UringBackend>> b = UringBackend::Create(o, file_paths);
    if (!b.ok()) {
      return Status(b.status().code(), StrCat("--io=uring: io_uring is unavailable: ",
                                              b.status().message(), " (use --io=auto or pread)"));
    }
    return std::unique_ptr<IoBackend>(std::move(*b));
  }
  // Auto: io_uring + O_DIRECT when both work; otherwise pread, saying why in one line.
  IoProbeResult probe = ProbeIo(file_paths[0]);
  std::string why;
  if (!probe.uring_ok) {
    why = probe.uring_reason;
  } else if (o.direct && !probe.direct_ok) {
    why = probe.direct_reason;
    o.direct = false;  // buffered reads; OpenIoFiles then has nothing more to log
  } else {
    Result<std::unique_ptr<UringBackend>> b = UringBackend::Create(o, file_paths);
    if (b.ok()) return std::unique_ptr<IoBackend>(std::move(*b));
    if (b.status().code() != StatusCode::kUnsupported) return b.status();
    why = b.status().message();
  }
  LOG(INFO) << "io: using the pread worker pool" << (o.direct ? "" : " with buffered reads")
            << " instead of io_uring: " << why;
  ASSIGN_OR_RETURN(auto b, PreadBackend::Create(o, file_paths));
  return std::unique_ptr<IoBackend>(std::move(b));
}

}  // namespace sluice
