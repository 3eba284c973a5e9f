// `sluice inspect FILE`: what a model file holds. For a sluice archive: the header (regions,
// offsets, index checksum), the config keys, the dense tensor table (type, shape, offset, bytes,
// xxh3) and the expert layers (shapes, types, block size and stride). For a GGUF (opened through
// io/model_open.h): the shards, the config keys and the same tensor tables without offsets or
// checksums (GGUF has none). Nothing is hashed here; `sluice verify` does that.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/base/byte_size.h"
#include "io/archive_reader.h"
#include "io/model_open.h"

namespace sluice::cli {
namespace {

constexpr size_t kMaxArrayItems = 6;    // array values show their first items
constexpr size_t kMaxStringChars = 72;  // long strings (chat templates) are cut

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxStringChars; ++i) {
    char c = s[i];
    if (c == '\n') {
      out += "\\n";
    } else if (c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  out += '"';
  if (s.size() > kMaxStringChars) out += StrCat("... (", s.size(), " bytes)");
  return out;
}

std::string FormatValue(const MetaValue& v) {
  switch (v.type) {
    case MetaType::kString:
      return Quote(v.s);
    case MetaType::kBool:
      return v.u ? "true" : "false";
    case MetaType::kF32:
    case MetaType::kF64:
      return StrCat(v.f);
    case MetaType::kI8:
    case MetaType::kI16:
    case MetaType::kI32:
    case MetaType::kI64:
      return StrCat(v.i);
    case MetaType::kArray:
      break;
    default:
      return StrCat(v.u);
  }
  std::string out = StrCat("[", MetaTypeName(v.array_type), " x ", v.ArraySize(), ":");
  for (size_t i = 0; i < v.ArraySize() && i < kMaxArrayItems; ++i) {
    out += i == 0 ? " " : ", ";
    if (v.array_type == MetaType::kString) {
      out += Quote(v.strings[i]);
    } else if (v.array_type == MetaType::kF32 || v.array_type == MetaType::kF64) {
      out += StrCat(v.floats[i]);
    } else {
      out += StrCat(v.ints[i]);
    }
  }
  if (v.ArraySize() > kMaxArrayItems) out += ", ...";
  return out + "]";
}

std::string Shape(const TensorInfo& t) {
  std::string out = "[";
  for (int d = 0; d < t.n_dims; ++d) out += StrCat(d ? ", " : "", t.ne[d]);
  return out + "]";
}

void PrintConfig(const Metadata& m) {
  std::printf("\nconfig (%zu keys):\n", m.size());
  for (const std::string& key : m.keys()) {
    const MetaValue* v = m.Find(key);
    std::printf("  %-44s %-8s %s\n", key.c_str(), MetaTypeName(v->type), FormatValue(*v).c_str());
  }
}

// Layers to list: the config's block count, or (without one) until no experts are found past
// the last layer that had them.
int LayerLimit(const ModelFile& model) {
  const Metadata& m = model.metadata();
  Result<std::string> arch = m.GetString("general.architecture");
  if (arch.ok()) {
    Result<uint64_t> n = m.GetUint(*arch + ".block_count");
    if (n.ok() && *n < 100000) return static_cast<int>(*n);
  }
  return 1024;
}

void PrintExpertLayers(const ModelFile& model, const ArchiveReader* archive) {
  int layers = 0;
  for (int l = 0; l < LayerLimit(model); ++l) layers += model.expert_tensors(l).has_value();
  std::printf("\nrouted experts (%d layers, %s):\n", layers,
              FormatBytes(model.expert_bytes_total()).c_str());
  std::printf("  %5s %8s  %-10s %-20s %-10s %-20s %12s%s\n", "layer", "experts", "gate/up", "shape",
              "down", "shape", "expert bytes", archive ? "   block stride   first block" : "");
  for (int l = 0; l < LayerLimit(model); ++l) {
    std::optional<ExpertTensors> t = model.expert_tensors(l);
    if (!t) continue;
    const uint64_t per_expert = (t->gate.nbytes + t->up.nbytes + t->down.nbytes) / t->gate.ne[2];
    std::printf("  %5d %8" PRId64 "  %-10s %-20s %-10s %-20s %12" PRIu64, l, t->gate.ne[2],
                TypeName(t->gate.type), Shape(t->gate).c_str(), TypeName(t->down.type),
                Shape(t->down).c_str(), per_expert);
    if (archive != nullptr) {
      for (const ExpertLayerEntry& e : archive->expert_layer_entries()) {
        if (static_cast<int>(e.layer) == l) {
          std::printf("  %13" PRIu64 "  %12" PRIu64, e.block_stride, e.first_block_offset);
        }
      }
    }
    std::printf("\n");
  }
}

void PrintDense(const ModelFile& model, const ArchiveReader* archive) {
  const auto& dense = model.dense_tensors();
  std::printf("\ndense tensors (%zu, %s):\n", dense.size(),
              FormatBytes(model.dense_bytes_total()).c_str());
  std::printf("  %-40s %-8s %-24s %14s%s\n", "name", "type", "shape", "bytes",
              archive ? "         offset  xxh3" : "");
  for (size_t i = 0; i < dense.size(); ++i) {
    const TensorInfo& t = dense[i];
    std::printf("  %-40s %-8s %-24s %14" PRIu64, t.name.c_str(), TypeName(t.type), Shape(t).c_str(),
                t.nbytes);
    if (archive != nullptr) {
      std::printf("  %13" PRIu64 "  %016" PRIx64, archive->dense_entries()[i].offset, t.xxh3);
    }
    std::printf("\n");
  }
}

void PrintArchiveHeader(const ArchiveReader& a) {
  const ArchiveHeader& h = a.header();
  std::printf("format:     sluice archive, version %u\n", h.version);
  std::printf("size:       %s (%" PRIu64 " bytes)\n", FormatBytes(h.file_bytes).c_str(),
              h.file_bytes);
  std::printf("metadata:   %" PRIu64 " keys, %" PRIu64 " bytes at offset %" PRIu64 "\n",
              h.metadata_count, h.metadata_bytes, h.metadata_offset);
  std::printf("directory:  %" PRIu64 " bytes at offset %" PRIu64
              " (%u dense, %u expert layers, %" PRIu64 " expert checksums)\n",
              h.directory_bytes, h.directory_offset, h.dense_count, h.expert_layer_count,
              h.expert_block_count);
  std::printf("dense:      %s at offset %" PRIu64 "\n", FormatBytes(h.dense_bytes).c_str(),
              h.dense_offset);
  std::printf("experts:    %s at offset %" PRIu64 "\n", FormatBytes(h.expert_bytes).c_str(),
              h.expert_offset);
  std::printf("index xxh3: %016" PRIx64 " (header + metadata + directory: checked)\n",
              h.index_xxh3);
}

int RunInspect(const std::vector<std::string>& args) {
  if (args.size() != 1) return Fail("inspect takes one FILE (see `sluice inspect --help`)");
  const std::string& path = args[0];
  Result<ModelFormat> format = DetectModelFormat(path);
  if (!format.ok()) return Fail(format.status().ToString());
  std::unique_ptr<ModelFile> model;
  const ArchiveReader* archive = nullptr;
  std::printf("file:       %s\n", path.c_str());
  if (*format == ModelFormat::kArchive) {
    Result<std::unique_ptr<ArchiveReader>> r = ArchiveReader::Open(path);
    if (!r.ok()) return Fail(r.status().ToString());
    archive = r->get();
    PrintArchiveHeader(*archive);
    model = std::move(*r);
  } else {
    Result<std::unique_ptr<ModelFile>> r = OpenModelFile(path);
    if (!r.ok()) return Fail(r.status().ToString());
    model = std::move(*r);
    std::printf("format:     GGUF, %zu file(s)\n", model->file_paths().size());
    for (const std::string& p : model->file_paths()) std::printf("  %s\n", p.c_str());
  }
  PrintConfig(model->metadata());
  PrintDense(*model, archive);
  PrintExpertLayers(*model, archive);
  const uint64_t dense = model->dense_bytes_total(), experts = model->expert_bytes_total();
  std::printf("\nsizes: dense %s (resident), routed experts %s (streamed), total %s\n",
              FormatBytes(dense).c_str(), FormatBytes(experts).c_str(),
              FormatBytes(dense + experts).c_str());
  return 0;
}

const CommandRegistration kInspect({
    .name = "inspect",
    .summary = "print a model file's header, config, tensor table and sizes",
    .usage = "sluice inspect FILE",
    .description =
        "FILE is a sluice archive (.sluice) or a GGUF (any shard of a split GGUF). For an\n"
        "archive it prints the header (regions and offsets; the header/directory checksum is\n"
        "checked on open), every config key, the dense tensors with offset and xxh3, and the\n"
        "expert layers with block size and stride. For a GGUF, the same without offsets and\n"
        "checksums. `sluice verify FILE` checks the data checksums.",
    .flags = {},
    .run = RunInspect,
});

}  // namespace
}  // namespace sluice::cli
