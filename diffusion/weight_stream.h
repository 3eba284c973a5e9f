// Streaming a diffusion checkpoint's weights within a byte budget (issue 14).
//
// The networks register their blocks while loading (WeightReader::Block: one per unit of work,
// a ResBlock, a transformer block, a CLIP layer, a VAE resnet), in the order they compute them,
// and point their matrices into a PlacedRegion: an address range the size of the file, backed by
// no memory until a block is read into it at its file offset. Around each unit of work they call
// BlockUser::Use / Done. DiffusionStream is the BlockUser that streams: an io/OrderedStream in
// placed mode over the checkpoint file, told the order of a whole generation up front (text
// encoders, the UNet once per step, the VAE), so that the next blocks are read while the current
// one computes, across component and step boundaries.
//
// The plan (PlanStream): the UNet runs once per step, so its blocks are the ones worth keeping;
// the largest go first (the deep levels, whose weights are large and their pixels few, so their
// reads cannot hide under their compute), as many as fit beside a ring of at least three times
// the largest block that still streams. Text encoders and the VAE always stream (they run once).
//
// Streaming changes no byte the kernels see: the same file bytes at the same offsets, so images
// are bit for bit those of the resident run (tests/diffusion/stream_test.cc).
// Thread-safety: one generation at a time; Use/Done from the thread running the networks.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "diffusion/checkpoint.h"
#include "io/io_backend.h"
#include "io/ordered_stream.h"
#include "io/weight_block.h"

namespace sluice::diffusion {

// What the networks call around a unit of work. A null BlockUser* means resident weights.
class BlockUser {
 public:
  virtual ~BlockUser() = default;
  // The block's weights are in place until Done(block). Errors name the file and the block.
  virtual Status Use(int block) = 0;
  virtual void Done(int block) = 0;
};

// RAII for one Use/Done pair; `user` may be null.
class BlockScope {
 public:
  BlockScope(BlockUser* user, int block) : user_(user), block_(block) {
    if (user_ != nullptr && block_ >= 0) status_ = user_->Use(block_);
  }
  ~BlockScope() { Done(); }
  // Ends the use early (before the scope does).
  void Done() {
    if (user_ != nullptr && block_ >= 0 && status_.ok()) user_->Done(block_);
    user_ = nullptr;
  }
  BlockScope(const BlockScope&) = delete;
  BlockScope& operator=(const BlockScope&) = delete;
  const Status& status() const { return status_; }

 private:
  BlockUser* user_;
  int block_;
  Status status_;
};

// An address range of `bytes`, page aligned, reserved without memory (MAP_NORESERVE).
class PlacedRegion {
 public:
  static Result<std::unique_ptr<PlacedRegion>> Create(uint64_t bytes);
  ~PlacedRegion();
  uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

// For each of ckpt.tensors(): the index of the longest of `prefixes` its name starts with
// (cut at a '.'), or -1.
std::vector<int> AssignBlocks(const Checkpoint& ckpt, const std::vector<std::string>& prefixes);

// A diffusion archive (`sluice convert`, diffusion/archive_convert.h) carries each block's xxh3
// in this string metadata key, one "<16 hex digits> <prefix>" line per block.
inline constexpr const char* kBlockChecksumsKey = "sluice.diffusion.blocks";

// The checkpoint's tensors grouped by the registered prefixes (a tensor belongs to the longest
// prefix of its name); a block is the byte range from its first tensor to the end of its last,
// checked against its xxh3 when the file carries kBlockChecksumsKey (a prefix missing from it,
// or a file without it, has none).
class PrefixBlockTable : public WeightBlockTable {
 public:
  // Errors: a prefix no tensor has.
  static Result<std::unique_ptr<PrefixBlockTable>> Create(const Checkpoint& ckpt,
                                                          const std::vector<std::string>& prefixes);
  uint32_t n_blocks() const override { return static_cast<uint32_t>(ranges_.size()); }
  WeightBlock Locate(uint32_t id) const override;
  std::string Describe(uint32_t id) const override;
  const std::vector<std::string>& file_paths() const override { return paths_; }
  // Where each file starts in the placed region (Checkpoint::file_bases()).
  const std::vector<uint64_t>& file_bases() const { return bases_; }
  // Each of the block's tensors (a file written in another order than the blocks may put other
  // blocks' tensors inside a block's range).
  std::vector<ByteRange> OwnRanges(uint32_t id) const override { return own_[id]; }

 private:
  std::vector<std::string> paths_, names_;
  std::vector<uint64_t> bases_;
  std::vector<ByteRange> ranges_;
  std::vector<std::vector<ByteRange>> own_;
  std::vector<std::pair<bool, uint64_t>> checksum_;  // by block: has one, its xxh3
};

struct StreamPlan {
  std::vector<uint32_t> resident;  // block ids kept once read
  uint64_t resident_bytes = 0;
  uint64_t ring_bytes = 0;
  uint64_t streamed_bytes_per_pass = 0;  // of the repeated pass (the UNet), per step
  uint64_t min_budget = 0;               // the smallest weight budget that works
  uint64_t total_bytes = 0;              // every block once
};

// Plans `budget` bytes for weights: keeps the largest `repeated` blocks that fit beside a ring of
// three times the largest block left streaming (everything, when all fits). ResourceExhausted
// names the minimum when the budget is below it.
Result<StreamPlan> PlanStream(const PrefixBlockTable& table, std::span<const int> repeated,
                              uint64_t budget);

class DiffusionStream : public BlockUser {
 public:
  static Result<std::unique_ptr<DiffusionStream>> Create(std::unique_ptr<PrefixBlockTable> table,
                                                         const StreamPlan& plan, uint8_t* placed,
                                                         const IoOptions& io);
  // Announces uses, in order, after those announced before.
  void Announce(std::span<const int> blocks);
  Status Use(int block) override;
  void Done(int block) override;
  // Forgets announced uses not yet made (a generation that stopped early); none may be in use.
  void Abandon();

  const PrefixBlockTable& table() const { return *table_; }
  const StreamPlan& plan() const { return plan_; }
  OrderedStreamCounters counters() const { return stream_->counters(); }
  std::string io_description() const { return io_->Describe(); }

 private:
  DiffusionStream() = default;
  std::unique_ptr<PrefixBlockTable> table_;
  StreamPlan plan_;
  std::unique_ptr<IoBackend> io_;
  std::unique_ptr<OrderedStream> stream_;
  std::vector<StreamRef> held_;  // by block id
};

}  // namespace sluice::diffusion
