#include "tests/support/test_model.h"

#include <stdlib.h>

#include <filesystem>
#include <random>
#include <vector>

#include "io/gguf_writer.h"
#include "io/metadata.h"
#include "tests/tokenizer/test_vocab.h"

namespace sluice::testing {
namespace {

constexpr const char* kChatMlTemplate =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|im_start|>assistant\\n' "
    "}}{% endif %}";

}  // namespace

Metadata TestModelMetadata(const TestModelShape& s) {
  Metadata m("test model");
  const std::string a = "qwen3moe.";
  m.SetString("general.architecture", "qwen3moe");
  m.SetString("general.name", "sluice-cli-test");
  m.SetU32(a + "context_length", s.context_length);
  m.SetU32(a + "embedding_length", s.n_embd);
  m.SetU32(a + "block_count", s.n_layer);
  m.SetU32(a + "attention.head_count", s.n_head);
  m.SetU32(a + "attention.head_count_kv", s.n_head_kv);
  m.SetU32(a + "attention.key_length", s.head_dim);
  m.SetU32(a + "attention.value_length", s.head_dim);
  m.SetF32(a + "rope.freq_base", 1e6f);
  m.SetF32(a + "attention.layer_norm_rms_epsilon", 1e-6f);
  m.SetU32(a + "expert_count", s.n_expert);
  m.SetU32(a + "expert_used_count", s.n_expert_used);
  m.SetU32(a + "expert_feed_forward_length", s.n_ff_exp);
  std::vector<std::string> tokens = testing_vocab::Gpt2ByteTokens();
  tokens.push_back("Ġt");  // merge rank 0
  tokens.push_back("he");  // merge rank 1
  tokens.push_back("<|endoftext|>");
  tokens.push_back("<|im_start|>");
  tokens.push_back("<|im_end|>");
  std::vector<int32_t> types(tokens.size(), 1);                         // NORMAL
  types[kTestEndOfText] = types[kTestImStart] = types[kTestImEnd] = 3;  // CONTROL
  m.SetString("tokenizer.ggml.model", "gpt2");
  m.SetString("tokenizer.ggml.pre", "qwen2");
  m.SetStringArray("tokenizer.ggml.tokens", tokens);
  m.SetI32Array("tokenizer.ggml.token_type", types);
  m.SetStringArray("tokenizer.ggml.merges", {"Ġ t", "h e"});
  m.SetU32("tokenizer.ggml.bos_token_id", kTestEndOfText);
  m.SetU32("tokenizer.ggml.eos_token_id", kTestImEnd);
  m.SetU32("tokenizer.ggml.padding_token_id", kTestEndOfText);
  m.SetBool("tokenizer.ggml.add_bos_token", false);
  if (s.chat_template) m.SetString("tokenizer.chat_template", kChatMlTemplate);
  return m;
}

namespace {

struct Tensor {
  GgufTensorSpec spec;
  float stddev = 0.05f;
  float mean = 0.0f;
};

std::vector<Tensor> PlanTensors(const TestModelShape& s) {
  const int64_t e = s.n_embd, v = kTestVocabSize, hd = s.head_dim, ff = s.n_ff_exp;
  std::vector<Tensor> t;
  auto add = [&](std::string name, std::vector<int64_t> ne, float stddev = 0.05f,
                 float mean = 0.0f) {
    t.push_back({{std::move(name), GgmlType::kF32, std::move(ne)}, stddev, mean});
  };
  add("token_embd.weight", {e, v});
  for (int l = 0; l < s.n_layer; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", {e}, 0.1f, 1.0f);
    add(p + "attn_q.weight", {e, s.n_head * hd});
    add(p + "attn_k.weight", {e, s.n_head_kv * hd});
    add(p + "attn_v.weight", {e, s.n_head_kv * hd});
    add(p + "attn_q_norm.weight", {hd}, 0.1f, 1.0f);
    add(p + "attn_k_norm.weight", {hd}, 0.1f, 1.0f);
    add(p + "attn_output.weight", {s.n_head * hd, e});
    add(p + "ffn_norm.weight", {e}, 0.1f, 1.0f);
    add(p + "ffn_gate_inp.weight", {e, s.n_expert});
    add(p + "ffn_gate_exps.weight", {e, ff, s.n_expert});
    add(p + "ffn_up_exps.weight", {e, ff, s.n_expert});
    add(p + "ffn_down_exps.weight", {ff, e, s.n_expert});
  }
  add("output_norm.weight", {e}, 0.1f, 1.0f);
  // Wide output logits (std ~0.5 * sqrt(n_embd)) put every ordinary token far from 0; the rows of
  // the three special tokens are zero (logit exactly 0, near the median), so top-k 40 never keeps
  // them and replies never end on their own: the tests stop them with -n or Ctrl-C.
  add("output.weight", {e, v}, 0.5f);
  return t;
}

}  // namespace

Status WriteTestModel(const std::string& path, const TestModelShape& shape) {
  std::vector<Tensor> tensors = PlanTensors(shape);
  std::vector<GgufTensorSpec> specs;
  for (const Tensor& t : tensors) specs.push_back(t.spec);
  ASSIGN_OR_RETURN(std::unique_ptr<GgufWriter> writer,
                   GgufWriter::Create(path, TestModelMetadata(shape), specs));
  std::mt19937_64 rng(shape.seed);
  for (const Tensor& t : tensors) {
    ASSIGN_OR_RETURN(uint64_t bytes, GgufTensorBytes(t.spec));
    std::vector<float> values(bytes / sizeof(float));
    std::normal_distribution<float> dist(t.mean, t.stddev);
    for (float& x : values) x = dist(rng);
    if (t.spec.name == "output.weight") {
      for (int32_t id : {kTestEndOfText, kTestImStart, kTestImEnd}) {
        std::fill_n(values.begin() + int64_t{id} * shape.n_embd, shape.n_embd, 0.0f);
      }
    }
    RETURN_IF_ERROR(writer->WriteTensor(t.spec.name, values.data(), bytes));
  }
  return writer->Finish();
}

}  // namespace sluice::testing
