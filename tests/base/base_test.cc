#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/base/aligned_buffer.h"
#include "core/base/byte_size.h"
#include "core/base/ggml_type.h"
#include "core/base/mapped_files.h"
#include "core/base/memory_limit.h"
#include "core/base/status.h"

namespace sluice {
namespace {

TEST(ByteSize, ParsesSuffixes) {
  EXPECT_EQ(ParseByteSize("4096").value(), 4096u);
  EXPECT_EQ(ParseByteSize("12G").value(), 12ull << 30);
  EXPECT_EQ(ParseByteSize("512m").value(), 512ull << 20);
  EXPECT_EQ(ParseByteSize("1.5GiB").value(), 3ull << 29);
  EXPECT_EQ(ParseByteSize("2KB").value(), 2048u);
}

TEST(ByteSize, RejectsGarbage) {
  EXPECT_FALSE(ParseByteSize("").ok());
  EXPECT_FALSE(ParseByteSize("abc").ok());
  EXPECT_FALSE(ParseByteSize("12X").ok());
  EXPECT_FALSE(ParseByteSize("-1G").ok());
  EXPECT_NE(ParseByteSize("12X").status().message().find("12X"), std::string::npos);
}

TEST(ByteSize, Formats) {
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(3ull << 29), "1.50 GiB");
}

TEST(GgmlType, BlockGeometryMatchesGguf) {
  // Independent figures: Q4_K = 2 + 2 + 12 + 128 bytes per 256; Q6_K = 128 + 64 + 16 + 2.
  EXPECT_EQ(RowBytes(GgmlType::kQ4_K, 4096), 4096u / 256 * (2 + 2 + 12 + 128));
  EXPECT_EQ(RowBytes(GgmlType::kQ6_K, 256), 128u + 64 + 16 + 2);
  EXPECT_EQ(RowBytes(GgmlType::kQ8_0, 64), 2u * (2 + 32));
  EXPECT_FALSE(IsValidRowLength(GgmlType::kQ4_0, 33));
  EXPECT_FALSE(GetTypeTraits(4).has_value());  // removed Q4_2
  EXPECT_EQ(ParseTypeName("Q4_k"), GgmlType::kQ4_K);
}

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd: ", x);
  return x / 2;
}

Status Chain(int x, int* out) {
  ASSIGN_OR_RETURN(*out, Half(x));
  return Status::Ok();
}

TEST(Status, PropagatesErrors) {
  int v = 0;
  EXPECT_TRUE(Chain(4, &v).ok());
  EXPECT_EQ(v, 2);
  Status s = Chain(3, &v);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.ToString(), "invalid argument: odd: 3");
}

TEST(AlignedBuffer, IsAlignedAndZeroed) {
  for (size_t size : {size_t{100}, size_t{3} << 20}) {
    AlignedBuffer b(size);
    ASSERT_NE(b.data(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 4096, 0u);
    for (size_t i = 0; i < size; i += 997) EXPECT_EQ(b.data()[i], 0);
  }
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// The default --ram honours a container's limit: cgroup v2 groups (the tightest up the tree), v1,
// and "max" / v1's "unlimited" as no limit.
TEST(MemoryLimit, ReadsTheTightestCgroupLimit) {
  const std::string root = ::testing::TempDir() + "/cg" + std::to_string(getpid());
  std::filesystem::create_directories(root + "/a/b");
  std::filesystem::create_directories(root + "/memory");
  auto write = [](const std::string& path, const std::string& text) {
    std::ofstream(path) << text << "\n";
  };
  write(root + "/self", "0::/a/b");
  write(root + "/a/b/memory.max", "max");
  write(root + "/a/memory.max", "4294967296");
  MemoryLimit m = ReadMemoryLimit(root, root + "/self");
  EXPECT_EQ(m.cgroup_bytes, 4294967296u);
  EXPECT_GT(m.physical_bytes, 0u);
  EXPECT_EQ(m.usable_bytes(), std::min<uint64_t>(m.physical_bytes, 4294967296u));
  write(root + "/a/b/memory.max", "1073741824");
  EXPECT_EQ(ReadMemoryLimit(root, root + "/self").cgroup_bytes, 1073741824u);
  // No v2 limit anywhere: v1's, unless it is the "unlimited" sentinel.
  std::filesystem::remove(root + "/a/b/memory.max");
  std::filesystem::remove(root + "/a/memory.max");
  write(root + "/memory/memory.limit_in_bytes", "9223372036854771712");
  EXPECT_EQ(ReadMemoryLimit(root, root + "/self").cgroup_bytes, 0u);
  write(root + "/memory/memory.limit_in_bytes", "2147483648");
  EXPECT_EQ(ReadMemoryLimit(root, root + "/self").cgroup_bytes, 2147483648u);
  // v1 with the process in a group of the memory controller (as on this project's machines).
  std::filesystem::create_directories(root + "/memory/job/7");
  write(root + "/self", "4:memory:/job/7\n1:cpu:/");
  write(root + "/memory/job/7/memory.limit_in_bytes", "536870912");
  EXPECT_EQ(ReadMemoryLimit(root, root + "/self").cgroup_bytes, 536870912u);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// A registered mapping whose file shrinks: the size check says so, and a touch of a vanished
// page ends the process with a message naming the file and offset instead of "Bus error".
TEST(MappedFiles, AShrunkFileIsNamedBySizeCheckAndOnSigbus) {
#ifdef SLUICE_SANITIZE
  GTEST_SKIP() << "the sanitizers' own SIGBUS handler reports the fault under ASan";
#else
  const std::string path = ::testing::TempDir() + "/mapped" + std::to_string(getpid());
  { std::ofstream(path) << std::string(65536, 'x'); }
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    InstallMappedFileFaultHandler();
    const int fd = open(path.c_str(), O_RDONLY);
    void* base = mmap(nullptr, 65536, PROT_READ, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) _exit(3);
    RegisterMappedFile(base, 65536, path, fd);
    if (!CheckMappedFileSizes().ok()) _exit(4);
    if (truncate(path.c_str(), 4096) != 0) _exit(5);
    Status shrunk = CheckMappedFileSizes();
    if (shrunk.ok() || shrunk.message().find("shrank from 65536 to 4096") == std::string::npos) {
      _exit(6);
    }
    volatile const char* p = static_cast<const char*>(base);
    (void)p[8192];  // past the new end: SIGBUS
    _exit(7);
  }
  close(pipe_fds[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = read(pipe_fds[0], buf, sizeof(buf))) > 0;) err.append(buf, n);
  close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  std::filesystem::remove(path);
  ASSERT_TRUE(WIFEXITED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 1) << err;
  EXPECT_NE(err.find(path + " shrank while sluice had it mapped: the page at offset 8192"),
            std::string::npos)
      << err;
#endif
}

}  // namespace
}  // namespace sluice
