#include "io/io_common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/base/log.h"

namespace sluice {

Result<IoBackendKind> ParseIoBackendKind(std::string_view name) {
  if (name == "auto") return IoBackendKind::kAuto;
  if (name == "uring" || name == "io_uring") return IoBackendKind::kUring;
  if (name == "pread") return IoBackendKind::kPread;
  return InvalidArgument("--io: expected auto, uring or pread, found '", name, "'");
}

const char* IoBackendKindName(IoBackendKind kind) {
  switch (kind) {
    case IoBackendKind::kAuto:
      return "auto";
    case IoBackendKind::kUring:
      return "uring";
    case IoBackendKind::kPread:
      return "pread";
  }
  return "unknown";
}

std::string IoErrorText(int error) { return ErrnoString(error); }

Result<std::vector<IoFile>> OpenIoFiles(const std::vector<std::string>& paths, bool want_direct) {
  std::vector<IoFile> files;
  for (const std::string& path : paths) {
    IoFile f;
    f.path = path;
    if (want_direct) {
      f.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
      if (f.fd >= 0) {
        f.direct = true;
      } else if (errno == EINVAL) {
        LOG(INFO) << "io: O_DIRECT refused for " << path << " (" << ErrnoString(EINVAL)
                  << ", e.g. tmpfs); reading it through the page cache";
      }
    }
    if (f.fd < 0) f.fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.fd < 0) {
      int err = errno;
      CloseIoFiles(&files);
      return IoError(path, ": open for reading failed: ", ErrnoString(err));
    }
    struct stat st;
    if (fstat(f.fd, &st) != 0) {
      int err = errno;
      close(f.fd);
      CloseIoFiles(&files);
      return IoError(path, ": fstat failed: ", ErrnoString(err));
    }
    f.size = static_cast<uint64_t>(st.st_size);
    files.push_back(std::move(f));
  }
  return files;
}

void CloseIoFiles(std::vector<IoFile>* files) {
  for (IoFile& f : *files) {
    if (f.fd >= 0) close(f.fd);
    f.fd = -1;
  }
  files->clear();
}

Status CheckQueueRoom(size_t outstanding, size_t more, size_t max_queued) {
  if (outstanding + more <= max_queued) return Status::Ok();
  return ResourceExhausted("io: ", more, " more reads would exceed the limit of ", max_queued,
                           " outstanding (", outstanding, " now)");
}

Status ValidateRequests(std::span<const IoRequest> requests, const std::vector<IoFile>& files) {
  for (const IoRequest& r : requests) {
    if (r.file_index < 0 || static_cast<size_t>(r.file_index) >= files.size()) {
      return InvalidArgument("io: read of file index ", r.file_index, " but ", files.size(),
                             " files are open");
    }
    const IoFile& f = files[r.file_index];
    if (r.length == 0 || r.length > kMaxIoRequestBytes || r.dest == nullptr) {
      return InvalidArgument("io: ", f.path, ": read of ", r.length, " bytes at offset ", r.offset,
                             " (1..", kMaxIoRequestBytes, " bytes into a buffer)");
    }
    if (f.direct && (r.offset % kIoAlignment != 0 || r.length % kIoAlignment != 0 ||
                     reinterpret_cast<uintptr_t>(r.dest) % kIoAlignment != 0)) {
      return InvalidArgument("io: ", f.path, ": O_DIRECT read of ", r.length, " bytes at offset ",
                             r.offset, " is not aligned to ", kIoAlignment, " bytes");
    }
  }
  return Status::Ok();
}

IoCounters AtomicIoCounters::Snapshot() const {
  IoCounters c;
  c.requests_submitted = requests_submitted.load(std::memory_order_relaxed);
  c.requests_completed = requests_completed.load(std::memory_order_relaxed);
  c.bytes_read = bytes_read.load(std::memory_order_relaxed);
  c.short_reads = short_reads.load(std::memory_order_relaxed);
  c.retries = retries.load(std::memory_order_relaxed);
  c.errors = errors.load(std::memory_order_relaxed);
  c.in_flight = in_flight.load(std::memory_order_relaxed);
  c.queued = queued.load(std::memory_order_relaxed);
  return c;
}

ReadStep AdvanceRead(ReadProgress* p, int64_t result, uint64_t file_size, int max_retries,
                     AtomicIoCounters* counters, IoCompletion* out) {
  auto complete = [&](int error) {
    out->tag = p->request.tag;
    out->bytes = p->done;
    out->error = error;
    if (error != 0) counters->errors.fetch_add(1, std::memory_order_relaxed);
    return ReadStep::kComplete;
  };
  if (result == -EAGAIN || result == -EINTR) {
    counters->retries.fetch_add(1, std::memory_order_relaxed);
    if (++p->retries > max_retries) return complete(static_cast<int>(-result));
    return ReadStep::kResubmit;
  }
  if (result < 0) return complete(static_cast<int>(-result));
  uint64_t got = static_cast<uint64_t>(result);
  if (got > p->next_length()) return complete(EIO);  // the kernel never does this; a bad hook may
  p->done += got;
  counters->bytes_read.fetch_add(got, std::memory_order_relaxed);
  if (p->done == p->request.length) return complete(0);
  // Short. At or past the end of the file the read is as complete as it can be; before it, the
  // rest is asked for again (it may be a signal, a device limit or a fault).
  if (got == 0 || p->next_offset() >= file_size) return complete(0);
  counters->short_reads.fetch_add(1, std::memory_order_relaxed);
  return ReadStep::kResubmit;
}

}  // namespace sluice
