// What `convert` and `synth` write (issue 16): never over a non-regular file, checked before any
// work; a partial file left by a killed run is removed by the next one; SIGTERM and SIGHUP clean
// up like Ctrl-C.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/cli/subprocess.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

namespace fs = std::filesystem;

bool HasTempFiles(const TempDir& dir) {
  for (const std::string& name : dir.List()) {
    if (name.find(".tmp") != std::string::npos) return true;
  }
  return false;
}

TEST(OutputFileCli, NonRegularOutputsAreRefusedBeforeAnyWork) {
  TempDir dir;
  const std::string in = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(in, TinyModelSpec{}).ok());
  const std::string fifo = dir.File("fifo");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0644), 0);
  fs::create_directory(dir.File("subdir"));
  for (const std::string& out : {fifo, dir.File("subdir"), dir.File("no/such/dir/m.sluice")}) {
    ProcessResult r = RunSluice({"convert", in, out});
    EXPECT_EQ(r.exit_code, 1) << out;
    EXPECT_NE(r.err.find(out), std::string::npos) << r.err;
    ProcessResult s = RunSluice({"synth", "--preset", "demo", "--layers", "1", "--out", out});
    EXPECT_EQ(s.exit_code, 1) << out;
    EXPECT_NE(s.err.find(out), std::string::npos) << s.err;
  }
  struct stat st;
  ASSERT_EQ(stat(fifo.c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));  // still the FIFO, not a regular file renamed over it
  EXPECT_FALSE(HasTempFiles(dir));
}

TEST(OutputFileCli, PartialFilesOfKilledRunsAreRemovedLockedOnesKept) {
  TempDir dir;
  const std::string in = dir.File("m.gguf"), out = dir.File("m.sluice");
  ASSERT_TRUE(WriteTinyModel(in, TinyModelSpec{}).ok());
  const std::string stale = out + ".tmp-AbCdEf", live = out + ".tmp-XyZ123";
  { std::ofstream(stale) << std::string(4096, 'x'); }
  { std::ofstream(live) << "being written"; }
  const int held = open(live.c_str(), O_RDONLY);  // a writer that is alive holds its lock
  ASSERT_GE(held, 0);
  ASSERT_EQ(flock(held, LOCK_EX), 0);
  ProcessResult r = RunSluice({"convert", in, out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_NE(r.err.find("removed " + stale), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(live));
  close(held);
}

TEST(OutputFileCli, SigtermDuringSynthLeavesNoFileBehind) {
  TempDir dir;
  const std::string out = dir.File("big.sluice");
  for (int sig : {SIGTERM, SIGHUP}) {
    // ~1.4 GB: far longer to write than the signal takes to arrive.
    PtyProcess synth({"synth", "--preset", "qwen3-30b-a3b", "--layers", "4", "--out", out});
    ASSERT_TRUE(synth.started());
    // The progress bar appears once the temporary file is being written.
    ASSERT_NE(synth.WaitFor("synth ", 0, std::chrono::seconds(60)), std::string::npos)
        << synth.output();
    ASSERT_EQ(kill(synth.pid(), sig), 0);
    const int code = synth.WaitExit(std::chrono::seconds(60));
    EXPECT_NE(code, 0) << synth.output();
    EXPECT_LT(code, 128) << "killed by the signal instead of cleaning up: " << synth.output();
    EXPECT_FALSE(fs::exists(out)) << strsignal(sig);
    EXPECT_FALSE(HasTempFiles(dir)) << strsignal(sig);
  }
}

// Outputs and choices that cannot work are refused before the expensive part: nothing is
// generated for a trace that could not be written, no device is probed for an unknown baseline.
TEST(OutputFileCli, BadOutputsFailBeforeTheRun) {
  TempDir dir;
  const std::string model = dir.File("m.gguf");
  ASSERT_TRUE(WriteTinyModel(model, TinyModelSpec{}).ok());
  fs::create_directory(dir.File("d"));
  ProcessResult run = RunSluice({"run", "-m", model, "--threads", "1", "-p", "hi", "-n", "4",
                                 "--record-trace", dir.File("d")});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find(dir.File("d") + " is a directory"), std::string::npos) << run.err;
  EXPECT_EQ(run.out, "") << "the run went ahead";
  ProcessResult bench = RunSluice({"bench", "-m", model, "--compare", "nonsense"});
  EXPECT_EQ(bench.exit_code, 1);
  EXPECT_NE(bench.err.find("the only baseline is mmap"), std::string::npos) << bench.err;
  EXPECT_EQ(bench.err.find("measuring"), std::string::npos) << bench.err;
  ProcessResult logits =
      RunSluice({"logits", "-m", model, "--tokens", "1,2", "--out", dir.File("d")});
  EXPECT_EQ(logits.exit_code, 1);
  EXPECT_NE(logits.err.find(dir.File("d")), std::string::npos) << logits.err;
}

}  // namespace
}  // namespace sluice::testing
