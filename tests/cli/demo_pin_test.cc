// The demo's output pinned (issue 11: behaviour must not change): `sluice synth` writes a small
// archive of the demo preset, and `sluice run` samples from it at a fixed seed with synthetic
// routing, streamed at the smallest budget the memory plan accepts and fully resident. The xxh3 of
// what it prints was recorded with the binary before the streaming layer was restructured
// (a1a2c80): both runs give exactly those bytes.
#include <gtest/gtest.h>

#include "io/xxh3.h"
#include "tests/cli/subprocess.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {
namespace {

constexpr uint64_t kRecordedOutput = 0xc839ccd4acdb709full;  // 48 bytes (md5 1803129d...)

TEST(DemoPin, SynthArchiveSampledAtAFixedSeedPrintsTheRecordedBytes) {
  TempDir dir;
  const std::string model = dir.File("pin.sluice");
  ProcessResult synth = RunSluice(
      {"synth", "--preset", "demo", "--layers", "2", "--experts", "8", "--out", model, "--quiet"});
  ASSERT_EQ(synth.exit_code, 0) << synth.err;
  for (const char* ram : {"86M", "0"}) {
    ProcessResult run = RunSluice({"run", "-m", model, "-p", "The demo", "-n", "24", "--seed", "7",
                                   "--temp", "0.8", "--ram", ram});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    const uint64_t hash = Xxh3_64(run.out.data(), run.out.size());
    std::printf("--ram %s: %zu bytes, xxh3 %016llx\n", ram, run.out.size(),
                static_cast<unsigned long long>(hash));
    EXPECT_EQ(hash, kRecordedOutput) << "--ram " << ram << ": " << run.out;
  }
}

}  // namespace
}  // namespace sluice::testing
