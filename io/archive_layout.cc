#include "io/archive_layout.h"

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/base/byte_size.h"
#include "io/metadata_codec.h"

namespace sluice {
namespace {

const char* const kMatrixNames[3] = {"gate", "up", "down"};

Result<ArchiveName> AddName(const std::string& name, std::string* strings) {
  if (strings->size() + name.size() > std::numeric_limits<uint32_t>::max()) {
    return InvalidArgument("archive plan: tensor names exceed the 4 GiB string table at '", name,
                           "'");
  }
  ArchiveName n{static_cast<uint32_t>(strings->size()), static_cast<uint32_t>(name.size())};
  strings->append(name);
  return n;
}

// Checks name, type and shape of a declared tensor; returns its total bytes.
Result<uint64_t> CheckTensor(const TensorInfo& t, const char* what) {
  if (t.name.empty()) return InvalidArgument("archive plan: a ", what, " tensor has no name");
  if (!GetTypeTraits(static_cast<uint32_t>(t.type))) {
    return InvalidArgument("archive plan: ", what, " tensor '", t.name, "': unknown type id ",
                           static_cast<uint32_t>(t.type));
  }
  if (t.n_dims < 1 || t.n_dims > static_cast<int>(kArchiveMaxTensorDims)) {
    return InvalidArgument("archive plan: ", what, " tensor '", t.name, "': n_dims ", t.n_dims,
                           ", expected 1..4");
  }
  for (int d = 0; d < 4; ++d) {
    int64_t expected_min = 1;
    if (t.ne[d] < expected_min || (d >= t.n_dims && t.ne[d] != 1)) {
      return InvalidArgument("archive plan: ", what, " tensor '", t.name, "': ne[", d,
                             "] = ", t.ne[d], " (dims beyond n_dims must be 1, others >= 1)");
    }
  }
  if (!IsValidRowLength(t.type, t.ne[0])) {
    return InvalidArgument("archive plan: ", what, " tensor '", t.name, "': row of ", t.ne[0],
                           " elements is not a whole number of ", TypeName(t.type), " blocks");
  }
  // Overflow guard: any real tensor is far below 2^50 bytes.
  uint64_t bytes = RowBytes(t.type, t.ne[0]);
  for (int d = 1; d < 4; ++d) {
    if (bytes > (1ull << 50) / static_cast<uint64_t>(t.ne[d])) {
      return InvalidArgument("archive plan: ", what, " tensor '", t.name, "' is too large");
    }
    bytes *= static_cast<uint64_t>(t.ne[d]);
  }
  return bytes;
}

Status LayoutDense(const ArchivePlan& plan, uint64_t dense_offset, ArchiveLayout* out,
                   std::unordered_set<std::string>* names) {
  uint64_t pos = dense_offset;
  for (const TensorInfo& t : plan.dense) {
    ASSIGN_OR_RETURN(uint64_t bytes, CheckTensor(t, "dense"));
    if (!names->insert(t.name).second) {
      return InvalidArgument("archive plan: tensor name '", t.name, "' appears twice");
    }
    DenseEntry e{};
    ASSIGN_OR_RETURN(e.name, AddName(t.name, &out->strings));
    e.type = static_cast<uint32_t>(t.type);
    e.n_dims = static_cast<uint32_t>(t.n_dims);
    for (int d = 0; d < 4; ++d) e.ne[d] = t.ne[d];
    pos = AlignUp(pos, kArchiveTensorAlignment);
    e.offset = pos;
    e.nbytes = bytes;
    pos += bytes;
    out->payload_bytes += bytes;
    out->dense.push_back(e);
  }
  out->header.dense_offset = dense_offset;
  out->header.dense_bytes = pos - dense_offset;
  return Status::Ok();
}

Status LayoutExperts(const ArchivePlan& plan, uint64_t expert_offset, ArchiveLayout* out,
                     std::unordered_set<std::string>* names) {
  uint64_t pos = expert_offset;
  uint64_t xxh3_index = 0;
  int previous_layer = -1;
  for (const ArchiveExpertLayerPlan& lp : plan.expert_layers) {
    if (lp.layer <= previous_layer) {
      return InvalidArgument("archive plan: expert layers must be strictly increasing; layer ",
                             lp.layer, " follows layer ", previous_layer);
    }
    previous_layer = lp.layer;
    const TensorInfo* m[3] = {&lp.tensors.gate, &lp.tensors.up, &lp.tensors.down};
    ExpertLayerEntry e{};
    e.layer = static_cast<uint32_t>(lp.layer);
    uint64_t in_block = 0;
    for (int k = 0; k < 3; ++k) {
      ASSIGN_OR_RETURN(uint64_t bytes, CheckTensor(*m[k], kMatrixNames[k]));
      (void)bytes;
      if (m[k]->n_dims != 3 || m[k]->ne[2] != m[0]->ne[2]) {
        return InvalidArgument("archive plan: layer ", lp.layer, " ", kMatrixNames[k], " tensor '",
                               m[k]->name, "': expected 3 dims (in, out, n_expert) ",
                               "with n_expert = ", m[0]->ne[2], ", found n_dims ", m[k]->n_dims,
                               ", ne[2] = ", m[k]->ne[2]);
      }
      if (!names->insert(m[k]->name).second) {
        return InvalidArgument("archive plan: tensor name '", m[k]->name, "' appears twice");
      }
      ExpertMatrixEntry& me = e.matrices[k];
      ASSIGN_OR_RETURN(me.name, AddName(m[k]->name, &out->strings));
      me.type = static_cast<uint32_t>(m[k]->type);
      me.ne0 = m[k]->ne[0];
      me.ne1 = m[k]->ne[1];
      in_block = AlignUp(in_block, kArchiveTensorAlignment);
      me.offset_in_block = in_block;
      me.bytes = RowBytes(m[k]->type, me.ne0) * static_cast<uint64_t>(me.ne1);
      in_block += me.bytes;
    }
    if (m[0]->ne[2] > std::numeric_limits<uint32_t>::max()) {
      return InvalidArgument("archive plan: layer ", lp.layer, ": n_expert ", m[0]->ne[2],
                             " exceeds 2^32-1");
    }
    e.n_expert = static_cast<uint32_t>(m[0]->ne[2]);
    e.block_bytes = in_block;
    e.block_stride = AlignUp(in_block, kArchiveAlignment);
    e.first_block_offset = pos;
    e.first_xxh3_index = xxh3_index;
    pos += e.block_stride * e.n_expert;
    xxh3_index += e.n_expert;
    out->payload_bytes += e.block_bytes * e.n_expert;
    out->expert_layers.push_back(e);
  }
  out->header.expert_offset = expert_offset;
  out->header.expert_bytes = pos - expert_offset;
  out->header.expert_block_count = xxh3_index;
  return Status::Ok();
}

}  // namespace

Result<ArchiveLayout> ComputeArchiveLayout(const ArchivePlan& plan) {
  ArchiveLayout out;
  ArchiveHeader& h = out.header;
  std::memcpy(h.magic, kArchiveMagic, sizeof(h.magic));
  h.version = kArchiveVersion;
  h.header_bytes = sizeof(ArchiveHeader);
  EncodeMetadataKv(plan.metadata, &out.metadata_kv);
  h.metadata_offset = sizeof(ArchiveHeader);
  h.metadata_bytes = out.metadata_kv.size();
  h.metadata_count = plan.metadata.size();
  h.directory_offset = AlignUp(h.metadata_offset + h.metadata_bytes, 8);
  if (plan.dense.size() > std::numeric_limits<uint32_t>::max() ||
      plan.expert_layers.size() > std::numeric_limits<uint32_t>::max()) {
    return InvalidArgument("archive plan: too many tensors");
  }
  h.dense_count = static_cast<uint32_t>(plan.dense.size());
  h.expert_layer_count = static_cast<uint32_t>(plan.expert_layers.size());

  // The directory's size depends only on counts and names, so lay the string table out first by
  // computing the layout with a placeholder region start, then shift by the real start.
  std::unordered_set<std::string> names;
  RETURN_IF_ERROR(LayoutDense(plan, 0, &out, &names));
  RETURN_IF_ERROR(LayoutExperts(plan, 0, &out, &names));
  h.strings_bytes = out.strings.size();
  h.directory_bytes = h.dense_count * sizeof(DenseEntry) +
                      h.expert_layer_count * sizeof(ExpertLayerEntry) +
                      h.expert_block_count * sizeof(uint64_t) + h.strings_bytes;
  if (out.index_bytes() > kArchiveMaxIndexBytes) {
    return InvalidArgument("archive plan: metadata + directory would take ", out.index_bytes(),
                           " bytes, above the format's limit of ", kArchiveMaxIndexBytes);
  }
  uint64_t dense_offset = AlignUp(out.index_bytes(), kArchiveAlignment);
  uint64_t expert_offset = AlignUp(dense_offset + h.dense_bytes, kArchiveAlignment);
  h.dense_offset = dense_offset;
  h.expert_offset = expert_offset;
  for (DenseEntry& e : out.dense) e.offset += dense_offset;
  for (ExpertLayerEntry& e : out.expert_layers) e.first_block_offset += expert_offset;
  h.file_bytes = expert_offset + h.expert_bytes;
  return out;
}

uint64_t ComputeIndexXxh3(const uint8_t* index, uint64_t index_bytes) {
  CHECK_GE(index_bytes, sizeof(ArchiveHeader));
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  const uint64_t zero = 0;
  XXH3_64bits_update(&state, index, kIndexXxh3FieldOffset);
  XXH3_64bits_update(&state, &zero, sizeof(zero));
  uint64_t after = kIndexXxh3FieldOffset + sizeof(uint64_t);
  XXH3_64bits_update(&state, index + after, index_bytes - after);
  return XXH3_64bits_digest(&state);
}

std::string SerializeArchiveIndex(const ArchiveLayout& layout,
                                  const std::vector<uint64_t>& expert_xxh3) {
  const ArchiveHeader& h = layout.header;
  CHECK_EQ(expert_xxh3.size(), h.expert_block_count);
  std::string out(layout.index_bytes(), '\0');
  auto put = [&out](uint64_t at, const void* src, size_t n) {
    if (n == 0) return;  // memcpy with a null source is undefined even for 0 bytes
    CHECK_LE(at + n, out.size());
    std::memcpy(out.data() + at, src, n);
  };
  put(0, &h, sizeof(h));
  put(h.metadata_offset, layout.metadata_kv.data(), layout.metadata_kv.size());
  uint64_t at = h.directory_offset;
  for (const DenseEntry& e : layout.dense) {
    put(at, &e, sizeof(e));
    at += sizeof(e);
  }
  for (const ExpertLayerEntry& e : layout.expert_layers) {
    put(at, &e, sizeof(e));
    at += sizeof(e);
  }
  put(at, expert_xxh3.data(), expert_xxh3.size() * sizeof(uint64_t));
  at += expert_xxh3.size() * sizeof(uint64_t);
  put(at, layout.strings.data(), layout.strings.size());
  uint64_t index_xxh3 = ComputeIndexXxh3(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  put(kIndexXxh3FieldOffset, &index_xxh3, sizeof(index_xxh3));
  return out;
}

}  // namespace sluice
