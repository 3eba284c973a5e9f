// ISA dispatch: names, forcing, the SLUICE_ISA environment variable (checked in a child process,
// since the choice is made once per process), and the AVX-512 path giving the AVX2 path's bits.
#include "core/kernels/dispatch.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/kernels/matmul.h"
#include "tests/kernels/kernel_test_util.h"

namespace sluice {
namespace {

using testing::IsaGuard;

TEST(Dispatch, NamesRoundTrip) {
  for (Isa isa : testing::AllIsas()) EXPECT_EQ(ParseIsa(IsaName(isa)), isa);
  EXPECT_FALSE(ParseIsa("sse9").has_value());
}

TEST(Dispatch, ScalarIsAlwaysSupportedAndBestIsSupported) {
  EXPECT_TRUE(IsaSupported(Isa::kScalar));
  EXPECT_TRUE(IsaSupported(BestIsa()));
  printf("best ISA on this machine: %s\n", IsaName(BestIsa()));
}

TEST(Dispatch, ForceSwitchesAndRefusesUnsupported) {
  IsaGuard guard;
  ASSERT_TRUE(ForceIsa(Isa::kScalar));
  EXPECT_EQ(ActiveIsa(), Isa::kScalar);
  for (Isa isa : testing::AllIsas()) {
    if (IsaSupported(isa)) {
      EXPECT_TRUE(ForceIsa(isa));
      EXPECT_EQ(ActiveIsa(), isa);
    } else {
      ASSERT_TRUE(ForceIsa(Isa::kScalar));
      EXPECT_FALSE(ForceIsa(isa));
      EXPECT_EQ(ActiveIsa(), Isa::kScalar) << "a refused ForceIsa must not change the path";
    }
  }
}

// Runs in a child process started by EnvironmentVariableSelectsThePath.
TEST(Dispatch, ChildChecksActiveIsa) {
  const char* expected = std::getenv("SLUICE_ISA_EXPECT");
  if (expected == nullptr) GTEST_SKIP() << "only meaningful in the child process";
  EXPECT_STREQ(IsaName(ActiveIsa()), expected);
}

// This test binary re-run with SLUICE_ISA set, checking its own active path; returns the
// shell's status. The path comes from /proc/self/exe as this process sees it (under qemu-user
// that is the emulated binary, not the emulator).
int RunChild(const std::string& isa_env, const std::string& expected) {
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  const std::string cmd = "SLUICE_ISA=" + isa_env + " SLUICE_ISA_EXPECT=" + expected + " '" + self +
                          "' --gtest_filter=Dispatch.ChildChecksActiveIsa >/dev/null 2>&1";
  return std::system(cmd.c_str());
}

TEST(Dispatch, EnvironmentVariableSelectsThePath) {
  const int status = RunChild("scalar", "scalar");
  if (WIFEXITED(status) && (WEXITSTATUS(status) == 126 || WEXITSTATUS(status) == 127)) {
    // A cross-compiled binary under qemu-user without binfmt_misc: the shell cannot run it.
    GTEST_SKIP() << "cannot re-execute this test binary (exit " << WEXITSTATUS(status) << ")";
  }
  EXPECT_EQ(status, 0);
  EXPECT_NE(RunChild("scalar", "avx2"), 0) << "the child check must be able to fail";
  // Unknown or unsupported requests fall back to the best path.
  EXPECT_EQ(RunChild("bogus", IsaName(BestIsa())), 0);
  for (Isa isa : {Isa::kAvx2, Isa::kAvx512}) {
    EXPECT_EQ(RunChild(IsaName(isa), IsaSupported(isa) ? IsaName(isa) : IsaName(BestIsa())), 0)
        << IsaName(isa);
  }
}

// Formats whose AVX-512 kernel sums each block to an exact int32 total before the float step (the
// scalar twin's order, block32_avx512.cc) while the AVX2 kernel keeps 8 partial lanes per block:
// the two paths differ in rounding there, and matmul_test.cc holds AVX-512 to the scalar bits.
bool Avx512FollowsScalarOrder(GgmlType type) {
  return type == GgmlType::kQ8_0 || type == GgmlType::kQ5_0 || type == GgmlType::kIQ4_NL ||
         type == GgmlType::kMXFP4 || type == GgmlType::kQ6_K || type == GgmlType::kQ3_K ||
         type == GgmlType::kIQ4_XS;
}

TEST(Dispatch, Avx512GivesTheAvx2Bits) {
  if (!IsaSupported(Isa::kAvx512) || !IsaSupported(Isa::kAvx2)) {
    GTEST_SKIP() << "this CPU lacks AVX-512 (or AVX2): nothing to compare";
  }
  IsaGuard guard;
  for (GgmlType type : testing::AllWeightTypes()) {
    if (Avx512FollowsScalarOrder(type)) continue;
    const int64_t block =
        TypeTraits(type).block_elements == 1 ? 32 : TypeTraits(type).block_elements;
    const int64_t rows = 9, cols = 5 * block, n_tokens = 6;
    const std::vector<float> wf = testing::RandomFloats(rows * cols, 1, 0.05f);
    std::vector<uint8_t> w(RowBytes(type, cols) * rows);
    for (int64_t r = 0; r < rows; ++r) {
      testing::MakeRow(type, wf.data() + r * cols, cols, r, w.data() + r * RowBytes(type, cols));
    }
    const std::vector<float> x = testing::RandomFloats(n_tokens * cols, 2);
    std::vector<float> y2(rows * n_tokens), y512(rows * n_tokens);
    ASSERT_TRUE(ForceIsa(Isa::kAvx2));
    MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y2.data(), nullptr);
    ASSERT_TRUE(ForceIsa(Isa::kAvx512));
    MatMul(type, w.data(), rows, cols, x.data(), n_tokens, y512.data(), nullptr);
    EXPECT_EQ(0, std::memcmp(y2.data(), y512.data(), y2.size() * sizeof(float))) << TypeName(type);
  }
}

}  // namespace
}  // namespace sluice
