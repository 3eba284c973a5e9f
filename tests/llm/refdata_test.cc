// sluice against logits an outside implementation computed on the tiny qwen3moe models in
// ../shared/refdata (README.md there): F32 models within 1e-4 and the same greedy tokens;
// quantized models close in statistics (activations quantized as that implementation does);
// dequantized to f32 at load, within 1e-4 of its deq/ references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/kernels/dispatch.h"
#include "core/ops/argmax.h"
#include "tests/support/tiny_model.h"

namespace sluice::testing {
namespace {

// The outside implementation's x86 kernels (ggml's) keep 8 partial float lanes per Q8_0 block, as
// sluice's AVX2 kernels do, so on that path the quantized models give its bits; the AVX-512 path
// sums each 32-element block exactly first (the scalar twin's order, block32_avx512.cc), so there
// the models part from the reference by rounding, as the long prompts already do.
bool ScalarOrderBlock32() { return ActiveIsa() == Isa::kAvx512; }

const std::string kRefDir = SLUICE_REFDATA_DIR;
constexpr int64_t kVocab = 299;
constexpr int kGenerated = 16;

bool HaveRefdata() { return std::filesystem::exists(kRefDir + "/README.md"); }

std::vector<float> ReadF32(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<float> v(bytes.size() / sizeof(float));
  std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
  return v;
}

std::vector<int32_t> ReadIdsLine(const std::string& path, const std::string& prefix) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      std::istringstream s(line.substr(prefix.size()));
      std::vector<int32_t> ids;
      int32_t id;
      while (s >> id) ids.push_back(id);
      return ids;
    }
  }
  ADD_FAILURE() << path << ": no line starting with '" << prefix << "'";
  return {};
}

std::vector<int32_t> LongPrompt() {
  std::ifstream in(kRefDir + "/logits/long_prompt_tokens.txt");
  std::vector<int32_t> ids;
  std::string item;
  while (std::getline(in, item, ',')) ids.push_back(std::stoi(item));
  EXPECT_EQ(ids.size(), 200u);
  return ids;
}

std::vector<int32_t> ShortPrompt() {
  std::vector<int32_t> ids;
  for (int i = 1; i <= 32; ++i) ids.push_back(i);
  return ids;
}

struct ModelRun {
  std::vector<float> prompt_logits;  // (n_prompt, vocab)
  std::vector<int32_t> generated;    // greedy ids
  std::vector<float> gen_logits;     // (16, vocab): the row each id was chosen from
};

// Whole prompt at once (batch_size 256 >= 200) or one token at a time.
ModelRun RunModel(const std::string& model, std::span<const int32_t> prompt, bool dequantize,
                  bool one_at_a_time = false) {
  EngineOptions o{
      .threads = 2, .batch_size = 256, .kv_type = KvType::kF32, .dequantize_weights = dequantize};
  ModelRun r;
  auto engine = Engine::Open(model, o);
  EXPECT_TRUE(engine.ok()) << engine.status().ToString();
  if (!engine.ok()) return r;
  Engine& e = **engine;
  r.prompt_logits.resize(prompt.size() * kVocab);
  if (one_at_a_time) {
    for (size_t i = 0; i < prompt.size(); ++i) {
      EXPECT_TRUE(e.Decode(prompt[i]).ok());
      std::copy(e.logits().begin(), e.logits().end(), r.prompt_logits.begin() + i * kVocab);
    }
  } else {
    Status s = e.Prefill(prompt, r.prompt_logits);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  for (int k = 0; k < kGenerated; ++k) {
    r.gen_logits.insert(r.gen_logits.end(), e.logits().begin(), e.logits().end());
    const int32_t id = ArgMax(e.logits());
    r.generated.push_back(id);
    EXPECT_TRUE(e.Decode(id).ok());
  }
  return r;
}

struct Reference {
  std::vector<float> logits, gen_logits;
  std::vector<int32_t> generated;
};

Reference Load(const std::string& prefix) {
  return Reference{ReadF32(prefix + ".logits.f32"), ReadF32(prefix + ".genlogits.f32"),
                   ReadIdsLine(prefix + ".greedy.txt", "generated:")};
}

void ExpectExact(const std::string& what, const ModelRun& run, const Reference& ref) {
  const Diff p = CompareLogits(run.prompt_logits, ref.logits, kVocab);
  const Diff g = CompareLogits(run.gen_logits, ref.gen_logits, kVocab);
  std::printf("%-44s prompt max |diff| %.2e, generated max |diff| %.2e\n", what.c_str(), p.max_abs,
              g.max_abs);
  EXPECT_LT(p.max_abs, 1e-4) << what;
  EXPECT_EQ(p.argmax_agreement, 1.0) << what;
  EXPECT_EQ(run.generated, ref.generated) << what;
  EXPECT_LT(g.max_abs, 1e-4) << what;
}

// A quantized model run on its blocks against the outside implementation's logits: prints the
// statistics and returns them (mean |diff|, argmax agreement, greedy tokens in common).
struct OnBlocks {
  Diff diff;
  int greedy_same = 0;
};
OnBlocks CompareOnBlocks(const std::string& model, const std::string& ref, bool long_prompt,
                         const std::string& what) {
  const ModelRun run = RunModel(model, long_prompt ? LongPrompt() : ShortPrompt(), false);
  const Reference want = Load(ref);
  OnBlocks r{CompareLogits(run.prompt_logits, want.logits, kVocab), 0};
  while (r.greedy_same < kGenerated && r.greedy_same < static_cast<int>(run.generated.size()) &&
         run.generated[r.greedy_same] == want.generated[r.greedy_same]) {
    ++r.greedy_same;
  }
  std::printf("%-44s mean |diff| %.2e, max %.2e, argmax agreement %.3f, greedy prefix %d/16\n",
              what.c_str(), r.diff.mean_abs, r.diff.max_abs, r.diff.argmax_agreement,
              r.greedy_same);
  return r;
}

class RefData : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveRefdata()) GTEST_SKIP() << "reference data not found at " << kRefDir;
  }
};

TEST_F(RefData, F32ModelsMatchWithin1e4AndGreedyTokensAreIdentical) {
  for (std::string name : {"tiny-qwen3moe-f32", "tiny-qwen3moe256-f32"}) {
    const std::string model = kRefDir + "/" + name + ".gguf";
    const std::string ref = kRefDir + "/logits/" + name;
    ExpectExact(name, RunModel(model, ShortPrompt(), false), Load(ref));
    ExpectExact(name + ".long", RunModel(model, LongPrompt(), false), Load(ref + ".long"));
    ExpectExact(name + ".seq", RunModel(model, ShortPrompt(), false, true), Load(ref + ".seq"));
  }
}

TEST_F(RefData, QuantizedModelsDequantizedMatchDeqWithin1e4) {
  for (std::string name :
       {"tiny-qwen3moe-q8_0", "tiny-qwen3moe-q4_0-pure", "tiny-qwen3moe256-q4_k-pure"}) {
    const std::string model = kRefDir + "/" + name + ".gguf";
    const std::string ref = kRefDir + "/deq/" + name + "-deq";
    ExpectExact(name + " (deq)", RunModel(model, ShortPrompt(), true), Load(ref));
    ExpectExact(name + ".long (deq)", RunModel(model, LongPrompt(), true), Load(ref + ".long"));
  }
}

// Tolerances that fit each model: Q8_0 is computed exactly as the outside implementation does
// (measured: 0 difference), Q4_0 to float rounding (4.6e-6 mean on the long prompt), Q4_K within
// the README's "typical 1e-2 to 4e-2 per row" (2.2e-3 mean); greedy paths agree for as many
// tokens as those differences allow (the README: quantized paths may part after a few).
struct QuantTolerance {
  const char* name;
  double mean_abs;   // mean |logit diff| over all positions
  int greedy_short;  // greedy tokens that must agree after the 32-token prompt
  int greedy_long;   // ... after the 200-token prompt
};

TEST_F(RefData, QuantizedModelsOnBlocksAreClose) {
  const QuantTolerance cases[] = {
      {"tiny-qwen3moe-q8_0", 1e-6, kGenerated, kGenerated},
      {"tiny-qwen3moe-q4_0-pure", 1e-4, kGenerated, 8},
      {"tiny-qwen3moe256-q4_k-pure", 1e-2, kGenerated, 3},
  };
  for (const QuantTolerance& tol : cases) {
    const std::string name = tol.name;
    const std::string model = kRefDir + "/" + name + ".gguf";
    for (std::string suffix : {"", ".long"}) {
      const std::string ref = kRefDir + "/logits/" + name + suffix;
      const OnBlocks r = CompareOnBlocks(model, ref, !suffix.empty(), name + suffix);
      EXPECT_LE(r.diff.mean_abs, tol.mean_abs) << name << suffix;
      EXPECT_GE(r.diff.argmax_agreement, 0.99) << name << suffix;
      EXPECT_GE(r.greedy_same, suffix.empty() ? tol.greedy_short : tol.greedy_long)
          << name << suffix;
    }
  }
}

// The grid ("i-quant") formats of real low-bit MoE files (../shared/refdata/quants: expert
// tensors in IQ2_XXS, IQ3_XXS, IQ1_S, IQ2_S, the rest Q8_0). Dequantized at load the engine must
// match the outside implementation's float pass on the same values (deq/); on the blocks
// (activations as Q8_K, as it does) its logits (logits/).
const char* const kGridModels[] = {"tiny-qwen3moe256-iq2_xxs", "tiny-qwen3moe256-iq3_xxs",
                                   "tiny-qwen3moe256-iq1_s", "tiny-qwen3moe256-iq2_s"};

TEST_F(RefData, GridQuantModelsDequantizedMatchDeqWithin1e4) {
  for (std::string name : kGridModels) {
    const std::string model = kRefDir + "/quants/" + name + ".gguf";
    const std::string ref = kRefDir + "/quants/deq/" + name + "-deq";
    ExpectExact(name + " (deq)", RunModel(model, ShortPrompt(), true), Load(ref));
    ExpectExact(name + ".long (deq)", RunModel(model, LongPrompt(), true), Load(ref + ".long"));
  }
}

TEST_F(RefData, GridQuantModelsOnBlocksMatchTheirLogits) {
  for (std::string name : kGridModels) {
    const std::string model = kRefDir + "/quants/" + name + ".gguf";
    for (std::string suffix : {"", ".long"}) {
      const std::string ref = kRefDir + "/quants/logits/" + name + suffix;
      const OnBlocks r = CompareOnBlocks(model, ref, !suffix.empty(), name + suffix);
      // Measured: 0 on the 32-token prompt (the same integer sums and float steps as theirs),
      // 8.6e-4 .. 1.01e-3 mean on the 200-token one (as for Q4_K above: the long prompt's
      // attention and router sums part by rounding); bounds about 2.5x that. Where the Q8_0
      // tensors are summed in the scalar order (AVX-512), 1.9e-4 .. 3.3e-3 on both prompts and
      // near-ties may part the greedy path (3 of 16 tokens for IQ1_S): bound 8e-3.
      if (ScalarOrderBlock32()) {
        EXPECT_LE(r.diff.mean_abs, 8e-3) << name << suffix;
        EXPECT_GE(r.diff.argmax_agreement, 0.98) << name << suffix;
        continue;
      }
      EXPECT_LE(r.diff.mean_abs, suffix.empty() ? 1e-5 : 2.5e-3) << name << suffix;
      EXPECT_GE(r.diff.argmax_agreement, 0.99) << name << suffix;
      EXPECT_EQ(r.greedy_same, kGenerated) << name << suffix;
    }
  }
}

// The architectures of ../shared/refdata/archs (same vocabulary, prompts and file formats). F32
// models and the dequantized runs within 1e-4 with identical greedy tokens; on the blocks close
// in statistics (the README: mean |diff| 9e-3 and up against the deq runs, paths may part).
const char* const kArchModels[] = {"tiny-glm4moe", "tiny-qwen35moe", "tiny-qwen3next",
                                   "tiny-deepseek2"};

TEST_F(RefData, ArchitecturesF32MatchWithin1e4) {
  for (std::string arch : kArchModels) {
    const std::string name = arch + "-f32";
    const std::string model = kRefDir + "/archs/" + name + ".gguf";
    const std::string ref = kRefDir + "/archs/logits/" + name;
    ExpectExact(name, RunModel(model, ShortPrompt(), false), Load(ref));
    ExpectExact(name + ".long", RunModel(model, LongPrompt(), false), Load(ref + ".long"));
    ExpectExact(name + ".seq", RunModel(model, ShortPrompt(), false, true), Load(ref + ".seq"));
  }
}

TEST_F(RefData, ArchitecturesQuantizedDequantizedMatchDeqWithin1e4) {
  for (std::string arch : kArchModels) {
    for (std::string quant : {"-q8_0", "-q4_k-pure"}) {
      const std::string name = arch + quant;
      const std::string model = kRefDir + "/archs/" + name + ".gguf";
      const std::string ref = kRefDir + "/archs/deq/" + name + "-deq";
      ExpectExact(name + " (deq)", RunModel(model, ShortPrompt(), true), Load(ref));
      ExpectExact(name + ".long (deq)", RunModel(model, LongPrompt(), true), Load(ref + ".long"));
    }
  }
}

// gpt-oss has no F32 file (its experts are MXFP4 as published): its MXFP4 file and the Q8_0 /
// Q4_K ones, dequantized at load, against the outside implementation's runs on the same values.
TEST_F(RefData, GptOssDequantizedMatchDeqWithin1e4) {
  for (std::string name : {"tiny-gptoss-mxfp4", "tiny-gptoss-q8_0", "tiny-gptoss-q4_k-pure"}) {
    const std::string model = kRefDir + "/archs/" + name + ".gguf";
    const std::string ref = kRefDir + "/archs/deq/" + name + "-deq";
    ExpectExact(name + " (deq)", RunModel(model, ShortPrompt(), true), Load(ref));
    ExpectExact(name + ".long (deq)", RunModel(model, LongPrompt(), true), Load(ref + ".long"));
    if (name == "tiny-gptoss-mxfp4") {
      ExpectExact(name + ".seq (deq)", RunModel(model, ShortPrompt(), true, true),
                  Load(ref + ".seq"));
    }
  }
}

// Measured mean |diff| on the 32-token / 200-token prompts: glm4moe 0 and 1.1e-7 / 1.1e-3 ..
// 2.0e-3; qwen35moe Q8_0 0 / 2.0e-5, Q4_K 3.2e-4 (its first greedy token is a near-tie and
// differs) / 1.6e-3; qwen3next 0 and 1.1e-7 / 4.9e-3 .. 5.4e-3 (the README: the recurrence
// accumulates rounding); deepseek2 0 and 1.3e-7 / 2.4e-3 .. 2.8e-3; gpt-oss MXFP4 1.4e-7 / 2.5e-5,
// Q8_0 2.0e-5 / 3.4e-6, Q4_K 1.9e-3 (a near-tie parts the greedy path after one token) / 1.1e-7.
// Bounds about 2.5x those.
struct ArchQuantTolerance {
  const char* name;
  double mean_short, mean_long;
  int greedy_short;  // greedy tokens that must agree after the 32-token prompt
};

TEST_F(RefData, ArchitecturesQuantizedOnBlocksAreClose) {
  const ArchQuantTolerance cases[] = {
      {"tiny-glm4moe-q8_0", 1e-5, 5e-3, kGenerated},
      {"tiny-glm4moe-q4_k-pure", 1e-5, 5e-3, kGenerated},
      {"tiny-qwen35moe-q8_0", 1e-5, 5e-3, kGenerated},
      {"tiny-qwen35moe-q4_k-pure", 1e-3, 5e-3, 0},
      {"tiny-qwen3next-q8_0", 1e-5, 1.4e-2, kGenerated},
      {"tiny-qwen3next-q4_k-pure", 1e-5, 1.4e-2, kGenerated},
      {"tiny-deepseek2-q8_0", 1e-5, 7e-3, kGenerated},
      {"tiny-deepseek2-q4_k-pure", 1e-5, 7e-3, kGenerated},
      {"tiny-gptoss-mxfp4", 1e-5, 1e-4, kGenerated},
      {"tiny-gptoss-q8_0", 1e-4, 1e-4, kGenerated},
      {"tiny-gptoss-q4_k-pure", 5e-3, 1e-5, 1},
  };
  for (const ArchQuantTolerance& tol : cases) {
    const std::string name = tol.name;
    const std::string model = kRefDir + "/archs/" + name + ".gguf";
    for (std::string suffix : {"", ".long"}) {
      const OnBlocks r = CompareOnBlocks(model, kRefDir + "/archs/logits/" + name + suffix,
                                         !suffix.empty(), name + suffix);
      if (ScalarOrderBlock32()) {
        // Q8_0 / MXFP4 tensors summed in the scalar order: measured up to 6.0e-3 on the short
        // prompt (tiny-qwen3next-q8_0), near-ties part greedy paths.
        EXPECT_LE(r.diff.mean_abs,
                  std::max(suffix.empty() ? tol.mean_short : tol.mean_long, 1.5e-2))
            << name << suffix;
        EXPECT_GE(r.diff.argmax_agreement, 0.95) << name << suffix;
        continue;
      }
      EXPECT_LE(r.diff.mean_abs, suffix.empty() ? tol.mean_short : tol.mean_long) << name << suffix;
      EXPECT_GE(r.diff.argmax_agreement, 0.95) << name << suffix;
      if (suffix.empty()) {
        EXPECT_GE(r.greedy_same, tol.greedy_short) << name;
      }
    }
  }
}

}  // namespace
}  // namespace sluice::testing
