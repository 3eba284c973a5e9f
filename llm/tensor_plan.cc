#include "llm/tensor_plan.h"

#include <cstdio>
#include <unordered_set>

#include "core/base/log.h"
#include "core/kernels/matmul.h"

namespace sluice {
namespace {

std::string LayerName(int layer, const char* suffix) { return StrCat("blk.", layer, ".", suffix); }

void Add(std::vector<ExpectedTensor>& out, std::string name, std::array<int64_t, 4> ne,
         TensorKind kind, Presence presence = Presence::kRequired) {
  if (presence == Presence::kAbsent) return;
  out.push_back(ExpectedTensor{std::move(name), ne, kind, presence});
}

bool TypeFitsKind(GgmlType type, TensorKind kind) {
  switch (kind) {
    case TensorKind::kVector:
      return type == GgmlType::kF32;
    case TensorKind::kMatrix:
    case TensorKind::kEmbedding:
      return IsSupportedWeightType(type);
  }
  return false;
}

const char* KindText(TensorKind kind) {
  switch (kind) {
    case TensorKind::kVector:
      return "f32";
    case TensorKind::kMatrix:
      return "a matmul weight type";
    case TensorKind::kEmbedding:
      return "a dequantizable type";
  }
  return "?";
}

Status CheckExperts(const ModelFile& model, const ModelConfig& c, int layer) {
  std::optional<ExpertTensors> experts = model.expert_tensors(layer);
  if (!experts.has_value()) {
    return NotFound(model.path(), ": layer ", layer, " has no routed experts (blk.", layer,
                    ".ffn_{gate,up,down}_exps.weight); ", c.arch, " has ", c.n_expert,
                    " experts in every layer");
  }
  const std::array<int64_t, 4> in_out{c.n_embd, c.n_ff_exp, c.n_expert, 1};
  const std::array<int64_t, 4> down{c.n_ff_exp, c.n_embd, c.n_expert, 1};
  const std::pair<const TensorInfo*, std::array<int64_t, 4>> checks[] = {
      {&experts->gate, in_out}, {&experts->up, in_out}, {&experts->down, down}};
  for (const auto& [info, ne] : checks) {
    RETURN_IF_ERROR(CheckTensor(
        model.path(), ExpectedTensor{info->name, ne, TensorKind::kMatrix, Presence::kRequired},
        info));
  }
  return Status::Ok();
}

// A full-attention layer: q (with the output gate's rows when the model has one), k, v, output.
void AddAttention(std::vector<ExpectedTensor>& out, const ModelConfig& c, int l) {
  using K = TensorKind;
  const ArchSpec& spec = *c.spec;
  Add(out, LayerName(l, "attn_q.weight"), {c.n_embd, c.q_rows(), 1, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_k.weight"), {c.n_embd, c.k_dim(), 1, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_v.weight"), {c.n_embd, c.v_dim(), 1, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_output.weight"), {c.attn_out_dim(), c.n_embd, 1, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_q.bias"), {c.q_dim(), 1, 1, 1}, K::kVector, spec.qkv_bias);
  Add(out, LayerName(l, "attn_k.bias"), {c.k_dim(), 1, 1, 1}, K::kVector, spec.qkv_bias);
  Add(out, LayerName(l, "attn_v.bias"), {c.v_dim(), 1, 1, 1}, K::kVector, spec.qkv_bias);
  Add(out, LayerName(l, "attn_q_norm.weight"), {c.head_dim_k, 1, 1, 1}, K::kVector, spec.qk_norm);
  Add(out, LayerName(l, "attn_k_norm.weight"), {c.head_dim_k, 1, 1, 1}, K::kVector, spec.qk_norm);
  Add(out, LayerName(l, "attn_output.bias"), {c.n_embd, 1, 1, 1}, K::kVector,
      spec.attn_output_bias);
  Add(out, LayerName(l, "attn_sinks.weight"), {c.n_head, 1, 1, 1}, K::kVector, spec.attn_sinks);
}

// A multi-head latent attention layer (llm/mla_block.h).
void AddMla(std::vector<ExpectedTensor>& out, const ModelConfig& c, int l) {
  using K = TensorKind;
  const MlaShape& m = c.mla;
  const int64_t q_rows = int64_t{c.n_head} * (m.nope + m.rope);
  if (m.q_lora > 0) {
    Add(out, LayerName(l, "attn_q_a.weight"), {c.n_embd, m.q_lora, 1, 1}, K::kMatrix);
    Add(out, LayerName(l, "attn_q_a_norm.weight"), {m.q_lora, 1, 1, 1}, K::kVector);
    Add(out, LayerName(l, "attn_q_b.weight"), {m.q_lora, q_rows, 1, 1}, K::kMatrix);
  } else {
    Add(out, LayerName(l, "attn_q.weight"), {c.n_embd, q_rows, 1, 1}, K::kMatrix);
  }
  Add(out, LayerName(l, "attn_kv_a_mqa.weight"), {c.n_embd, m.kv_lora + m.rope, 1, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_kv_a_norm.weight"), {m.kv_lora, 1, 1, 1}, K::kVector);
  Add(out, LayerName(l, "attn_k_b.weight"), {m.nope, m.kv_lora, c.n_head, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_v_b.weight"), {m.kv_lora, m.v_head, c.n_head, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_output.weight"), {int64_t{c.n_head} * m.v_head, c.n_embd, 1, 1},
      K::kMatrix);
}

// A gated delta-net layer (llm/delta_net_block.h).
void AddDeltaNet(std::vector<ExpectedTensor>& out, const ModelConfig& c, int l) {
  using K = TensorKind;
  const DeltaNetShape& s = c.delta_net;
  const int64_t nv = s.n_v_heads;
  Add(out, LayerName(l, "attn_qkv.weight"), {c.n_embd, s.conv_dim(), 1, 1}, K::kMatrix);
  Add(out, LayerName(l, "attn_gate.weight"), {c.n_embd, s.v_dim(), 1, 1}, K::kMatrix);
  Add(out, LayerName(l, "ssm_conv1d.weight"), {s.conv_kernel, s.conv_dim(), 1, 1}, K::kVector);
  Add(out, LayerName(l, "ssm_dt.bias"), {nv, 1, 1, 1}, K::kVector);
  Add(out, LayerName(l, "ssm_a"), {nv, 1, 1, 1}, K::kVector);
  if (c.spec->delta_net == DeltaNetKind::kGrouped) {
    Add(out, LayerName(l, "ssm_ba.weight"), {c.n_embd, 2 * nv, 1, 1}, K::kMatrix);
  } else {
    Add(out, LayerName(l, "ssm_beta.weight"), {c.n_embd, nv, 1, 1}, K::kMatrix);
    Add(out, LayerName(l, "ssm_alpha.weight"), {c.n_embd, nv, 1, 1}, K::kMatrix);
  }
  Add(out, LayerName(l, "ssm_norm.weight"), {s.state_size, 1, 1, 1}, K::kVector);
  Add(out, LayerName(l, "ssm_out.weight"), {s.v_dim(), c.n_embd, 1, 1}, K::kMatrix);
}

}  // namespace

std::string ShapeString(const std::array<int64_t, 4>& ne) {
  int dims = 4;
  while (dims > 1 && ne[dims - 1] == 1) --dims;
  std::string s = "[";
  for (int i = 0; i < dims; ++i) s += StrCat(i ? ", " : "", ne[i]);
  return s + "]";
}

std::vector<ExpectedTensor> ExpectedDenseTensors(const ModelConfig& c) {
  using K = TensorKind;
  const ArchSpec& spec = *c.spec;
  std::vector<ExpectedTensor> out;
  Add(out, "token_embd.weight", {c.n_embd, c.n_vocab, 1, 1}, K::kEmbedding);
  for (int l = 0; l < c.n_layer; ++l) {
    Add(out, LayerName(l, "attn_norm.weight"), {c.n_embd, 1, 1, 1}, K::kVector);
    if (!c.is_attention_layer(l)) {
      AddDeltaNet(out, c, l);
    } else if (spec.attention == AttentionKind::kMla) {
      AddMla(out, c, l);
    } else {
      AddAttention(out, c, l);
    }
    Add(out, LayerName(l, StrCat(spec.ffn_norm, ".weight").c_str()), {c.n_embd, 1, 1, 1},
        K::kVector);
    if (!c.is_moe_layer(l)) {  // a dense FFN
      Add(out, LayerName(l, "ffn_gate.weight"), {c.n_embd, c.n_ff, 1, 1}, K::kMatrix);
      Add(out, LayerName(l, "ffn_up.weight"), {c.n_embd, c.n_ff, 1, 1}, K::kMatrix);
      Add(out, LayerName(l, "ffn_down.weight"), {c.n_ff, c.n_embd, 1, 1}, K::kMatrix);
      continue;
    }
    Add(out, LayerName(l, "ffn_gate_inp.weight"), {c.n_embd, c.n_expert, 1, 1}, K::kMatrix);
    Add(out, LayerName(l, "exp_probs_b.bias"), {c.n_expert, 1, 1, 1}, K::kVector,
        spec.selection_bias);
    Add(out, LayerName(l, "ffn_gate_inp.bias"), {c.n_expert, 1, 1, 1}, K::kVector,
        spec.router_bias);
    Add(out, LayerName(l, "ffn_gate_exps.bias"), {c.n_ff_exp, c.n_expert, 1, 1}, K::kVector,
        spec.expert_bias);
    Add(out, LayerName(l, "ffn_up_exps.bias"), {c.n_ff_exp, c.n_expert, 1, 1}, K::kVector,
        spec.expert_bias);
    Add(out, LayerName(l, "ffn_down_exps.bias"), {c.n_embd, c.n_expert, 1, 1}, K::kVector,
        spec.expert_bias);
    if (c.has_shared_expert()) {
      Add(out, LayerName(l, "ffn_gate_shexp.weight"), {c.n_embd, c.n_ff_shexp, 1, 1}, K::kMatrix);
      Add(out, LayerName(l, "ffn_up_shexp.weight"), {c.n_embd, c.n_ff_shexp, 1, 1}, K::kMatrix);
      Add(out, LayerName(l, "ffn_down_shexp.weight"), {c.n_ff_shexp, c.n_embd, 1, 1}, K::kMatrix);
      if (spec.shared_expert == SharedExpertKind::kGated) {
        Add(out, LayerName(l, "ffn_gate_inp_shexp.weight"), {c.n_embd, 1, 1, 1}, K::kVector);
      }
    }
  }
  Add(out, "output_norm.weight", {c.n_embd, 1, 1, 1}, K::kVector);
  Add(out, "output.weight", {c.n_embd, c.n_vocab, 1, 1}, K::kMatrix, Presence::kOptional);
  return out;
}

Status CheckTensor(const std::string& source, const ExpectedTensor& expected,
                   const TensorInfo* found) {
  if (found == nullptr) {
    if (expected.presence == Presence::kOptional) return Status::Ok();
    return NotFound(source, ": tensor ", expected.name, " is missing (expected shape ",
                    ShapeString(expected.ne), ")");
  }
  if (found->ne != expected.ne) {
    return Corrupt(source, ": tensor ", expected.name, ": shape expected ",
                   ShapeString(expected.ne), ", found ", ShapeString(found->ne));
  }
  if (!TypeFitsKind(found->type, expected.kind)) {
    return Unsupported(source, ": tensor ", expected.name, ": type ", TypeName(found->type),
                       " is not supported here (expected ", KindText(expected.kind), ")");
  }
  if (!IsValidRowLength(found->type, found->ne[0])) {
    return Corrupt(source, ": tensor ", expected.name, ": row of ", found->ne[0],
                   " elements is not a whole number of ", TypeName(found->type), " blocks");
  }
  return Status::Ok();
}

Status CheckModelTensors(const ModelFile& model, const ModelConfig& config) {
  std::unordered_set<std::string> used;
  for (const ExpectedTensor& e : ExpectedDenseTensors(config)) {
    const TensorInfo* found = model.FindDense(e.name);
    RETURN_IF_ERROR(CheckTensor(model.path(), e, found));
    if (found != nullptr && found->data == nullptr) {
      return Corrupt(model.path(), ": dense tensor ", e.name, " has no mapped data");
    }
    used.insert(e.name);
  }
  // A tied output head is the embedding computed as a matrix: it must be a matmul type too.
  if (model.FindDense("output.weight") == nullptr) {
    const TensorInfo* embd = model.FindDense("token_embd.weight");
    RETURN_IF_ERROR(CheckTensor(model.path(),
                                ExpectedTensor{"token_embd.weight (tied output head)", embd->ne,
                                               TensorKind::kMatrix, Presence::kRequired},
                                embd));
  }
  for (int l = 0; l < config.n_layer; ++l) {
    if (config.is_moe_layer(l)) {
      RETURN_IF_ERROR(CheckExperts(model, config, l));
    } else if (model.expert_tensors(l).has_value()) {
      return Corrupt(model.path(), ": layer ", l, " has routed experts, but ", config.arch,
                     ".leading_dense_block_count = ", config.n_dense_layers,
                     " makes it a dense layer");
    }
  }
  // Layers past block_count would be silently ignored: the metadata and the file disagree.
  // (Layers n_layer .. block_count - 1 are the multi-token-prediction ones, not run.)
  const int n_file = config.n_layer_file;
  for (const TensorInfo& t : model.dense_tensors()) {
    int layer = -1;
    if (std::sscanf(t.name.c_str(), "blk.%d.", &layer) == 1 && layer >= n_file) {
      return Corrupt(model.path(), ": tensor ", t.name, " is in layer ", layer, ", but ",
                     config.arch, ".block_count says the model has ", n_file, " layers");
    }
  }
  if (model.expert_tensors(n_file).has_value()) {
    return Corrupt(model.path(), ": tensor blk.", n_file, ".ffn_gate_exps.weight is in layer ",
                   n_file, ", but ", config.arch, ".block_count says the model has ", n_file,
                   " layers");
  }
  int unused = 0;
  std::string first_unused;
  for (const TensorInfo& t : model.dense_tensors()) {
    if (used.count(t.name) == 0) {
      if (unused++ == 0) first_unused = t.name;
    }
  }
  if (unused > 0) {
    LOG(WARNING) << model.path() << ": " << unused << " tensor(s) not used by " << config.arch
                 << " (first: " << first_unused << ")";
  }
  return Status::Ok();
}

}  // namespace sluice
