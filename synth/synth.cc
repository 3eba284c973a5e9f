#include "synth/synth.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <vector>

#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/base/log.h"
#include "core/base/random.h"
#include "io/archive_writer.h"
#include "io/gguf_writer.h"
#include "llm/arch_spec.h"
#include "llm/model_config.h"
#include "llm/tensor_plan.h"
#include "moe/routing_spec.h"
#include "synth/synth_vocab.h"
#include "synth/synth_weights.h"

namespace sluice {
namespace {

enum class Init { kOnes, kZeros, kMinusOnes, kGauss };

// One dense (non-routed) tensor to write.
struct DenseTensor {
  std::string name;
  GgmlType type = GgmlType::kF32;
  int n_dims = 1;
  std::array<int64_t, 4> ne{1, 1, 1, 1};
  Init init = Init::kOnes;
  float stddev = 0;  // kGauss
  int layer = -1;    // -1: global tensors; for GGUF ordering

  uint64_t bytes() const { return RowBytes(type, ne[0]) * ne[1] * ne[2] * ne[3]; }
};

enum class ExpertMatrixKind { kGate = 0, kUp = 1, kDown = 2 };

// Everything needed to produce the bytes: tensors, scales, row pools.
struct SynthPlan {
  SynthShape shape;
  const ArchSpec* spec = nullptr;
  SynthScales scales;
  int64_t n_vocab = 0;
  uint64_t seed = 1;
  std::vector<DenseTensor> dense;
  // Pools by (type, cols, stddev).
  std::map<std::tuple<GgmlType, int64_t, float>, std::unique_ptr<SynthRowPool>> pools;

  const SynthRowPool& Pool(GgmlType type, int64_t cols, float stddev) const {
    auto it = pools.find({type, cols, stddev});
    CHECK(it != pools.end()) << "no row pool for " << TypeName(type) << " x " << cols;
    return *it->second;
  }
  GgmlType ExpertType(ExpertMatrixKind m) const {
    return m == ExpertMatrixKind::kDown ? shape.down_type() : shape.expert_type;
  }
  float ExpertStddev(ExpertMatrixKind m) const {
    return m == ExpertMatrixKind::kDown ? scales.expert_down : scales.in_proj;
  }
  int64_t ExpertCols(ExpertMatrixKind m) const {
    return m == ExpertMatrixKind::kDown ? shape.n_ff_exp : shape.n_embd;
  }
  int64_t ExpertRows(ExpertMatrixKind m) const {
    return m == ExpertMatrixKind::kDown ? shape.n_embd : shape.n_ff_exp;
  }
  uint64_t ExpertMatrixBytes(ExpertMatrixKind m) const {
    return RowBytes(ExpertType(m), ExpertCols(m)) * ExpertRows(m);
  }
  // Fills one routed expert matrix.
  void FillExpert(int layer, int expert, ExpertMatrixKind m, uint8_t* dst) const {
    const SynthRowPool& pool = Pool(ExpertType(m), ExpertCols(m), ExpertStddev(m));
    pool.FillMatrix(SynthKey(seed, static_cast<uint64_t>(layer), static_cast<uint64_t>(m) + 1,
                             static_cast<uint64_t>(expert)),
                    ExpertRows(m), dst);
  }
};

uint64_t NameKey(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

std::string Blk(int layer, const char* suffix) { return StrCat("blk.", layer, ".", suffix); }

// Every dense tensor the architecture's config implies (llm/tensor_plan.h: the engine's own list,
// so every architecture it runs can be synthesised), with the values of synth_weights.h:
// matrices that read the residual stream map unit RMS to unit RMS, the ones that write back into
// it (attention / delta-net output, FFN down) add ~block_gain; norms 1, biases 0; delta-net
// decays ssm_a = -1 and convolution taps that keep unit RMS. Routers stay f32 as GGUF producers
// keep them; other matrices are dense_type.
std::vector<DenseTensor> DenseTensors(const SynthShape& s, const SynthScales& sc) {
  Result<ModelConfig> config = ReadModelConfig(SynthMetadata(s, 0));
  CHECK(config.ok()) << config.status().ToString();
  std::vector<DenseTensor> out;
  for (const ExpectedTensor& e : ExpectedDenseTensors(*config)) {
    DenseTensor t;
    t.name = e.name;
    t.ne = e.ne;
    t.n_dims = e.ne[2] > 1 ? 3 : e.ne[1] > 1 ? 2 : 1;
    if (std::sscanf(e.name.c_str(), "blk.%d.", &t.layer) != 1) t.layer = -1;
    const auto ends = [&](std::string_view suffix) { return e.name.ends_with(suffix); };
    const double cols = static_cast<double>(e.ne[0]);
    if (e.kind == TensorKind::kVector) {
      t.type = GgmlType::kF32;
      if (ends("norm.weight")) {
        t.init = Init::kOnes;
      } else if (ends(".bias")) {
        t.init = Init::kZeros;
      } else if (ends("ssm_a")) {
        t.init = Init::kMinusOnes;
      } else if (ends("ssm_conv1d.weight")) {
        t.init = Init::kGauss;
        t.stddev = static_cast<float>(1.0 / std::sqrt(cols));
      } else {  // the shared expert's gate vector
        t.init = Init::kGauss;
        t.stddev = sc.in_proj;
      }
      out.push_back(std::move(t));
      continue;
    }
    t.init = Init::kGauss;
    t.type = ends("ffn_gate_inp.weight")               ? GgmlType::kF32
             : IsValidRowLength(s.dense_type, e.ne[0]) ? s.dense_type
                                                       : GgmlType::kQ8_0;
    if (e.name == "token_embd.weight") {
      t.stddev = sc.embedding;
    } else if (ends("attn_output.weight") || ends("ssm_out.weight")) {
      t.stddev = static_cast<float>(sc.block_gain / std::sqrt(cols));
    } else if (ends("ffn_down.weight") || ends("ffn_down_shexp.weight")) {
      t.stddev = static_cast<float>(sc.block_gain / (kSiluUnitRms * std::sqrt(cols)));
    } else {
      t.stddev = sc.in_proj;
    }
    out.push_back(std::move(t));
  }
  return out;
}

Result<SynthPlan> MakePlan(const SynthShape& shape, uint64_t seed, uint64_t pool_bytes) {
  SynthPlan p;
  p.shape = shape;
  p.seed = seed;
  ASSIGN_OR_RETURN(p.spec, FindArchSpec(shape.arch));
  p.n_vocab = SynthVocabSize();
  p.scales = SynthScales::For(shape.n_layer, shape.n_embd, shape.q_dim(), shape.n_ff_exp);
  p.dense = DenseTensors(shape, p.scales);
  // One pool per (type, row length, stddev) of every quantized matrix.
  std::vector<std::tuple<GgmlType, int64_t, float>> keys;
  for (const DenseTensor& t : p.dense) {
    if (t.init == Init::kGauss && t.type != GgmlType::kF32)
      keys.emplace_back(t.type, t.ne[0], t.stddev);
  }
  for (ExpertMatrixKind m : {ExpertMatrixKind::kGate, ExpertMatrixKind::kDown}) {
    keys.emplace_back(p.ExpertType(m), p.ExpertCols(m), p.ExpertStddev(m));
  }
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  // Quantizing ~4 MB per pool with the reference quantizers takes ~0.1-1 s; two threads.
  std::vector<std::unique_ptr<SynthRowPool>> built(keys.size());
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (size_t i = w; i < keys.size(); i += 2) {
        auto [type, cols, stddev] = keys[i];
        built[i] = std::make_unique<SynthRowPool>(type, cols, stddev, seed, pool_bytes);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < keys.size(); ++i) p.pools[keys[i]] = std::move(built[i]);
  return p;
}

std::vector<uint8_t> DenseBytes(const SynthPlan& p, const DenseTensor& t) {
  std::vector<uint8_t> out(t.bytes());
  const int64_t rows = t.ne[1] * t.ne[2] * t.ne[3];
  if (t.type == GgmlType::kF32) {
    float* f = reinterpret_cast<float*>(out.data());
    const int64_t n = t.ne[0] * rows;
    SynthRng rng(SynthKey(p.seed, NameKey(t.name)));
    for (int64_t i = 0; i < n; ++i) {
      f[i] = t.init == Init::kOnes        ? 1.0f
             : t.init == Init::kZeros     ? 0.0f
             : t.init == Init::kMinusOnes ? -1.0f
                                          : static_cast<float>(t.stddev * rng.Normal());
    }
    return out;
  }
  CHECK(t.init == Init::kGauss) << t.name;
  p.Pool(t.type, t.ne[0], t.stddev).FillMatrix(SynthKey(p.seed, NameKey(t.name)), rows, out.data());
  return out;
}

ExpertTensors ExpertTensorsOf(const SynthShape& s, int layer) {
  ExpertTensors e;
  auto set = [&](TensorInfo& t, const char* suffix, int64_t in, int64_t out) {
    t.name = Blk(layer, suffix);
    t.type = s.expert_type;
    t.n_dims = 3;
    t.ne = {in, out, s.n_expert, 1};
  };
  set(e.gate, "ffn_gate_exps.weight", s.n_embd, s.n_ff_exp);
  set(e.up, "ffn_up_exps.weight", s.n_embd, s.n_ff_exp);
  set(e.down, "ffn_down_exps.weight", s.n_ff_exp, s.n_embd);
  e.down.type = s.down_type();
  return e;
}

bool IsCancelled(const SynthOptions& o) {
  return o.cancel != nullptr && o.cancel->load(std::memory_order_relaxed);
}

Status WriteArchive(const std::string& path, const SynthPlan& p, const SynthOptions& o,
                    SynthResult* result) {
  ArchivePlan plan;
  plan.metadata = SynthMetadata(p.shape, p.seed);
  for (const DenseTensor& t : p.dense) {
    TensorInfo info;
    info.name = t.name;
    info.type = t.type;
    info.n_dims = t.n_dims;
    info.ne = t.ne;
    plan.dense.push_back(info);
  }
  for (int l = p.shape.n_dense_layers; l < p.shape.n_layer; ++l) {
    plan.expert_layers.push_back({.layer = l, .tensors = ExpertTensorsOf(p.shape, l)});
  }
  ArchiveWriterOptions wo;
  wo.check_free_space = o.check_free_space;
  ASSIGN_OR_RETURN(auto writer, ArchiveWriter::Create(path, std::move(plan), wo));
  for (size_t i = 0; i < p.dense.size(); ++i) {
    if (IsCancelled(o)) return Cancelled("sluice synth: cancelled");
    std::vector<uint8_t> bytes = DenseBytes(p, p.dense[i]);
    RETURN_IF_ERROR(writer->WriteDense(i, bytes));
  }
  // Experts on worker threads, in (layer, expert) order so the file fills front to back.
  const int64_t jobs = static_cast<int64_t>(p.shape.moe_layers()) * p.shape.n_expert;
  std::atomic<int64_t> next{0};
  std::atomic<bool> stop{false};
  std::atomic<int> workers_done{0};
  std::mutex error_mu;
  Status first_error;
  auto worker = [&] {
    std::vector<uint8_t> m[3];
    for (int i = 0; i < 3; ++i) m[i].resize(p.ExpertMatrixBytes(static_cast<ExpertMatrixKind>(i)));
    for (int64_t job = next++; job < jobs && !stop; job = next++) {
      const int layer = p.shape.n_dense_layers + static_cast<int>(job / p.shape.n_expert);
      const int expert = static_cast<int>(job % p.shape.n_expert);
      for (int i = 0; i < 3; ++i) {
        p.FillExpert(layer, expert, static_cast<ExpertMatrixKind>(i), m[i].data());
      }
      Status st = writer->AddExpert(layer, expert, m[0], m[1], m[2]);
      if (!st.ok()) {
        std::lock_guard<std::mutex> lock(error_mu);
        if (first_error.ok()) first_error = st;
        stop = true;
      }
    }
    ++workers_done;
  };
  std::vector<std::thread> threads;
  const int n_threads = std::max(1, o.threads);
  for (int t = 0; t < n_threads; ++t) threads.emplace_back(worker);
  while (workers_done.load() < n_threads) {
    if (IsCancelled(o)) stop = true;
    if (o.progress) o.progress(writer->bytes_written(), writer->payload_bytes());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (std::thread& t : threads) t.join();
  if (!first_error.ok()) return first_error;
  if (IsCancelled(o)) return Cancelled("sluice synth: cancelled");
  RETURN_IF_ERROR(writer->Finish());
  if (o.progress) o.progress(writer->payload_bytes(), writer->payload_bytes());
  result->file_bytes = writer->file_bytes();
  return Status::Ok();
}

Status WriteGguf(const std::string& path, const SynthPlan& p, const SynthOptions& o,
                 SynthResult* result) {
  // GGUF order: token_embd, then each layer's tensors with its *_exps, then the output.
  std::vector<GgufTensorSpec> specs;
  struct Item {
    const DenseTensor* dense = nullptr;  // or an experts tensor:
    int layer = -1;
    ExpertMatrixKind kind = ExpertMatrixKind::kGate;
  };
  std::vector<Item> items;
  auto add_dense = [&](const DenseTensor& t) {
    specs.push_back({t.name, t.type, std::vector<int64_t>(t.ne.begin(), t.ne.begin() + t.n_dims)});
    items.push_back({&t});
  };
  size_t i = 0;
  while (i < p.dense.size() && p.dense[i].layer < 0) add_dense(p.dense[i++]);
  for (int l = 0; l < p.shape.n_layer; ++l) {
    while (i < p.dense.size() && p.dense[i].layer == l) add_dense(p.dense[i++]);
    if (l < p.shape.n_dense_layers) continue;  // no experts
    ExpertTensors e = ExpertTensorsOf(p.shape, l);
    const TensorInfo* infos[3] = {&e.gate, &e.up, &e.down};
    for (int m = 0; m < 3; ++m) {
      specs.push_back(
          {infos[m]->name, infos[m]->type, {infos[m]->ne[0], infos[m]->ne[1], infos[m]->ne[2]}});
      items.push_back({nullptr, l, static_cast<ExpertMatrixKind>(m)});
    }
  }
  while (i < p.dense.size()) add_dense(p.dense[i++]);

  ASSIGN_OR_RETURN(auto writer, GgufWriter::Create(path, SynthMetadata(p.shape, p.seed), specs));
  const uint64_t total = writer->total_bytes();
  uint64_t done = 0;
  auto last = Clock::now();
  std::vector<uint8_t> buffer;
  for (const Item& item : items) {
    if (item.dense != nullptr) {
      std::vector<uint8_t> bytes = DenseBytes(p, *item.dense);
      RETURN_IF_ERROR(writer->Append(bytes.data(), bytes.size()));
      done += bytes.size();
      continue;
    }
    buffer.resize(p.ExpertMatrixBytes(item.kind));
    for (int e = 0; e < p.shape.n_expert; ++e) {
      if (IsCancelled(o)) return Cancelled("sluice synth: cancelled");
      p.FillExpert(item.layer, e, item.kind, buffer.data());
      RETURN_IF_ERROR(writer->Append(buffer.data(), buffer.size()));
      done += buffer.size();
      if (o.progress && Clock::now() - last > std::chrono::milliseconds(100)) {
        o.progress(done, total);
        last = Clock::now();
      }
    }
  }
  RETURN_IF_ERROR(writer->Finish());
  if (o.progress) o.progress(total, total);
  result->file_bytes = total;
  return Status::Ok();
}

}  // namespace

Result<SynthFormat> ParseSynthFormat(std::string_view name) {
  if (name == "archive" || name == "sluice") return SynthFormat::kArchive;
  if (name == "gguf") return SynthFormat::kGguf;
  return InvalidArgument("--format '", name, "': expected archive or gguf");
}

Metadata SynthMetadata(const SynthShape& s, uint64_t seed) {
  Result<const ArchSpec*> spec_or = FindArchSpec(s.arch);
  CHECK(spec_or.ok()) << spec_or.status().ToString();
  const ArchSpec& spec = **spec_or;
  Metadata m("synthetic " + s.preset);
  const std::string a = s.arch + ".";
  m.SetString("general.architecture", s.arch);
  m.SetString("general.name", StrCat("sluice synthetic ", s.preset, " (random weights)"));
  m.SetString("general.description", s.description);
  m.SetU32(a + "context_length", static_cast<uint32_t>(s.n_ctx));
  m.SetU32(a + "embedding_length", static_cast<uint32_t>(s.n_embd));
  m.SetU32(a + "block_count", static_cast<uint32_t>(s.n_layer));
  m.SetU32(a + "attention.head_count", static_cast<uint32_t>(s.n_head));
  m.SetU32(a + "attention.head_count_kv", static_cast<uint32_t>(s.n_head_kv));
  if (spec.attention == AttentionKind::kMla) {  // the absorbed form's one cached "head"
    m.SetU32(a + "attention.key_length", static_cast<uint32_t>(s.mla_kv_lora + s.n_rot));
    m.SetU32(a + "attention.value_length", static_cast<uint32_t>(s.mla_kv_lora));
    m.SetU32(a + "attention.q_lora_rank", static_cast<uint32_t>(s.mla_q_lora));
    m.SetU32(a + "attention.kv_lora_rank", static_cast<uint32_t>(s.mla_kv_lora));
    m.SetU32(a + "attention.key_length_mla", static_cast<uint32_t>(s.mla_k_head));
    m.SetU32(a + "attention.value_length_mla", static_cast<uint32_t>(s.mla_v_head));
  } else {
    m.SetU32(a + "attention.key_length", static_cast<uint32_t>(s.head_dim));
    m.SetU32(a + "attention.value_length", static_cast<uint32_t>(s.head_dim));
  }
  if (s.n_dense_layers > 0) {
    m.SetU32(a + "leading_dense_block_count", static_cast<uint32_t>(s.n_dense_layers));
    m.SetU32(a + "feed_forward_length", static_cast<uint32_t>(s.n_ff_dense));
  }
  if (s.expert_groups > 1) {
    m.SetU32(a + "expert_group_count", static_cast<uint32_t>(s.expert_groups));
    m.SetU32(a + "expert_group_used_count", static_cast<uint32_t>(s.expert_groups_used));
  }
  if (s.expert_weights_scale > 0) m.SetF32(a + "expert_weights_scale", s.expert_weights_scale);
  if (s.yarn_factor > 0) {
    m.SetString(a + "rope.scaling.type", "yarn");
    m.SetF32(a + "rope.scaling.factor", s.yarn_factor);
    m.SetU32(a + "rope.scaling.original_context_length", static_cast<uint32_t>(s.yarn_orig_ctx));
    m.SetF32(a + "rope.scaling.yarn_log_multiplier", s.yarn_log_multiplier);
  }
  m.SetU32(a + "rope.dimension_count", static_cast<uint32_t>(s.n_rot > 0 ? s.n_rot : s.head_dim));
  m.SetF32(a + "rope.freq_base", s.rope_freq_base);
  m.SetF32(a + "attention.layer_norm_rms_epsilon", s.rms_eps);
  m.SetU32(a + "expert_count", static_cast<uint32_t>(s.n_expert));
  m.SetU32(a + "expert_used_count", static_cast<uint32_t>(s.n_expert_used));
  m.SetU32(a + spec.expert_ff_key, static_cast<uint32_t>(s.n_ff_exp));
  if (s.n_ff_shexp > 0) m.SetU32(a + spec.shared_ff_key, static_cast<uint32_t>(s.n_ff_shexp));
  if (spec.delta_net != DeltaNetKind::kNone) {
    m.SetU32(a + "full_attention_interval", static_cast<uint32_t>(s.full_attention_interval));
    m.SetU32(a + "ssm.conv_kernel", static_cast<uint32_t>(s.ssm_conv_kernel));
    m.SetU32(a + "ssm.state_size", static_cast<uint32_t>(s.ssm_state_size));
    m.SetU32(a + "ssm.group_count", static_cast<uint32_t>(s.ssm_k_heads));
    m.SetU32(a + "ssm.time_step_rank", static_cast<uint32_t>(s.ssm_v_heads));
    m.SetU32(a + "ssm.inner_size", static_cast<uint32_t>(s.ssm_v_heads * s.ssm_state_size));
  }
  AddSynthTokenizer(&m);
  m.SetBool(kMetaSynthetic, true);
  m.SetString(kMetaDefaultRouting, "synthetic");
  m.SetString(kMetaSynthPreset, s.preset);
  m.SetU64("sluice.synth.seed", seed);
  m.SetU32("sluice.synth.full_layers", static_cast<uint32_t>(s.full_layers));
  m.SetU32("sluice.synth.full_experts", static_cast<uint32_t>(s.full_experts));
  return m;
}

uint64_t SynthShape::dense_bytes(int64_t n_vocab) const {
  CHECK(n_vocab == SynthVocabSize()) << "synthetic models have the synthetic vocabulary";
  // After the leading dense layers, layers repeat with the attention period: list those and one
  // period's tensors (any layer count, even one no config accepts, gets its size for the
  // free-space check) and count them per layer.
  SynthShape one = *this;
  const int period = full_attention_interval > 0 ? full_attention_interval : 1;
  one.n_layer = n_dense_layers + period;
  const SynthScales sc = SynthScales::For(one.n_layer, n_embd, q_dim(), n_ff_exp);
  uint64_t global = 0;
  std::vector<uint64_t> per_layer(one.n_layer, 0);
  for (const DenseTensor& t : DenseTensors(one, sc)) {
    (t.layer < 0 ? global : per_layer[t.layer]) += t.bytes();
  }
  uint64_t total = global;
  for (int l = 0; l < n_layer; ++l) {
    total += per_layer[l < n_dense_layers ? l : n_dense_layers + (l - n_dense_layers) % period];
  }
  return total;
}

uint64_t SynthFileBytes(const SynthShape& s) {
  // Archive expert blocks are 4 KiB aligned with each matrix 64-byte aligned inside; GGUF packs
  // them, so this is an upper bound for GGUF. 1 MiB covers headers, metadata and directory.
  const uint64_t block = AlignUp(s.expert_bytes() + 3 * 64, 4096);
  return static_cast<uint64_t>(s.moe_layers()) * s.n_expert * block +
         s.dense_bytes(SynthVocabSize()) + (1ull << 20) +
         static_cast<uint64_t>(s.n_layer) * 32 * 64;  // dense tensor alignment
}

Status CheckSynthFreeSpace(const std::string& path, const SynthShape& shape) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  struct statvfs vfs;
  if (statvfs(dir.c_str(), &vfs) != 0) {
    return IoError(path, ": statvfs(", dir.string(), "): ", ErrnoString(errno));
  }
  const uint64_t have = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const uint64_t margin = 1ull << 30;
  const uint64_t need = SynthFileBytes(shape);
  if (need + margin <= have) return Status::Ok();
  SynthShape none = shape;
  none.n_layer = 0;
  const uint64_t global = SynthFileBytes(none);
  const uint64_t per_layer = (need - global) / std::max(1, shape.n_layer);
  const int64_t fit =
      have > global + margin ? static_cast<int64_t>((have - global - margin) / per_layer) : 0;
  return ResourceExhausted(path, ": ", shape.preset, " needs ", FormatBytes(need), " (",
                           FormatBytes(per_layer), " per layer), ", dir.string(), " has ",
                           FormatBytes(have), " free (keeping ", FormatBytes(margin),
                           "); --layers ", fit, " would fit",
                           fit > 0 ? "" : " (none: free some space)");
}

Result<SynthResult> WriteSynthModel(const std::string& path, const SynthOptions& o) {
  const auto start = Clock::now();
  if (o.check_free_space) RETURN_IF_ERROR(CheckSynthFreeSpace(path, o.shape));
  ASSIGN_OR_RETURN(SynthPlan plan, MakePlan(o.shape, o.seed, o.pool_bytes));
  SynthResult result;
  result.path = path;
  result.expert_bytes = o.shape.all_expert_bytes();
  result.dense_bytes = o.shape.dense_bytes(plan.n_vocab);
  if (o.format == SynthFormat::kArchive) {
    RETURN_IF_ERROR(WriteArchive(path, plan, o, &result));
  } else {
    RETURN_IF_ERROR(WriteGguf(path, plan, o, &result));
  }
  result.seconds = Seconds(start, Clock::now());
  return result;
}

}  // namespace sluice
