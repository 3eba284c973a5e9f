#include "io/output_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/base/byte_size.h"
#include "core/base/log.h"

namespace sluice {

namespace fs = std::filesystem;

Status CheckOutputPath(const std::string& path) {
  if (path.empty()) return InvalidArgument("the output path is empty");
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) {
      const char* what = S_ISDIR(st.st_mode)    ? "a directory"
                         : S_ISCHR(st.st_mode)  ? "a character device"
                         : S_ISBLK(st.st_mode)  ? "a block device"
                         : S_ISFIFO(st.st_mode) ? "a FIFO"
                                                : "not a regular file";
      return InvalidArgument(path, " is ", what,
                             "; the output must be a regular file (it is written beside it and "
                             "renamed over it when complete)");
    }
  } else if (errno != ENOENT) {
    return IoError(path, ": ", ErrnoString(errno));
  }
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return InvalidArgument(path, ": the directory ", dir.string(), " does not exist");
  }
  return Status::Ok();
}

void RemoveStaleTempFiles(const std::string& path, const std::string& marker) {
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  const std::string prefix = fs::path(path).filename().string() + marker;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() != prefix.size() + 6 || name.rfind(prefix, 0) != 0) continue;
    const int fd = ::open(e.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    // Held by a writer that is alive: leave it. A killed writer's lock died with it.
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      std::error_code size_ec;
      const uint64_t bytes = fs::file_size(e.path(), size_ec);
      if (::unlink(e.path().c_str()) == 0) {
        LOG(WARNING) << "removed " << e.path().string() << " (" << FormatBytes(bytes)
                     << "), a partial file an interrupted run left behind";
      }
    }
    ::close(fd);
  }
}

Result<int> CreateTempOutput(const std::string& path, const std::string& marker,
                             std::string* temp_path) {
  RETURN_IF_ERROR(CheckOutputPath(path));
  RemoveStaleTempFiles(path, marker);
  std::string templ = path + marker + "XXXXXX";
  const int fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd < 0) {
    return IoError(path, ": cannot create the temporary file ", templ, ": ", ErrnoString(errno));
  }
  ::fchmod(fd, 0644);  // mkstemp makes 0600; model files are read by whoever runs sluice
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(templ.c_str());
    return IoError(templ, ": cannot lock the new temporary file: ", ErrnoString(err));
  }
  *temp_path = templ;
  return fd;
}

}  // namespace sluice
