// A GGUF whose metadata disagrees with its tensors (issue 16: expert_count or block_count off
// by some hit a CHECK in the memory plan, which walked experts before the shapes were checked):
// opening it, converting it and verifying it are errors naming the tensor, never an abort.
#include <gtest/gtest.h>

#include "io/gguf_convert.h"
#include "llm/engine.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

struct Case {
  const char* key;
  uint32_t value;
};

TEST(MismatchedModel, MetadataThatDisagreesWithTheTensorsIsAnError) {
  const Case cases[] = {
      {"qwen3moe.expert_count", 16},  // the tensors hold 8
      {"qwen3moe.expert_count", 4},
      {"qwen3moe.block_count", 3},  // the file has 2 layers
      {"qwen3moe.block_count", 1},
      {"qwen3moe.expert_feed_forward_length", 64},  // the experts are 32 wide
  };
  for (const Case& c : cases) {
    TempDir dir;
    TinyModelSpec spec;
    spec.edit_metadata = [&c](Metadata& m) { m.SetU32(c.key, c.value); };
    const std::string path = dir.File("m.gguf");
    ASSERT_TRUE(WriteTinyModel(path, spec).ok());
    for (uint64_t ram : {uint64_t{0}, uint64_t{256} << 20}) {
      auto engine = Engine::Open(path, {.ram_budget_bytes = ram, .threads = 1});
      ASSERT_FALSE(engine.ok()) << c.key << " = " << c.value;
      const std::string msg = engine.status().message();
      EXPECT_NE(msg.find("blk."), std::string::npos) << c.key << ": " << msg;  // names a tensor
    }
  }
}

}  // namespace
}  // namespace sluice::testing
