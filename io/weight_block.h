// WeightBlock: the unit the weight cache (io/weight_cache.h) reads, holds and evicts: one or more
// byte ranges of the model's files, read together and handed out together. One routed FFN of a
// mixture model is one (gate, up, down: three ranges), and so can be a UNet block, a VAE decoder
// stage or a text-encoder block. The model code numbers its blocks 0..n-1 and describes each in a
// WeightBlockTable, the one seam between model code and the cache; the cache knows nothing else
// of what a block is.
//
// Thread-safety: a WeightBlockTable is read from several threads at once (its methods are const
// and must be safe to call concurrently).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace sluice {

// Parts of one block the caller gets pointers to (a routed FFN has 3; gpt-oss's, with biases, 6).
inline constexpr int kMaxBlockParts = 8;

// Bytes [offset, offset + bytes) of file `file_index` of the table's files.
struct ByteRange {
  int file_index = 0;
  uint64_t offset = 0;
  uint64_t bytes = 0;
};

struct WeightBlock {
  int n_parts = 0;
  std::array<ByteRange, kMaxBlockParts> parts;  // in the order WeightRef::part(i) returns them
  // With a checksum: the xxh3-64 of the one contiguous span from the first to the last byte of
  // the parts (the streaming archive writes each block so; a GGUF has no checksums).
  bool has_checksum = false;
  uint64_t xxh3 = 0;
};

class WeightBlockTable {
 public:
  virtual ~WeightBlockTable() = default;
  // Blocks are numbered 0..n_blocks()-1.
  virtual uint32_t n_blocks() const = 0;
  virtual WeightBlock Locate(uint32_t id) const = 0;
  // Names block `id` in messages, e.g. "unet.input_blocks.4" (the MoE view names its routed FFNs).
  virtual std::string Describe(uint32_t id) const = 0;
  // The files ByteRange::file_index indexes.
  virtual const std::vector<std::string>& file_paths() const = 0;
  // Placed mode of io/ordered_stream.h: byte ranges of the file that hold only this block's
  // bytes, whose pages may be returned to the system when the block is released. The default
  // is its parts; a table whose parts span other blocks' bytes must say less.
  virtual std::vector<ByteRange> OwnRanges(uint32_t id) const {
    const WeightBlock b = Locate(id);
    return std::vector<ByteRange>(b.parts.begin(), b.parts.begin() + b.n_parts);
  }
};

}  // namespace sluice
