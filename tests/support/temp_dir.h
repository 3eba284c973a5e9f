// TempDir: a fresh directory under $TMPDIR (or /tmp), removed with everything in it on
// destruction. (tests/support/test_util.h's ScratchDir is the one under the build directory, for
// tests that need a disk filesystem: O_DIRECT and io_uring refuse tmpfs on some kernels.)
#pragma once

#include <string>
#include <vector>

namespace sluice::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Names of the entries in the directory, sorted.
  std::vector<std::string> List() const;

 private:
  std::string path_;
};

}  // namespace sluice::testing
