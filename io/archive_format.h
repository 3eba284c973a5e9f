// The sluice streaming archive: on-disk structures and constants. docs/archive-format.md describes
// every byte; this header is its code twin and the two must change together (bump kArchiveVersion).
//
// File layout (all integers little-endian, offsets absolute from the start of the file):
//   [0, 128)                        ArchiveHeader
//   [128, 128 + metadata_bytes)     metadata: GGUF v3 KV pairs (io/metadata_codec.h)
//   [directory_offset, +bytes)      directory: DenseEntry[dense_count], ExpertLayerEntry[
//                                   expert_layer_count], u64 expert_xxh3[expert_block_count],
//                                   string table (names, no terminators)
//   [dense_offset, +dense_bytes)    dense region, 4096-aligned start; each tensor 64-aligned
//   [expert_offset, +expert_bytes)  expert region, 4096-aligned; per layer, per expert one block
//                                   gate|up|down (each matrix 64-aligned inside the block), every
//                                   block 4096-aligned, block_stride apart
// header.index_xxh3 = xxh3-64 of bytes [0, directory_offset + directory_bytes) with the index_xxh3
// field itself read as zero, so one flipped byte in the header, metadata or directory is caught.
//
// Non-goals: compression, in-place editing, big-endian hosts. Thread-safety: plain data.
#pragma once

#include <cstddef>
#include <cstdint>

namespace sluice {

inline constexpr char kArchiveMagic[8] = {'S', 'L', 'U', 'I', 'C', 'E', 'A', 'R'};
inline constexpr uint32_t kArchiveVersion = 1;
// Page size and O_DIRECT alignment: regions and expert blocks start on multiples of this.
inline constexpr uint64_t kArchiveAlignment = 4096;
// Dense tensors and the matrices inside an expert block start on multiples of this (a cache line:
// aligned SIMD loads work on every tensor, and the padding costs < 0.01% of a 2 MB expert).
inline constexpr uint64_t kArchiveTensorAlignment = 64;
// Bounds a corrupt header cannot push us past (allocation happens only after these checks).
inline constexpr uint64_t kArchiveMaxIndexBytes = 1ull << 32;  // header + metadata + directory
inline constexpr uint32_t kArchiveMaxTensorDims = 4;

// 128 bytes at offset 0.
struct ArchiveHeader {
  char magic[8];                //   0: kArchiveMagic
  uint32_t version;             //   8: kArchiveVersion
  uint32_t header_bytes;        //  12: sizeof(ArchiveHeader) = 128
  uint64_t file_bytes;          //  16: exact size of the whole file
  uint64_t metadata_offset;     //  24: = 128
  uint64_t metadata_bytes;      //  32
  uint64_t metadata_count;      //  40: number of KV pairs
  uint64_t directory_offset;    //  48: = metadata_offset + metadata_bytes, 8-aligned
  uint64_t directory_bytes;     //  56
  uint32_t dense_count;         //  64: DenseEntry records
  uint32_t expert_layer_count;  //  68: ExpertLayerEntry records
  uint64_t expert_block_count;  //  72: sum of n_expert over expert layers (= xxh3 entries)
  uint64_t strings_bytes;       //  80: string table bytes (end of the directory)
  uint64_t dense_offset;        //  88: 4096-aligned
  uint64_t dense_bytes;         //  96
  uint64_t expert_offset;       // 104: 4096-aligned
  uint64_t expert_bytes;        // 112
  uint64_t index_xxh3;          // 120: see the file comment
};
static_assert(sizeof(ArchiveHeader) == 128);
inline constexpr size_t kIndexXxh3FieldOffset = offsetof(ArchiveHeader, index_xxh3);

// A name in the directory's string table.
struct ArchiveName {
  uint32_t offset;  // from the start of the string table
  uint32_t bytes;
};

// 80 bytes per dense tensor, in file order.
struct DenseEntry {
  ArchiveName name;   //  0
  uint32_t type;      //  8: GgmlType id
  uint32_t n_dims;    // 12: 1..4
  int64_t ne[4];      // 16: GGUF order, unused dims 1
  uint64_t offset;    // 48: absolute; 64-aligned, inside the dense region
  uint64_t nbytes;    // 56: = RowBytes(type, ne[0]) * ne[1] * ne[2] * ne[3]
  uint64_t xxh3;      // 64: xxh3-64 of the tensor's nbytes bytes
  uint64_t reserved;  // 72: 0
};
static_assert(sizeof(DenseEntry) == 80);

// One of an expert layer's three matrices: the whole (ne0, ne1, n_expert) tensor's name and type,
// and where each expert's (ne0, ne1) slice sits inside that expert's block.
struct ExpertMatrixEntry {
  ArchiveName name;          //  0: e.g. "blk.3.ffn_gate_exps.weight"
  uint32_t type;             //  8: GgmlType id
  uint32_t reserved;         // 12: 0
  int64_t ne0;               // 16: elements per row (input features)
  int64_t ne1;               // 24: rows (output features)
  uint64_t offset_in_block;  // 32: 64-aligned; gate 0, then up, then down
  uint64_t bytes;            // 40: = RowBytes(type, ne0) * ne1
};
static_assert(sizeof(ExpertMatrixEntry) == 48);

// 184 bytes per layer that has routed experts, in increasing layer order.
struct ExpertLayerEntry {
  uint32_t layer;                 //   0: block index ("blk.N")
  uint32_t n_expert;              //   4
  uint64_t first_block_offset;    //   8: absolute, 4096-aligned; expert e at + e * block_stride
  uint64_t block_stride;          //  16: AlignUp(block_bytes, 4096)
  uint64_t block_bytes;           //  24: down.offset_in_block + down.bytes (the checksummed span)
  uint64_t first_xxh3_index;      //  32: this layer's experts' checksums start here in expert_xxh3
  ExpertMatrixEntry matrices[3];  // 40: gate, up, down (ExpertMatrix order)
};
static_assert(sizeof(ExpertLayerEntry) == 184);

}  // namespace sluice
