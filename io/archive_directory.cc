// ArchiveReader, part two: the directory (dense entries, expert layers, checksums, names), the
// ModelFile accessors over it, and checksum verification.
#include <fcntl.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstring>

#include "core/base/byte_size.h"
#include "core/base/str_cat.h"
#include "io/archive_reader.h"
#include "io/xxh3.h"

namespace sluice {
namespace {

const char* const kMatrixNames[3] = {"gate", "up", "down"};

// Checks a type id and a row length; returns the row bytes.
Result<uint64_t> CheckRow(uint32_t type_id, int64_t ne0, const std::string& where) {
  auto traits = GetTypeTraits(type_id);
  if (!traits) return Corrupt(where, ": unknown tensor type id ", type_id);
  GgmlType type = static_cast<GgmlType>(type_id);
  if (ne0 < 1 || !IsValidRowLength(type, ne0)) {
    return Corrupt(where, ": row of ", ne0, " elements is not a positive whole number of ",
                   traits->name, " blocks");
  }
  return RowBytes(type, ne0);
}

}  // namespace

Status ArchiveReader::ParseDirectory(const std::string& index) {
  const ArchiveHeader& h = header_;
  const uint64_t dir = h.directory_offset;
  // Sizes: checked term by term against directory_bytes so nothing overflows.
  uint64_t fixed = uint64_t{h.dense_count} * sizeof(DenseEntry) +
                   uint64_t{h.expert_layer_count} * sizeof(ExpertLayerEntry);
  if (fixed > h.directory_bytes || h.strings_bytes > h.directory_bytes - fixed ||
      h.expert_block_count != (h.directory_bytes - fixed - h.strings_bytes) / sizeof(uint64_t) ||
      fixed + h.expert_block_count * sizeof(uint64_t) + h.strings_bytes != h.directory_bytes) {
    return Corrupt(path_, ": directory at offset ", dir, " is ", h.directory_bytes, " bytes; its ",
                   h.dense_count, " dense entries, ", h.expert_layer_count, " expert layers, ",
                   h.expert_block_count, " checksums and ", h.strings_bytes,
                   " bytes of names do not add up to that");
  }
  const uint8_t* base = reinterpret_cast<const uint8_t*>(index.data());
  const uint64_t strings_at = dir + h.directory_bytes - h.strings_bytes;
  auto name_of = [&](const ArchiveName& n, const std::string& where) -> Result<std::string> {
    if (n.offset > h.strings_bytes || n.bytes > h.strings_bytes - n.offset || n.bytes == 0) {
      return Corrupt(where, ": name [", n.offset, ", +", n.bytes, ") outside the string table of ",
                     h.strings_bytes, " bytes");
    }
    return std::string(reinterpret_cast<const char*>(base + strings_at + n.offset), n.bytes);
  };

  // Dense tensors.
  const uint64_t dense_end = h.dense_offset + h.dense_bytes;
  for (uint32_t i = 0; i < h.dense_count; ++i) {
    uint64_t at = dir + uint64_t{i} * sizeof(DenseEntry);
    DenseEntry e;
    std::memcpy(&e, base + at, sizeof(e));
    std::string where = StrCat(path_, ": dense entry ", i, " at offset ", at);
    ASSIGN_OR_RETURN(std::string name, name_of(e.name, where));
    where = StrCat(path_, ": dense tensor '", name, "' (directory offset ", at, ")");
    if (e.n_dims < 1 || e.n_dims > kArchiveMaxTensorDims) {
      return Corrupt(where, ": n_dims expected 1..4, found ", e.n_dims);
    }
    ASSIGN_OR_RETURN(uint64_t bytes, CheckRow(e.type, e.ne[0], where));
    for (uint32_t d = 1; d < 4; ++d) {
      if (e.ne[d] < 1 || (d >= e.n_dims && e.ne[d] != 1) ||
          bytes > h.dense_bytes / static_cast<uint64_t>(e.ne[d])) {
        return Corrupt(where, ": ne[", d, "] = ", e.ne[d], " is invalid for ", e.n_dims,
                       " dims within a dense region of ", h.dense_bytes, " bytes");
      }
      bytes *= static_cast<uint64_t>(e.ne[d]);
    }
    if (e.nbytes != bytes) return Corrupt(where, ": nbytes expected ", bytes, ", found ", e.nbytes);
    if (e.offset % kArchiveTensorAlignment != 0 || e.offset < h.dense_offset ||
        e.offset > dense_end || e.nbytes > dense_end - e.offset) {
      return Corrupt(where, ": data [", e.offset, ", +", e.nbytes, ") is not a 64-aligned ",
                     "range inside the dense region [", h.dense_offset, ", ", dense_end, ")");
    }
    TensorInfo t;
    t.name = std::move(name);
    t.type = static_cast<GgmlType>(e.type);
    t.n_dims = static_cast<int>(e.n_dims);
    for (int d = 0; d < 4; ++d) t.ne[d] = e.ne[d];
    t.nbytes = e.nbytes;
    t.xxh3 = e.xxh3;
    t.has_checksum = true;
    dense_entries_.push_back(e);
    dense_.push_back(std::move(t));
  }

  // Expert layers.
  const uint64_t layers_at = dir + uint64_t{h.dense_count} * sizeof(DenseEntry);
  const uint64_t expert_end = h.expert_offset + h.expert_bytes;
  uint64_t next_xxh3 = 0;
  int64_t previous_layer = -1;
  for (uint32_t i = 0; i < h.expert_layer_count; ++i) {
    uint64_t at = layers_at + uint64_t{i} * sizeof(ExpertLayerEntry);
    ExpertLayerEntry e;
    std::memcpy(&e, base + at, sizeof(e));
    std::string where = StrCat(path_, ": expert layer ", e.layer, " (directory offset ", at, ")");
    if (static_cast<int64_t>(e.layer) <= previous_layer || e.layer > (1u << 20)) {
      return Corrupt(where, ": layers must increase (previous ", previous_layer, ")");
    }
    previous_layer = e.layer;
    if (e.n_expert == 0) return Corrupt(where, ": n_expert is 0");
    ExpertTensors tensors;
    TensorInfo* infos[3] = {&tensors.gate, &tensors.up, &tensors.down};
    uint64_t in_block = 0;
    for (int k = 0; k < 3; ++k) {
      const ExpertMatrixEntry& m = e.matrices[k];
      std::string mwhere = StrCat(where, " ", kMatrixNames[k]);
      ASSIGN_OR_RETURN(std::string name, name_of(m.name, mwhere));
      ASSIGN_OR_RETURN(uint64_t row, CheckRow(m.type, m.ne0, mwhere));
      if (m.ne1 < 1 || row > h.expert_bytes / static_cast<uint64_t>(m.ne1) ||
          m.bytes != row * static_cast<uint64_t>(m.ne1)) {
        return Corrupt(mwhere, ": ", m.ne1, " rows of ", row, " bytes do not make the ", m.bytes,
                       " bytes recorded");
      }
      in_block = AlignUp(in_block, kArchiveTensorAlignment);
      if (m.offset_in_block != in_block) {
        return Corrupt(mwhere, ": offset in block expected ", in_block, ", found ",
                       m.offset_in_block);
      }
      in_block += m.bytes;
      TensorInfo& t = *infos[k];
      t.name = std::move(name);
      t.type = static_cast<GgmlType>(m.type);
      t.n_dims = 3;
      t.ne = {m.ne0, m.ne1, static_cast<int64_t>(e.n_expert), 1};
      t.nbytes = m.bytes * e.n_expert;
      expert_bytes_total_ += t.nbytes;
    }
    if (e.block_bytes != in_block || e.block_stride != AlignUp(in_block, kArchiveAlignment)) {
      return Corrupt(where, ": block bytes/stride expected ", in_block, "/",
                     AlignUp(in_block, kArchiveAlignment), ", found ", e.block_bytes, "/",
                     e.block_stride);
    }
    if (e.first_block_offset % kArchiveAlignment != 0 || e.first_block_offset < h.expert_offset ||
        e.first_block_offset > expert_end ||
        e.n_expert > (expert_end - e.first_block_offset) / e.block_stride) {
      return Corrupt(where, ": ", e.n_expert, " blocks of ", e.block_stride, " bytes from offset ",
                     e.first_block_offset, " do not fit the 4096-aligned expert region [",
                     h.expert_offset, ", ", expert_end, ")");
    }
    if (e.first_xxh3_index != next_xxh3) {
      return Corrupt(where, ": first checksum index expected ", next_xxh3, ", found ",
                     e.first_xxh3_index);
    }
    next_xxh3 += e.n_expert;
    if (layer_slot_.size() <= e.layer) layer_slot_.resize(e.layer + 1, -1);
    layer_slot_[e.layer] = static_cast<int>(layer_entries_.size());
    layer_entries_.push_back(e);
    expert_tensors_.push_back(std::move(tensors));
  }
  if (next_xxh3 != h.expert_block_count) {
    return Corrupt(path_, ": header field 'expert_block_count' at offset ",
                   offsetof(ArchiveHeader, expert_block_count), ": expected ", next_xxh3,
                   " (the layers' experts), found ", h.expert_block_count);
  }
  const uint64_t xxh3_at = layers_at + uint64_t{h.expert_layer_count} * sizeof(ExpertLayerEntry);
  expert_xxh3_.resize(h.expert_block_count);
  if (!expert_xxh3_.empty()) {
    std::memcpy(expert_xxh3_.data(), base + xxh3_at, expert_xxh3_.size() * sizeof(uint64_t));
  }
  return Status::Ok();
}

const ExpertLayerEntry& ArchiveReader::LayerEntry(int layer) const {
  CHECK(layer >= 0 && static_cast<size_t>(layer) < layer_slot_.size() && layer_slot_[layer] >= 0)
      << path_ << ": layer " << layer << " has no routed experts";
  return layer_entries_[layer_slot_[layer]];
}

std::optional<ExpertTensors> ArchiveReader::expert_tensors(int layer) const {
  if (layer < 0 || static_cast<size_t>(layer) >= layer_slot_.size() || layer_slot_[layer] < 0) {
    return std::nullopt;
  }
  return expert_tensors_[layer_slot_[layer]];
}

uint64_t ArchiveReader::expert_block_offset(int layer, int expert) const {
  const ExpertLayerEntry& e = LayerEntry(layer);
  CHECK(expert >= 0 && static_cast<uint32_t>(expert) < e.n_expert)
      << path_ << ": expert " << expert << " of layer " << layer << " (" << e.n_expert << ")";
  return e.first_block_offset + static_cast<uint64_t>(expert) * e.block_stride;
}

ExpertLocation ArchiveReader::LocateExpert(int layer, int expert) const {
  const ExpertLayerEntry& e = LayerEntry(layer);
  const uint64_t block = expert_block_offset(layer, expert);
  ExpertLocation loc;
  for (int k = 0; k < 3; ++k) {
    loc.matrices[k] = {.file_index = 0,
                       .offset = block + e.matrices[k].offset_in_block,
                       .bytes = e.matrices[k].bytes};
  }
  loc.has_checksum = true;
  loc.xxh3 = expert_xxh3_[e.first_xxh3_index + static_cast<uint64_t>(expert)];
  return loc;
}

const uint8_t* ArchiveReader::mapped_file(int file_index) const {
  return file_index == 0 ? map_ : nullptr;
}

Status ArchiveReader::VerifyDenseTensor(size_t index) const {
  CHECK_LT(index, dense_entries_.size());
  const DenseEntry& e = dense_entries_[index];
  uint64_t found = Xxh3_64(map_ + e.offset, e.nbytes);
  if (found != e.xxh3) {
    return Corrupt(path_, ": dense tensor '", dense_[index].name, "' at offset ", e.offset, " (",
                   e.nbytes, " bytes): xxh3 expected ", Hex64(e.xxh3), ", found ", Hex64(found));
  }
  return Status::Ok();
}

Status ArchiveReader::VerifyExpertBlock(int layer, int expert) const {
  const ExpertLayerEntry& e = LayerEntry(layer);
  const uint64_t offset = expert_block_offset(layer, expert);
  const uint64_t expected = expert_xxh3_[e.first_xxh3_index + static_cast<uint64_t>(expert)];
  uint64_t found = Xxh3_64(map_ + offset, e.block_bytes);
  // Drop the pages: a full verify must not leave the experts in the page cache, where they would
  // flatter the next benchmark and push out the dense weights.
  // Mapped pages are not dropped while mapped, so unmap our view of them first (a later access
  // faults them back in from the file).
  madvise(const_cast<uint8_t*>(map_) + offset, e.block_stride, MADV_DONTNEED);
  posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(e.block_stride),
                POSIX_FADV_DONTNEED);
  if (found != expected) {
    return Corrupt(path_, ": expert (layer ", layer, ", expert ", expert, ") block at offset ",
                   offset, " (", e.block_bytes, " bytes): xxh3 expected ", Hex64(expected),
                   ", found ", Hex64(found));
  }
  return Status::Ok();
}

}  // namespace sluice
