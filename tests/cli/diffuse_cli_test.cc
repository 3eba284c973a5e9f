// `sluice synth --preset ... --tiny` and `sluice diffuse` as a user runs them: a PNG with its
// parameters, the same bytes for the same seed, clear errors for bad flags, and no output file
// when the run fails.
#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "diffusion/png.h"
#include "tests/cli/subprocess.h"
#include "tests/diffusion/diffusers_folder.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class DiffuseCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = dir_.File("sd15-tiny.safetensors");
    const ProcessResult r = RunSluice({"synth", "--preset", "sd15", "--tiny", "--out", model_});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  ProcessResult Diffuse(std::vector<std::string> extra) {
    std::vector<std::string> args = {"diffuse", "-m",      model_, "-p",     "a (red:1.3) apple",
                                     "-n",      "blurry",  "-W",   "64",     "-H",
                                     "64",      "--steps", "2",    "--seed", "5"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSluice(args, "", std::chrono::seconds(120));
  }
  TempDir dir_;
  std::string model_;
};

TEST_F(DiffuseCliTest, WritesAPngWithItsParametersAndRepeatsItsBytes) {
  const std::string a = dir_.File("a.png"), b = dir_.File("b.png");
  ProcessResult r = Diffuse({"-o", a});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("synthetic model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 2/2"), std::string::npos) << r.err;
  auto png = diffusion::ReadPng(a);
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  EXPECT_EQ(png->width, 64);
  ASSERT_FALSE(png->text.empty());
  EXPECT_EQ(png->text[0].first, "parameters");
  const std::string& p = png->text[0].second;
  EXPECT_EQ(p.rfind("a (red:1.3) apple\nNegative prompt: blurry\nSteps: 2, Sampler: Euler a", 0),
            0u)
      << p;
  EXPECT_NE(p.find("Seed: 5, Size: 64x64"), std::string::npos) << p;
  r = Diffuse({"-o", b});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(a), ReadAll(b));
  // --batch-count names the others OUT_1.png ... with the next seeds.
  r = Diffuse({"-o", dir_.File("c.png"), "--batch-count", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadAll(dir_.File("c.png")), ReadAll(a));
  auto c1 = diffusion::ReadPng(dir_.File("c_1.png"));
  ASSERT_TRUE(c1.ok());
  EXPECT_NE(c1->text[0].second.find("Seed: 6,"), std::string::npos);
}

// The same model as `synth --format gguf` wrote it (stable-diffusion.cpp's names, nothing left
// beside it) and as a diffusers folder: the same pixels as the safetensors file.
TEST_F(DiffuseCliTest, GgufAndDiffusersFolderMakeTheSameImage) {
  const std::string gguf = dir_.File("sd15-tiny.gguf");
  ProcessResult r = RunSluice(
      {"synth", "--preset", "sd15", "--tiny", "--format", "gguf", "--out", gguf, "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_FALSE(e.path().string().ends_with(".synth.safetensors")) << e.path();
  }
  const std::string folder = dir_.File("sd15-diffusers");
  diffusion::testing_sd::WriteDiffusersFolder(folder, {{model_, "tiny_sd15"}});
  ASSERT_EQ(Diffuse({"-o", dir_.File("st.png")}).exit_code, 0);
  const auto want = diffusion::ReadPng(dir_.File("st.png"));
  ASSERT_TRUE(want.ok());
  for (const std::string& m : {gguf, folder + "/"}) {
    const std::string out = dir_.File("other.png");
    r = RunSluice({"diffuse", "-m", m, "-p", "a (red:1.3) apple", "-n", "blurry", "-W", "64", "-H",
                   "64", "--steps", "2", "--seed", "5", "-o", out},
                  "", std::chrono::seconds(120));
    ASSERT_EQ(r.exit_code, 0) << m << ": " << r.err;
    const auto got = diffusion::ReadPng(out);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_TRUE(got->rgb == want->rgb) << m;
  }
}

TEST_F(DiffuseCliTest, WithinRamTheSameBytesAndAPlanOrTheMinimum) {
  const std::string a = dir_.File("a.png"), s = dir_.File("s.png");
  ProcessResult r = Diffuse({"-o", a});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The tiny model's model needs ~151 MiB at 64x64 (the program allowance is 128 MiB): 160M streams
  // its 33 MB.
  r = Diffuse({"-o", s, "--ram", "160M", "--batch-count", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("memory plan for --ram"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("streamed "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("of --ram"), std::string::npos) << r.err;
  EXPECT_EQ(ReadAll(a), ReadAll(s));
  r = Diffuse({"-o", dir_.File("x.png"), "--ram", "100M"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("is below the minimum of"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("x.png")));
}

TEST_F(DiffuseCliTest, BenchRunsEachBudgetOrNamesItsMinimum) {
  const std::string svg = dir_.File("b.svg");
  const ProcessResult r =
      RunSluice({"bench", "-m", model_, "--budgets", "100M,160M,0", "-W", "64", "-H", "64",
                 "--steps", "2", "--device-bytes", "64M", "--json", "--quiet", "--out", svg},
                "", std::chrono::seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["runs"].size(), 3u);
  EXPECT_NE(j["runs"][0]["refused"].get<std::string>().find("below the minimum"),
            std::string::npos);
  for (int i : {1, 2}) {
    const auto& run = j["runs"][i];
    EXPECT_TRUE(run["refused"].is_null());
    EXPECT_EQ(run["steps"].get<int>(), 2);
    EXPECT_GT(run["image_s"].get<double>(), 0);
    EXPECT_GT(run["peak_rss_bytes"].get<uint64_t>(), 0u);
  }
  EXPECT_GT(j["runs"][1]["bytes_read"].get<uint64_t>(), 0u);  // streamed
  EXPECT_EQ(j["runs"][2]["bytes_read"].get<uint64_t>(), 0u);  // mapped
  EXPECT_DOUBLE_EQ(j["runs"][2]["time_vs_resident"].get<double>(), 1.0);
  EXPECT_GT(j["device_GBps"].get<double>(), 0);
  EXPECT_NE(ReadAll(svg).find("<svg"), std::string::npos);
}

TEST_F(DiffuseCliTest, CtrlCWhileStreamingStopsCleanlyAndWritesNothing) {
  const std::string out = dir_.File("stopped.png");
  PtyProcess p({"diffuse", "-m", model_, "-p", "a cat", "-W", "64", "-H", "64", "--steps", "1000",
                "--ram", "160M", "--seed", "3", "-o", out});
  ASSERT_TRUE(p.started());
  ASSERT_NE(p.WaitFor("step 3/1000", 0, std::chrono::seconds(60)), std::string::npos) << p.output();
  kill(p.pid(), SIGINT);
  EXPECT_EQ(p.WaitExit(std::chrono::seconds(60)), 130) << p.output();
  EXPECT_NE(p.output().find("stopped"), std::string::npos) << p.output();
  EXPECT_FALSE(std::filesystem::exists(out));
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().filename().string().find("stopped"), std::string::npos) << e.path();
  }
}

TEST_F(DiffuseCliTest, BadFlagsFailClearlyAndWriteNothing) {
  struct Case {
    std::vector<std::string> extra;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{}, "needs -o"},
      {{"-o", dir_.File("x.png"), "--sampler", "heun"}, "euler, euler_a, dpm++2m or lcm"},
      {{"-o", dir_.File("x.png"), "--rng", "gpu"}, "expected cuda or cpu"},
      {{"-o", dir_.File("x.png"), "-W", "100"}, "multiples of 64"},
      {{"-o", dir_.File("x.png"), "--schedule", "cosine"}, "discrete, karras or trailing"},
      {{"-o", dir_.path()}, "is a directory"},
  };
  for (const Case& c : cases) {
    const ProcessResult r = Diffuse(c.extra);
    EXPECT_EQ(r.exit_code, 1) << c.says;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
  }
  EXPECT_FALSE(std::filesystem::exists(dir_.File("x.png")));
  const ProcessResult missing = RunSluice(
      {"diffuse", "-m", dir_.File("none.safetensors"), "-p", "x", "-o", dir_.File("y.png")});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("none.safetensors: no such file"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace sluice::testing
