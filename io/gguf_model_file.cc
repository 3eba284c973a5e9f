#include "io/gguf_model_file.h"

#include <map>

namespace sluice {
namespace {

// A layer index beyond this is a corrupt name, not a model (the largest have ~100 layers); the
// limit keeps a name like blk.999999999.ffn_up_exps.weight from sizing a huge table.
constexpr int kMaxLayers = 1 << 16;
// Likewise for experts per layer (the largest models have 512): bounds the location table, which a
// crafted file of tiny experts could otherwise make many times larger than the file.
constexpr int64_t kMaxExperts = 1 << 16;
constexpr const char* kMatrixNames[3] = {"gate", "up", "down"};

enum class ExpertNameKind { kNone, kStacked, kPerExpert, kFusedGateUp };

struct ExpertName {
  ExpertNameKind kind = ExpertNameKind::kNone;
  int layer = -1;
  int matrix = 0;   // ExpertMatrix
  int expert = -1;  // kPerExpert only
};

// Parses a decimal number of at most 9 digits at the front of `s`, consuming it.
bool TakeNumber(std::string_view& s, int* value) {
  size_t n = 0;
  int v = 0;
  while (n < s.size() && n < 9 && s[n] >= '0' && s[n] <= '9') v = v * 10 + (s[n++] - '0');
  if (n == 0 || (n < s.size() && s[n] >= '0' && s[n] <= '9')) return false;
  s.remove_prefix(n);
  *value = v;
  return true;
}

ExpertName ParseExpertName(std::string_view name) {
  ExpertName out;
  if (!name.starts_with("blk.")) return out;
  name.remove_prefix(4);
  int layer = 0;
  if (!TakeNumber(name, &layer) || !name.starts_with(".ffn_")) return out;
  name.remove_prefix(5);
  if (name == "gate_up_exps.weight") return {ExpertNameKind::kFusedGateUp, layer, 0, -1};
  for (int m = 0; m < 3; ++m) {
    std::string_view rest = name;
    if (!rest.starts_with(kMatrixNames[m])) continue;
    rest.remove_prefix(std::string_view(kMatrixNames[m]).size());
    if (rest == "_exps.weight") return {ExpertNameKind::kStacked, layer, m, -1};
    int expert = 0;
    if (rest.starts_with(".")) {
      rest.remove_prefix(1);
      if (TakeNumber(rest, &expert) && rest == ".weight") {
        return {ExpertNameKind::kPerExpert, layer, m, expert};
      }
    }
  }
  return out;
}

TensorInfo ToTensorInfo(const GgufTensorInfo& g, const uint8_t* data) {
  TensorInfo t;
  t.name = g.name;
  t.type = g.type;
  t.n_dims = g.n_dims;
  t.ne = g.ne;
  t.nbytes = g.nbytes;
  t.data = data;
  return t;
}

std::string Shape(const std::array<int64_t, 4>& ne, int n_dims) {
  std::string s = "[";
  for (int d = 0; d < n_dims; ++d) s += StrCat(d ? ", " : "", ne[d]);
  return s + "]";
}

// What one layer's expert tensors look like before validation.
struct PendingLayer {
  const GgufModel::Tensor* stacked[3] = {nullptr, nullptr, nullptr};
  std::map<int, const GgufModel::Tensor*> per_expert[3];
};

// The shape matrix `m` must have given gate's shape (gate: [in, out], up: the same, down:
// [out, in]); the expert count is checked separately.
bool ShapeMatches(int m, const std::array<int64_t, 4>& gate, const std::array<int64_t, 4>& ne) {
  if (m == static_cast<int>(ExpertMatrix::kDown)) return ne[0] == gate[1] && ne[1] == gate[0];
  return ne[0] == gate[0] && ne[1] == gate[1];
}

// Validates one layer's expert tensors matrix by matrix and builds its 3-D view and its extents.
struct LayerBuilder {
  const GgufModel& model;
  int index;  // layer
  const PendingLayer& pending;
  bool stacked;                      // *_exps tensors (else per-expert tensors)
  std::string prefix;                // "blk.N.ffn_"
  int64_t n_expert = 0;              // from gate
  std::array<int64_t, 4> gate_ne{};  // from gate

  std::string Where(const GgufModel::Tensor& t) const {
    return StrCat(model.shard(t.shard).path(), ": tensor '", t.info->name, "'");
  }
  Status Matrix(int mat, TensorInfo* info, std::vector<ExpertLocation>* locations);
};

Status LayerBuilder::Matrix(int mat, TensorInfo* info, std::vector<ExpertLocation>* locations) {
  const std::map<int, const GgufModel::Tensor*>& per_expert = pending.per_expert[mat];
  if (stacked ? pending.stacked[mat] == nullptr : per_expert.empty()) {
    return Corrupt(model.path(), ": layer ", index, " has routed experts but no ", prefix,
                   kMatrixNames[mat], stacked ? "_exps.weight" : ".E.weight");
  }
  // The first tensor of this matrix gives the type and the 2-D shape of one expert.
  const GgufModel::Tensor& first = stacked ? *pending.stacked[mat] : *per_expert.begin()->second;
  const GgufTensorInfo& f = *first.info;
  const int64_t count = stacked ? f.ne[2] : static_cast<int64_t>(per_expert.size());
  if (mat == 0) {
    n_expert = count;
    gate_ne = f.ne;
    if (n_expert > kMaxExperts) {
      return Unsupported(Where(first), ": ", n_expert, " experts exceeds the limit of ",
                         kMaxExperts);
    }
  }
  if (f.n_dims != (stacked ? 3 : 2) || !ShapeMatches(mat, gate_ne, f.ne) || count != n_expert) {
    const int64_t in = mat == 2 ? gate_ne[1] : gate_ne[0];
    const int64_t out = mat == 2 ? gate_ne[0] : gate_ne[1];
    const std::string expected = stacked ? StrCat("[", in, ", ", out, ", ", n_expert, "]")
                                         : StrCat("[", in, ", ", out, "] x ", n_expert);
    const std::string found =
        stacked ? Shape(f.ne, f.n_dims) : StrCat(Shape(f.ne, f.n_dims), " x ", count);
    return Corrupt(Where(first), ": expected shape ", expected, " (matching ", prefix,
                   "gate), found ", found);
  }
  const uint64_t slice_bytes = RowBytes(f.type, f.ne[0]) * f.ne[1];
  // Per-expert tensors are presented under the stacked name, so the engine's shape checks and
  // the archive see one naming whatever the converter wrote.
  *info = ToTensorInfo(f, nullptr);
  info->name = StrCat(prefix, kMatrixNames[mat], "_exps.weight");
  info->n_dims = 3;
  info->ne = {f.ne[0], f.ne[1], n_expert, 1};
  info->nbytes = slice_bytes * static_cast<uint64_t>(n_expert);
  locations->resize(n_expert);
  for (int64_t e = 0; e < n_expert; ++e) {
    ExpertLocation::Extent& extent = (*locations)[e].matrices[mat];
    extent.bytes = slice_bytes;
    if (stacked) {
      extent.file_index = first.shard;
      extent.offset = f.file_offset + static_cast<uint64_t>(e) * slice_bytes;
      continue;
    }
    auto it = per_expert.find(static_cast<int>(e));
    if (it == per_expert.end()) {
      return Corrupt(model.path(), ": layer ", index, " has ", n_expert, " ", kMatrixNames[mat],
                     " expert tensors but no ", prefix, kMatrixNames[mat], ".", e,
                     ".weight (expert ids must be 0..", n_expert - 1, ")");
    }
    const GgufTensorInfo& g = *it->second->info;
    if (g.type != f.type || g.n_dims != 2 || g.ne != f.ne) {
      return Corrupt(Where(*it->second), ": expected ", TypeName(f.type), " ", Shape(f.ne, 2),
                     " like the first expert, found ", TypeName(g.type), " ",
                     Shape(g.ne, g.n_dims));
    }
    extent.file_index = it->second->shard;
    extent.offset = g.file_offset;
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<GgufModelFile>> GgufModelFile::Open(const std::string& path) {
  std::unique_ptr<GgufModelFile> file(new GgufModelFile());
  ASSIGN_OR_RETURN(file->model_, GgufModel::Open(path));
  RETURN_IF_ERROR(file->Classify());
  return file;
}

Status GgufModelFile::Classify() {
  const GgufModel& m = *model_;
  std::map<int, PendingLayer> pending;
  for (const GgufModel::Tensor& t : m.tensors()) {
    const ExpertName name = ParseExpertName(t.info->name);
    if (name.kind == ExpertNameKind::kNone) {
      dense_.push_back(ToTensorInfo(*t.info, m.TensorData(t)));
      continue;
    }
    const std::string where = StrCat(m.shard(t.shard).path(), ": tensor '", t.info->name, "'");
    if (name.kind == ExpertNameKind::kFusedGateUp) {
      return Unsupported(where,
                         ": fused gate+up expert tensors are not supported; convert the "
                         "model with separate ffn_gate_exps and ffn_up_exps");
    }
    if (name.layer >= kMaxLayers) {
      return Corrupt(where, ": layer ", name.layer, " exceeds the limit of ", kMaxLayers);
    }
    PendingLayer& layer = pending[name.layer];
    if (name.kind == ExpertNameKind::kStacked) {
      layer.stacked[name.matrix] = &t;
    } else {
      layer.per_expert[name.matrix][name.expert] = &t;
    }
  }
  if (!pending.empty()) layers_.resize(pending.rbegin()->first + 1);

  for (const auto& [index, p] : pending) {
    const bool stacked = p.stacked[0] || p.stacked[1] || p.stacked[2];
    const bool per_expert =
        !p.per_expert[0].empty() || !p.per_expert[1].empty() || !p.per_expert[2].empty();
    const std::string prefix = StrCat("blk.", index, ".ffn_");
    if (stacked && per_expert) {
      return Corrupt(m.path(), ": layer ", index, " has both ", prefix,
                     "*_exps.weight and per-expert ", prefix, "*.E.weight tensors");
    }
    LayerBuilder builder{
        .model = m, .index = index, .pending = p, .stacked = stacked, .prefix = prefix};
    Layer layer;
    TensorInfo* infos[3] = {&layer.tensors.gate, &layer.tensors.up, &layer.tensors.down};
    for (int mat = 0; mat < 3; ++mat) {
      RETURN_IF_ERROR(builder.Matrix(mat, infos[mat], &layer.locations));
      expert_bytes_total_ += infos[mat]->nbytes;
    }
    layers_[index] = std::move(layer);
  }
  return Status::Ok();
}

std::optional<ExpertTensors> GgufModelFile::expert_tensors(int layer) const {
  if (layer < 0 || layer >= static_cast<int>(layers_.size()) || !layers_[layer]) {
    return std::nullopt;
  }
  return layers_[layer]->tensors;
}

ExpertLocation GgufModelFile::LocateExpert(int layer, int expert) const {
  CHECK(layer >= 0 && layer < static_cast<int>(layers_.size()) && layers_[layer].has_value())
      << "layer " << layer << " has no routed experts";
  const std::vector<ExpertLocation>& locations = layers_[layer]->locations;
  CHECK(expert >= 0 && expert < static_cast<int>(locations.size()))
      << "expert " << expert << " of " << locations.size() << " in layer " << layer;
  return locations[expert];
}

const uint8_t* GgufModelFile::mapped_file(int file_index) const {
  if (file_index < 0 || file_index >= model_->shard_count()) return nullptr;
  return model_->shard(file_index).mapped_data();
}

}  // namespace sluice
