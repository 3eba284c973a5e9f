// Both IoBackends against a reference file: identical bytes, faults (short reads, EINTR, EAGAIN,
// EIO, latency) never producing wrong data, limits and interruption.
#include "io/io_backend.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <thread>

#include "core/base/aligned_buffer.h"
#include "core/base/byte_size.h"
#include "io/io_probe.h"
#include "io/pread_backend.h"
#include "io/uring_backend.h"
#include "tests/support/test_util.h"

namespace sluice {
namespace {

constexpr uint64_t kFileBytes = (8u << 20) + 12345;  // odd size: the last page is partial

std::vector<uint8_t> MakeFile(const std::string& path, uint64_t bytes) {
  std::vector<uint8_t> data(bytes);
  testing::FillBytes(42, 1, 2, 3, data.data(), data.size());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  fsync(fd);
  close(fd);
  return data;
}

// Short reads (aligned under O_DIRECT, with the skipped bytes scribbled over), -EINTR, -EAGAIN
// and latency, at random; -EIO for any read touching `eio_offset`.
class FaultyDisk : public IoFaultInjector {
 public:
  explicit FaultyDisk(bool aligned, uint64_t eio_offset = ~0ull, bool always_eagain = false)
      : aligned_(aligned), eio_offset_(eio_offset), always_eagain_(always_eagain) {}
  int64_t OnRead(int, uint64_t offset, uint64_t length, uint8_t* dest, int64_t result) override {
    if (offset <= eio_offset_ && eio_offset_ < offset + length) return -EIO;
    if (always_eagain_) return -EAGAIN;
    int dice;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dice = static_cast<int>(rng_() % 100);
    }
    if (dice < 5) std::this_thread::sleep_for(std::chrono::microseconds(200 + dice * 50));
    if (dice < 15) return -EINTR;
    if (dice < 25) return -EAGAIN;
    if (dice < 50 && result > 1) {
      int64_t cut = result / 2;
      if (aligned_) cut = static_cast<int64_t>(AlignDown(static_cast<uint64_t>(cut), 4096));
      if (cut > 0) {
        std::memset(dest + cut, 0xEE, static_cast<size_t>(result - cut));
        return cut;
      }
    }
    return result;
  }

 private:
  bool aligned_;
  uint64_t eio_offset_;
  bool always_eagain_;
  std::mutex mu_;
  std::mt19937 rng_{7};
};

class BackendTest : public ::testing::TestWithParam<IoBackendKind> {
 protected:
  void SetUp() override {
    path_ = dir_.File("data.bin");
    data_ = MakeFile(path_, kFileBytes);
    if (GetParam() == IoBackendKind::kUring) {
      IoProbeResult probe = ProbeIo(path_);
      if (!probe.uring_ok) GTEST_SKIP() << "io_uring unavailable here: " << probe.uring_reason;
    }
  }
  std::unique_ptr<IoBackend> Make(IoOptions o) {
    o.kind = GetParam();
    auto b = CreateIoBackend(o, {path_});
    EXPECT_TRUE(b.ok()) << b.status().ToString();
    return b.ok() ? std::move(*b) : nullptr;
  }
  // Random aligned reads (some crossing the end of the file) in batches larger than the queue
  // depth; checks every byte and the reported count.
  void ReadAndCheck(IoBackend* io, int n_requests, uint64_t seed) {
    std::mt19937_64 rng(seed);
    struct Req {
      uint64_t offset, length;
      AlignedBuffer buffer;
    };
    std::vector<Req> reqs;
    for (int i = 0; i < n_requests; ++i) {
      uint64_t pages = kFileBytes / 4096 + 1;
      uint64_t offset = (rng() % pages) * 4096;
      uint64_t length = (1 + rng() % 64) * 4096;
      reqs.push_back({offset, length, AlignedBuffer(length)});
    }
    size_t next = 0, done = 0;
    while (done < reqs.size()) {
      size_t batch = std::min<size_t>(reqs.size() - next, 1 + rng() % 12);
      std::vector<IoRequest> sub;
      for (size_t i = next; i < next + batch; ++i) {
        sub.push_back({.file_index = 0,
                       .offset = reqs[i].offset,
                       .length = reqs[i].length,
                       .dest = reqs[i].buffer.data(),
                       .tag = i});
      }
      if (!sub.empty()) {
        ASSERT_TRUE(io->Submit(sub).ok());
      }
      next += batch;
      IoCompletion c[16];
      size_t n = io->Reap(c, next == reqs.size() ? 1 : 0);
      for (size_t k = 0; k < n; ++k) {
        const Req& r = reqs[c[k].tag];
        ASSERT_EQ(c[k].error, 0) << IoErrorText(c[k].error);
        uint64_t expect = std::min(r.length, kFileBytes - std::min(kFileBytes, r.offset));
        ASSERT_EQ(c[k].bytes, expect) << "offset " << r.offset << " length " << r.length;
        ASSERT_EQ(0, std::memcmp(r.buffer.data(), data_.data() + r.offset, expect))
            << "offset " << r.offset;
        ++done;
      }
    }
    IoCounters counters = io->counters();
    EXPECT_EQ(counters.requests_completed, counters.requests_submitted);
    EXPECT_EQ(counters.in_flight, 0u);
  }

  testing::ScratchDir dir_;
  std::string path_;
  std::vector<uint8_t> data_;
};

TEST_P(BackendTest, ReadsTheFileExactly) {
  auto io = Make({.queue_depth = 4});
  ASSERT_NE(io, nullptr);
  std::cout << "backend: " << io->Describe() << "\n";
  ReadAndCheck(io.get(), 300, 1);
}

TEST_P(BackendTest, RegisteredBuffersReadTheSameBytes) {
  auto io = Make({.queue_depth = 8});
  ASSERT_NE(io, nullptr);
  AlignedBuffer slots(4 * (1u << 20));
  iovec iov[4];
  for (int i = 0; i < 4; ++i) iov[i] = {slots.data() + i * (1u << 20), 1u << 20};
  io->RegisterBuffers(iov);
  std::vector<IoRequest> reqs;
  for (int i = 0; i < 4; ++i) {
    reqs.push_back({.file_index = 0,
                    .offset = static_cast<uint64_t>(i) * 3 * 4096 * 7,
                    .length = 1u << 20,
                    .dest = slots.data() + i * (1u << 20),
                    .buffer_index = i,
                    .tag = static_cast<uint64_t>(i)});
  }
  ASSERT_TRUE(io->Submit(reqs).ok());
  IoCompletion c[4];
  size_t got = 0;
  while (got < 4) got += io->Reap(std::span(c + got, 4 - got), 1);
  for (const IoCompletion& x : c) {
    ASSERT_EQ(x.error, 0);
    EXPECT_EQ(0, std::memcmp(reqs[x.tag].dest, data_.data() + reqs[x.tag].offset, 1u << 20));
  }
  io->UnregisterBuffers();
}

TEST_P(BackendTest, FaultsNeverYieldWrongData) {
  FaultyDisk faults(/*aligned=*/true);
  auto io = Make({.queue_depth = 3, .faults = &faults});
  ASSERT_NE(io, nullptr);
  ReadAndCheck(io.get(), 200, 2);
  IoCounters c = io->counters();
  EXPECT_GT(c.short_reads, 0u);
  EXPECT_GT(c.retries, 0u);
  EXPECT_EQ(c.errors, 0u);
}

TEST_P(BackendTest, EioSurfacesAsAnErrorForThatRequestOnly) {
  FaultyDisk faults(/*aligned=*/true, /*eio_offset=*/5 * 4096 + 17);
  auto io = Make({.queue_depth = 2, .faults = &faults});
  ASSERT_NE(io, nullptr);
  AlignedBuffer a(16 * 4096), b(16 * 4096);
  IoRequest reqs[2] = {{.offset = 0, .length = 16 * 4096, .dest = a.data(), .tag = 1},
                       {.offset = 64 * 4096, .length = 16 * 4096, .dest = b.data(), .tag = 2}};
  ASSERT_TRUE(io->Submit(reqs).ok());
  IoCompletion c[2];
  size_t got = 0;
  while (got < 2) got += io->Reap(std::span(c + got, 2 - got), 1);
  for (const IoCompletion& x : c) {
    if (x.tag == 1) {
      EXPECT_EQ(x.error, EIO);
    } else {
      EXPECT_EQ(x.error, 0);
      EXPECT_EQ(0, std::memcmp(b.data(), data_.data() + 64 * 4096, 16 * 4096));
    }
  }
  EXPECT_EQ(io->counters().errors, 1u);
}

TEST_P(BackendTest, EndlessEagainFailsAfterTheRetryLimit) {
  FaultyDisk faults(true, ~0ull, /*always_eagain=*/true);
  auto io = Make({.queue_depth = 1, .max_retries = 5, .faults = &faults});
  ASSERT_NE(io, nullptr);
  AlignedBuffer a(4096);
  IoRequest r{.offset = 0, .length = 4096, .dest = a.data()};
  ASSERT_TRUE(io->Submit({&r, 1}).ok());
  IoCompletion c;
  ASSERT_EQ(io->Reap({&c, 1}, 1), 1u);
  EXPECT_EQ(c.error, EAGAIN);
  EXPECT_EQ(io->counters().retries, 6u);
}

TEST_P(BackendTest, LimitsAreEnforced) {
  auto io = Make({.queue_depth = 1, .max_queued = 3});
  ASSERT_NE(io, nullptr);
  AlignedBuffer a(4 * 4096);
  std::vector<IoRequest> four;
  for (int i = 0; i < 4; ++i) {
    four.push_back({.offset = 0, .length = 4096, .dest = a.data() + i * 4096});
  }
  Status st = io->Submit(four);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  EXPECT_EQ(io->counters().requests_submitted, 0u);
  IoRequest bad{.file_index = 1, .offset = 0, .length = 4096, .dest = a.data()};
  EXPECT_EQ(io->Submit({&bad, 1}).code(), StatusCode::kInvalidArgument);
  if (io->direct_io()) {
    IoRequest unaligned{.offset = 100, .length = 4096, .dest = a.data()};
    Status u = io->Submit({&unaligned, 1});
    EXPECT_NE(u.message().find("not aligned to 4096"), std::string::npos) << u.ToString();
  }
}

TEST_P(BackendTest, InterruptWakesABlockedReap) {
  auto io = Make({.queue_depth = 2});
  ASSERT_NE(io, nullptr);
  // Interrupt is sticky until a Reap sees it: whether it lands before or during the Reap below,
  // the Reap returns with nothing (no sleep needed to order them).
  std::thread t([&] { io->Interrupt(); });
  IoCompletion c[1];
  EXPECT_EQ(io->Reap(c, 1), 0u);
  t.join();
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendTest,
                         ::testing::Values(IoBackendKind::kUring, IoBackendKind::kPread),
                         [](const auto& info) { return IoBackendKindName(info.param); });

TEST(IoBackend, BufferedPreadAllowsUnalignedReads) {
  testing::ScratchDir dir;
  std::string path = dir.File("b.bin");
  std::vector<uint8_t> data = MakeFile(path, 100001);
  FaultyDisk faults(/*aligned=*/false);
  auto io = CreateIoBackend(
      {.kind = IoBackendKind::kPread, .queue_depth = 2, .direct = false, .faults = &faults},
      {path});
  ASSERT_TRUE(io.ok());
  EXPECT_FALSE((*io)->direct_io());
  std::vector<uint8_t> buf(99999);
  IoRequest r{.offset = 1001, .length = 99999, .dest = buf.data()};
  ASSERT_TRUE((*io)->Submit({&r, 1}).ok());
  IoCompletion c;
  ASSERT_EQ((*io)->Reap({&c, 1}, 1), 1u);
  EXPECT_EQ(c.error, 0);
  EXPECT_EQ(c.bytes, 99000u);  // stops at the end of the file
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data() + 1001, 99000));
}

// /dev/shm is tmpfs: O_DIRECT is refused there before Linux 6.6 and accepted since. Either way
// --io=auto must pick a working backend and read the right bytes.
TEST(IoBackend, AutoOnTmpfsPicksAWorkingBackend) {
  if (!std::filesystem::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm on this machine";
  testing::ScratchDir dir("/dev/shm");
  std::string path = dir.File("t.bin");
  std::vector<uint8_t> data = MakeFile(path, 3 * 4096 + 5);
  IoProbeResult probe = ProbeIo(path);
  std::cout << "tmpfs: io_uring " << (probe.uring_ok ? "ok" : probe.uring_reason) << "; O_DIRECT "
            << (probe.direct_ok ? "accepted" : probe.direct_reason) << "\n";
  auto io = CreateIoBackend({.kind = IoBackendKind::kAuto, .queue_depth = 2}, {path});
  ASSERT_TRUE(io.ok()) << io.status().ToString();
  std::cout << "picked: " << (*io)->Describe() << "\n";
  if (!probe.direct_ok) {
    EXPECT_EQ((*io)->kind(), IoBackendKind::kPread);
    EXPECT_FALSE((*io)->direct_io());
  }
  AlignedBuffer buf(4 * 4096);
  IoRequest r{.offset = 0, .length = 4 * 4096, .dest = buf.data()};
  ASSERT_TRUE((*io)->Submit({&r, 1}).ok());
  IoCompletion c;
  ASSERT_EQ((*io)->Reap({&c, 1}, 1), 1u);
  EXPECT_EQ(c.bytes, data.size());
  EXPECT_EQ(0, std::memcmp(buf.data(), data.data(), data.size()));
}

// procfs refuses O_DIRECT (EINVAL) on every kernel: --io=auto must fall back to buffered pread
// with exactly one log line that says why.
TEST(IoBackend, AutoFallsBackWithOneLineWhenODirectIsRefused) {
  const std::string path = "/proc/version";
  IoProbeResult probe = ProbeIo(path);
  if (probe.direct_ok) GTEST_SKIP() << "this kernel accepts O_DIRECT on procfs";
  EXPECT_NE(probe.direct_reason.find("O_DIRECT open of /proc/version refused"), std::string::npos)
      << probe.direct_reason;
  ::testing::internal::CaptureStderr();
  auto io = CreateIoBackend({.kind = IoBackendKind::kAuto, .queue_depth = 2}, {path});
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(io.ok()) << io.status().ToString();
  EXPECT_EQ((*io)->kind(), IoBackendKind::kPread);
  EXPECT_FALSE((*io)->direct_io());
  EXPECT_EQ(std::count(log.begin(), log.end(), '\n'), 1) << log;
  EXPECT_NE(log.find("using the pread worker pool with buffered reads instead of io_uring: "
                     "O_DIRECT open of /proc/version refused"),
            std::string::npos)
      << log;
  // procfs reports size 0 but has bytes: one read returns what is there.
  AlignedBuffer buf(4096);
  IoRequest r{.offset = 0, .length = 4096, .dest = buf.data()};
  ASSERT_TRUE((*io)->Submit({&r, 1}).ok());
  IoCompletion c;
  ASSERT_EQ((*io)->Reap({&c, 1}, 1), 1u);
  EXPECT_EQ(c.error, 0);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf.data()), 6), "Linux ");
}

TEST(IoBackend, ParseKind) {
  EXPECT_EQ(*ParseIoBackendKind("uring"), IoBackendKind::kUring);
  EXPECT_EQ(*ParseIoBackendKind("pread"), IoBackendKind::kPread);
  EXPECT_EQ(*ParseIoBackendKind("auto"), IoBackendKind::kAuto);
  EXPECT_NE(ParseIoBackendKind("aio").status().message().find("'aio'"), std::string::npos);
}

}  // namespace
}  // namespace sluice
