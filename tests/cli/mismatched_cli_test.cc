// `convert` and `verify` refuse a GGUF whose metadata disagrees with its tensors before doing any
// work (issue 16: they accepted it, and the archive aborted later), and write nothing.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/cli/subprocess.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

TEST(MismatchedCli, ConvertAndVerifyRefuseWithTheTensorsName) {
  TempDir dir;
  TinyModelSpec spec;
  spec.edit_metadata = [](Metadata& m) { m.SetU32("qwen3moe.expert_count", 16); };
  const std::string in = dir.File("bad.gguf"), out = dir.File("bad.sluice");
  ASSERT_TRUE(WriteTinyModel(in, spec).ok());
  ProcessResult convert = RunSluice({"convert", in, out});
  EXPECT_EQ(convert.exit_code, 1) << convert.err;
  EXPECT_NE(convert.err.find("blk.0.ffn_gate_inp.weight: shape expected [64, 16]"),
            std::string::npos)
      << convert.err;
  EXPECT_FALSE(std::filesystem::exists(out));
  ProcessResult verify = RunSluice({"verify", in});
  EXPECT_EQ(verify.exit_code, 1) << verify.err;
  EXPECT_NE(verify.err.find("blk.0.ffn_gate_inp.weight: shape expected [64, 16]"),
            std::string::npos)
      << verify.err;
}

}  // namespace
}  // namespace sluice::testing
