#include "llm/weights.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <unordered_map>

#include "core/base/byte_size.h"
#include "core/base/log.h"
#include "core/kernels/matmul.h"
#include "io/xxh3.h"
#include "llm/tensor_plan.h"

namespace sluice {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kTensorAlign = 64;  // cache line: every copied tensor starts on one

struct Placed {
  GgmlType type;
  const uint8_t* data;
};

// The dense tensors the config uses, in plan order, paired with the file's tensor info.
std::vector<std::pair<ExpectedTensor, const TensorInfo*>> UsedTensors(const ModelFile& model,
                                                                      const ModelConfig& c) {
  std::vector<std::pair<ExpectedTensor, const TensorInfo*>> used;
  for (ExpectedTensor& e : ExpectedDenseTensors(c)) {
    const TensorInfo* info = model.FindDense(e.name);
    if (info != nullptr) used.emplace_back(std::move(e), info);
  }
  return used;
}

bool Converts(const TensorInfo& t, const WeightOptions& options) {
  return options.dequantize_to_f32 && t.type != GgmlType::kF32;
}

uint64_t PlacedBytes(const TensorInfo& t, const WeightOptions& options) {
  return Converts(t, options) ? static_cast<uint64_t>(t.elements()) * sizeof(float) : t.nbytes;
}

// Drops the whole pages inside [data, data + bytes) from this process's RSS: after the copy the
// mapping is never read again, and the pages at the edges may be shared with other tensors.
void DropMappedPages(const uint8_t* data, uint64_t bytes) {
  const uint64_t begin = AlignUp(reinterpret_cast<uint64_t>(data), kPage);
  const uint64_t end = AlignDown(reinterpret_cast<uint64_t>(data) + bytes, kPage);
  if (end > begin) {
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
  }
}

Matrix MakeMatrix(const std::unordered_map<std::string, Placed>& placed, const std::string& name,
                  int64_t rows, int64_t cols) {
  auto it = placed.find(name);
  if (it == placed.end()) return Matrix{};
  return Matrix{it->second.type, it->second.data, rows, cols};
}

const float* Vector(const std::unordered_map<std::string, Placed>& placed,
                    const std::string& name) {
  auto it = placed.find(name);
  if (it == placed.end()) return nullptr;
  DCHECK(it->second.type == GgmlType::kF32);
  return reinterpret_cast<const float*>(it->second.data);
}

}  // namespace

Result<DenseResidency> ParseDenseResidency(std::string_view name) {
  if (name == "copy") return DenseResidency::kCopy;
  if (name == "mlock") return DenseResidency::kMlock;
  if (name == "mmap") return DenseResidency::kMmap;
  return InvalidArgument("dense residency '", name, "': expected copy, mlock or mmap");
}

const char* DenseResidencyName(DenseResidency residency) {
  switch (residency) {
    case DenseResidency::kCopy:
      return "copy";
    case DenseResidency::kMlock:
      return "mlock";
    case DenseResidency::kMmap:
      return "mmap";
  }
  return "?";
}

uint64_t ModelWeights::ResidentBytes(const ModelFile& model, const ModelConfig& config,
                                     const WeightOptions& options) {
  uint64_t total = 0;
  for (const auto& [expected, info] : UsedTensors(model, config)) {
    total += AlignUp(PlacedBytes(*info, options), kTensorAlign);
  }
  return total;
}

ModelWeights::~ModelWeights() {
  for (const auto& [data, bytes] : locked_ranges_) munlock(data, bytes);
}

Result<std::unique_ptr<ModelWeights>> ModelWeights::Load(const ModelFile& model,
                                                         const ModelConfig& c,
                                                         const WeightOptions& options) {
  RETURN_IF_ERROR(CheckModelTensors(model, c));
  std::unique_ptr<ModelWeights> w(new ModelWeights());
  const auto used = UsedTensors(model, c);
  if (options.verify_checksums) {
    // Before any byte is used: a flipped bit in a dense tensor would otherwise give wrong
    // output with exit 0 (the experts are checked after each read; these are read once, here).
    for (const auto& [expected, info] : used) {
      if (!info->has_checksum) continue;
      const uint64_t found = Xxh3_64(info->data, info->nbytes);
      if (found != info->xxh3) {
        return Corrupt(model.path(), ": dense tensor ", info->name, " (", info->nbytes,
                       " bytes): xxh3 expected ", Hex64(info->xxh3), ", found ", Hex64(found),
                       "; the file is damaged (`sluice verify` lists every bad block; re-convert)");
      }
    }
  }
  std::unordered_map<std::string, Placed> placed;
  const bool copy = options.residency == DenseResidency::kCopy || options.dequantize_to_f32;

  if (copy) {
    const uint64_t total = ResidentBytes(model, c, options);
    w->storage_ = AlignedBuffer(total, AllocOptions{.lock = options.lock_copy, .huge_pages = true});
    if (w->storage_.data() == nullptr) {
      return ResourceExhausted(model.path(), ": cannot allocate ", FormatBytes(total),
                               " for the dense weights");
    }
    if (options.lock_copy && !w->storage_.locked()) {
      LOG(WARNING) << "mlock of " << FormatBytes(total)
                   << " of dense weights failed (raise `ulimit -l`); continuing unlocked";
    }
    uint64_t offset = 0;
    for (const auto& [expected, info] : used) {
      uint8_t* dst = w->storage_.data() + offset;
      if (Converts(*info, options)) {
        const int64_t cols = info->ne[0];
        const uint64_t row_bytes = RowBytes(info->type, cols);
        for (int64_t r = 0; r < info->rows(); ++r) {
          DequantizeRow(info->type, info->data + r * row_bytes,
                        reinterpret_cast<float*>(dst) + r * cols, cols);
        }
        placed[info->name] = Placed{GgmlType::kF32, dst};
      } else {
        std::memcpy(dst, info->data, info->nbytes);
        placed[info->name] = Placed{info->type, dst};
      }
      DropMappedPages(info->data, info->nbytes);
      offset += AlignUp(PlacedBytes(*info, options), kTensorAlign);
    }
    w->resident_bytes_ = total;
  } else {
    for (const auto& [expected, info] : used) {
      placed[info->name] = Placed{info->type, info->data};
      w->resident_bytes_ += info->nbytes;
      if (options.residency == DenseResidency::kMlock) {
        const uint64_t begin = AlignDown(reinterpret_cast<uint64_t>(info->data), kPage);
        const uint64_t end = AlignUp(reinterpret_cast<uint64_t>(info->data) + info->nbytes, kPage);
        if (mlock(reinterpret_cast<void*>(begin), end - begin) != 0) {
          return ResourceExhausted(model.path(), ": mlock of tensor ", info->name, " (",
                                   FormatBytes(end - begin), ") failed: ", ErrnoString(errno),
                                   "; raise `ulimit -l` or use --dense copy");
        }
        w->locked_ranges_.emplace_back(reinterpret_cast<const uint8_t*>(begin), end - begin);
      }
    }
  }

  w->token_embd = MakeMatrix(placed, "token_embd.weight", c.n_vocab, c.n_embd);
  w->output_norm = Vector(placed, "output_norm.weight");
  w->output = MakeMatrix(placed, "output.weight", c.n_vocab, c.n_embd);
  w->output_tied = w->output.data == nullptr;
  if (w->output_tied) w->output = w->token_embd;
  w->layers.resize(c.n_layer);
  for (int l = 0; l < c.n_layer; ++l) {
    LayerWeights& L = w->layers[l];
    const std::string p = StrCat("blk.", l, ".");
    L.attn_norm = Vector(placed, p + "attn_norm.weight");
    if (!c.is_attention_layer(l)) {
      const DeltaNetShape& d = c.delta_net;
      DeltaNetWeights& dn = L.delta_net;
      dn.qkv = MakeMatrix(placed, p + "attn_qkv.weight", d.conv_dim(), c.n_embd);
      dn.gate = MakeMatrix(placed, p + "attn_gate.weight", d.v_dim(), c.n_embd);
      dn.beta = MakeMatrix(placed, p + "ssm_beta.weight", d.n_v_heads, c.n_embd);
      dn.alpha = MakeMatrix(placed, p + "ssm_alpha.weight", d.n_v_heads, c.n_embd);
      dn.ba = MakeMatrix(placed, p + "ssm_ba.weight", 2 * d.n_v_heads, c.n_embd);
      dn.conv = Vector(placed, p + "ssm_conv1d.weight");
      dn.dt_bias = Vector(placed, p + "ssm_dt.bias");
      dn.ssm_a = Vector(placed, p + "ssm_a");
      dn.norm = Vector(placed, p + "ssm_norm.weight");
      dn.out = MakeMatrix(placed, p + "ssm_out.weight", c.n_embd, d.v_dim());
    }
    if (c.spec->attention == AttentionKind::kMla) {
      const MlaShape& m = c.mla;
      const int64_t q_rows = int64_t{c.n_head} * (m.nope + m.rope);
      MlaWeights& a = L.mla;
      a.q_a = MakeMatrix(placed, p + "attn_q_a.weight", m.q_lora, c.n_embd);
      a.q_a_norm = Vector(placed, p + "attn_q_a_norm.weight");
      a.q_b = MakeMatrix(placed, p + "attn_q_b.weight", q_rows, m.q_lora);
      a.q = MakeMatrix(placed, p + "attn_q.weight", q_rows, c.n_embd);
      a.kv_a = MakeMatrix(placed, p + "attn_kv_a_mqa.weight", m.kv_lora + m.rope, c.n_embd);
      a.kv_a_norm = Vector(placed, p + "attn_kv_a_norm.weight");
      a.k_b = MakeMatrix(placed, p + "attn_k_b.weight", int64_t{c.n_head} * m.kv_lora, m.nope);
      a.v_b = MakeMatrix(placed, p + "attn_v_b.weight", int64_t{c.n_head} * m.v_head, m.kv_lora);
      a.out = MakeMatrix(placed, p + "attn_output.weight", c.n_embd, int64_t{c.n_head} * m.v_head);
    }
    L.wq = MakeMatrix(placed, p + "attn_q.weight", c.q_rows(), c.n_embd);
    L.wk = MakeMatrix(placed, p + "attn_k.weight", c.k_dim(), c.n_embd);
    L.wv = MakeMatrix(placed, p + "attn_v.weight", c.v_dim(), c.n_embd);
    L.wo = MakeMatrix(placed, p + "attn_output.weight", c.n_embd, c.attn_out_dim());
    L.bq = Vector(placed, p + "attn_q.bias");
    L.bk = Vector(placed, p + "attn_k.bias");
    L.bv = Vector(placed, p + "attn_v.bias");
    L.bo = Vector(placed, p + "attn_output.bias");
    L.sinks = Vector(placed, p + "attn_sinks.weight");
    L.q_norm = Vector(placed, p + "attn_q_norm.weight");
    L.k_norm = Vector(placed, p + "attn_k_norm.weight");
    L.ffn_norm = Vector(placed, p + c.spec->ffn_norm + ".weight");
    if (!c.is_moe_layer(l)) {
      L.ffn_gate = MakeMatrix(placed, p + "ffn_gate.weight", c.n_ff, c.n_embd);
      L.ffn_up = MakeMatrix(placed, p + "ffn_up.weight", c.n_ff, c.n_embd);
      L.ffn_down = MakeMatrix(placed, p + "ffn_down.weight", c.n_embd, c.n_ff);
      continue;
    }
    L.moe.selection_bias = Vector(placed, p + "exp_probs_b.bias");
    L.moe.router_bias = Vector(placed, p + "ffn_gate_inp.bias");
    L.moe.expert_gate_bias = Vector(placed, p + "ffn_gate_exps.bias");
    L.moe.expert_up_bias = Vector(placed, p + "ffn_up_exps.bias");
    L.moe.expert_down_bias = Vector(placed, p + "ffn_down_exps.bias");
    L.moe.router = MakeMatrix(placed, p + "ffn_gate_inp.weight", c.n_expert, c.n_embd);
    L.moe.shexp_gate = MakeMatrix(placed, p + "ffn_gate_shexp.weight", c.n_ff_shexp, c.n_embd);
    L.moe.shexp_up = MakeMatrix(placed, p + "ffn_up_shexp.weight", c.n_ff_shexp, c.n_embd);
    L.moe.shexp_down = MakeMatrix(placed, p + "ffn_down_shexp.weight", c.n_embd, c.n_ff_shexp);
    L.moe.shexp_gate_inp = Vector(placed, p + "ffn_gate_inp_shexp.weight");
    const ExpertTensors experts = *model.expert_tensors(l);  // checked above
    L.moe.expert_types = {experts.gate.type, experts.up.type, experts.down.type};
  }

  uint64_t per_token = 0;
  for (const auto& [expected, info] : used) {
    if (info->name == "token_embd.weight") continue;
    per_token += PlacedBytes(*info, options);
  }
  per_token += w->token_embd.bytes() / c.n_vocab;  // one embedding row
  if (w->output_tied) per_token += w->output.bytes();
  w->bytes_per_token_ = per_token;
  return w;
}

std::vector<ExpertTypes> ModelWeights::expert_types() const {
  std::vector<ExpertTypes> types;
  for (const LayerWeights& l : layers) types.push_back(l.moe.expert_types);
  return types;
}

}  // namespace sluice
