// `sluice template` as a user runs it: a conversation in a JSON file (or stdin) rendered with a
// chat template chosen by name or detected from a Jinja file, the exact text on stdout; bad
// input is one clear error. The model (refdata's tiny qwen3moe) only provides the vocabulary.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/cli/subprocess.h"
#include "tests/support/temp_dir.h"

namespace sluice::testing {
namespace {

const std::string kModel = std::string(SLUICE_REFDATA_DIR) + "/tiny-qwen3moe-f32.gguf";
constexpr const char* kConversation =
    R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])";

class TemplateCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "no reference model at " << kModel;
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_.File(name);
    std::ofstream(path) << text;
    return path;
  }
  TempDir dir_;
};

TEST_F(TemplateCli, RendersByNameAndFromAFile) {
  const std::string conv = Write("conv.json", kConversation);
  ProcessResult r = RunSluice(
      {"template", "-m", kModel, "--messages", conv, "--chat-template", "glm4.5", "--no-think"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi/nothink<|assistant|>\n"
            "<think></think>");
  EXPECT_NE(r.err.find("glm4.5"), std::string::npos) << r.err;

  const std::string jinja = Write("kimi.jinja",
                                  "{%- for m in messages -%}<|im_user|>user<|im_middle|>"
                                  "{{ m.content }}<|im_end|>{%- endfor -%}");
  r = RunSluice({"template", "-m", kModel, "--messages", "-", "--chat-template-file", jinja,
                 "--no-generation-prompt"},
                kConversation);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "<|im_system|>system<|im_middle|>Be brief.<|im_end|><|im_user|>user"
            "<|im_middle|>Hi<|im_end|>");
}

TEST_F(TemplateCli, BadInputIsOneClearError) {
  const std::string bad = Write("bad.json", R"([{"role": "robot", "content": "x"}])");
  ProcessResult r = RunSluice({"template", "-m", kModel, "--messages", bad});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("robot"), std::string::npos) << r.err;
  r = RunSluice({"template", "-m", kModel, "--messages", Write("x.json", "{not json")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not valid JSON"), std::string::npos) << r.err;
  r = RunSluice({"template", "-m", kModel, "--messages", Write("c.json", kConversation),
                 "--chat-template-file", dir_.File("missing.jinja")});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("missing.jinja"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace sluice::testing
