#include "diffusion/archive_convert.h"

#include <algorithm>
#include <cstdio>

#include "core/base/str_cat.h"
#include "core/kernels/matmul.h"
#include "core/quant/quantize.h"
#include "diffusion/pipeline.h"
#include "diffusion/weight_stream.h"
#include "io/gguf_writer.h"
#include "io/xxh3.h"

namespace sluice::diffusion {
namespace {

constexpr uint32_t kAlignment = 4096;

uint64_t AlignUp(uint64_t v) { return (v + kAlignment - 1) / kAlignment * kAlignment; }

// What a source tensor becomes.
struct Plan {
  size_t index = 0;  // in ckpt.tensors()
  GgufTensorSpec spec;
  uint64_t bytes = 0;
  int block = -1;
};

// The output bytes of tensor `t` as `type` (through f32 rows; a tensor already of `type` is
// copied).
Status Convert(const CkptTensor& t, GgmlType type, uint8_t* dst) {
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  const int64_t cols = t.shape.size() <= 1 ? n : n / t.shape[0];
  const int64_t rows = n / cols;
  if (t.type == type) {
    std::copy(t.data, t.data + t.nbytes, dst);
    return Status::Ok();
  }
  std::vector<float> row(static_cast<size_t>(cols));
  const uint64_t src_row = RowBytes(t.type, cols), dst_row = RowBytes(type, cols);
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(t.type, t.data + src_row * r, row.data(), cols);
    QuantizeRow(type, row.data(), dst + dst_row * r, cols);
  }
  return Status::Ok();
}

}  // namespace

Result<ArchiveConvertStats> ConvertDiffusionCheckpoint(const std::string& in,
                                                       const std::string& out,
                                                       const ArchiveConvertOptions& o) {
  if (o.type != GgmlType::kF16 && o.type != GgmlType::kF32 && !IsSupportedWeightType(o.type)) {
    return InvalidArgument("convert: ", TypeName(o.type), " is not a weight type sluice runs");
  }
  if (IsGridType(o.type)) {
    return InvalidArgument("convert: ", TypeName(o.type),
                           " needs an importance-matrix quantizer, which sluice does not have "
                           "(it runs such files; choose q8_0, q4_K, ... to convert)");
  }
  // The networks' blocks, in their order of first use.
  ASSIGN_OR_RETURN(std::unique_ptr<DiffusionModel> model,
                   DiffusionModel::Load(in, std::optional<Prediction>(Prediction::kEps)));
  const Checkpoint& ckpt = model->checkpoint();
  const std::vector<std::string>& prefixes = model->block_prefixes();
  const std::vector<int> block_of = AssignBlocks(ckpt, prefixes);
  const int64_t qblock = TypeTraits(o.type).block_elements;

  ArchiveConvertStats stats;
  stats.source_bytes = ckpt.file_bytes();
  std::vector<Plan> plans;
  for (size_t i = 0; i < ckpt.tensors().size(); ++i) {
    const CkptTensor& t = ckpt.tensors()[i];
    if (!t.supported) {
      ++stats.dropped;
      continue;
    }
    Plan p;
    p.index = i;
    p.block = block_of[i];
    p.spec.name = t.name;
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) p.spec.ne.push_back(*it);
    if (p.spec.ne.empty()) p.spec.ne.push_back(1);
    // GGUF's row is ne[0] (the innermost PyTorch dimension): a Linear weight's rows are whole
    // blocks of `type` or not; a convolution's row is its kernel width, so convolutions stay
    // F16 (as in stable-diffusion.cpp's quantized files).
    if (t.shape.size() <= 1) {
      p.spec.type = GgmlType::kF32;
    } else if (p.spec.ne[0] % qblock == 0) {
      p.spec.type = o.type;
    } else {
      p.spec.type = GgmlType::kF16;
    }
    ASSIGN_OR_RETURN(p.bytes, GgufTensorBytes(p.spec));
    stats.quantized += p.spec.type == o.type && o.type != GgmlType::kF16 ? 1 : 0;
    plans.push_back(std::move(p));
  }
  // Blocks in their order, each block's tensors in file order; then the rest in file order.
  std::stable_sort(plans.begin(), plans.end(), [&](const Plan& a, const Plan& b) {
    const int ka = a.block < 0 ? static_cast<int>(prefixes.size()) : a.block;
    const int kb = b.block < 0 ? static_cast<int>(prefixes.size()) : b.block;
    if (ka != kb) return ka < kb;
    return ckpt.tensors()[a.index].offset < ckpt.tensors()[b.index].offset;
  });
  stats.tensors = plans.size();
  uint64_t total = 0;
  for (const Plan& p : plans) total += AlignUp(p.bytes);

  // Pass 1: each block's checksum over its span as the writer lays it out (tensors at aligned
  // offsets, zeros between), one block in memory at a time.
  std::string sums;
  std::vector<uint8_t> span;
  uint64_t done = 0;
  for (size_t i = 0; i < plans.size();) {
    if (o.cancel != nullptr && o.cancel->load()) return Cancelled("convert cancelled");
    const int b = plans[i].block;
    size_t j = i;
    uint64_t bytes = 0;
    while (j < plans.size() && plans[j].block == b) {
      bytes = AlignUp(bytes) + plans[j].bytes;
      ++j;
    }
    if (b >= 0) {
      span.assign(bytes, 0);
      uint64_t at = 0;
      for (size_t k = i; k < j; ++k) {
        at = AlignUp(at);
        RETURN_IF_ERROR(
            Convert(ckpt.tensors()[plans[k].index], plans[k].spec.type, span.data() + at));
        at += plans[k].bytes;
      }
      char hex[17];
      std::snprintf(hex, sizeof(hex), "%016llx",
                    static_cast<unsigned long long>(Xxh3_64(span.data(), span.size())));
      sums += StrCat(hex, " ", prefixes[b], "\n");
      ++stats.blocks;
      done += bytes;
      if (o.on_progress) o.on_progress(done / 2, total);
    }
    i = j;
  }
  Metadata meta;
  for (const auto& [k, v] : ckpt.StringMetadata()) {
    if (k != kBlockChecksumsKey) meta.SetString(k, v);
  }
  meta.SetString(kBlockChecksumsKey, sums);
  std::vector<GgufTensorSpec> specs;
  for (const Plan& p : plans) specs.push_back(p.spec);
  ASSIGN_OR_RETURN(std::unique_ptr<GgufWriter> w,
                   GgufWriter::Create(out, meta, specs, {.alignment = kAlignment}));
  // Pass 2: the bytes.
  std::vector<uint8_t> buf;
  uint64_t written = 0;
  for (const Plan& p : plans) {
    if (o.cancel != nullptr && o.cancel->load()) return Cancelled("convert cancelled");
    buf.resize(p.bytes);
    RETURN_IF_ERROR(Convert(ckpt.tensors()[p.index], p.spec.type, buf.data()));
    RETURN_IF_ERROR(w->WriteTensor(p.spec.name, buf.data(), buf.size()));
    written += AlignUp(p.bytes);
    if (o.on_progress) o.on_progress(total / 2 + written / 2, total);
  }
  stats.file_bytes = w->total_bytes();
  RETURN_IF_ERROR(w->Finish());
  return stats;
}

}  // namespace sluice::diffusion
