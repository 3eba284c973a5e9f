// OrderedStream: weight blocks (io/weight_block.h) whose order of use is known ahead, read from
// storage through a ring buffer while earlier blocks compute.
//
// Why not the WeightCache: a diffusion model uses its weights in the same order every time (the
// text encoder once, the UNet once per sampling step, the VAE once). Under recency eviction each
// block is evicted just before its next use, and its blocks range from kilobytes to ~100 MB, which
// slot size classes would pad or split into classes that each need their own minimum. Here the
// caller announces its uses ahead (Enqueue), and the stream
//   - keeps the `resident` blocks for good once read (the caller picks them: those of the repeated
//     pass that fit beside the ring), each at its own place of an arena, and
//   - streams every other use through a ring of ring_bytes: uses get ring space in the order they
//     were announced, and their reads start as soon as there is room, so the blocks after the one
//     computing arrive while it computes (read-ahead as deep as the ring, across pass boundaries).
// Next(id) hands out the oldest use not yet handed out, which must be `id`: a different id is an
// InvalidArgument naming both (the caller's order and its announcements disagree). Uses may be
// released in any order; ring space frees up to the oldest use still held. Streaming changes no
// byte: a block's bytes are the file's, verified against its xxh3 when the table has one.
//
// Memory: ring_bytes + the resident blocks' aligned sizes, allocated once (io/read_buffers.h).
// A ring below MinRingBytes() is refused, naming the minimum: three times the largest streamed
// block, so that while one block of any size is held, the next finds contiguous room on one
// side of it or the other (with two, a held block in the middle can leave two halves too small). A
// caller that holds so much that the next block cannot get ring space gets ResourceExhausted from
// Next, never a hang.
//
// Thread-safety: Enqueue, Next and Release from one consumer thread; counters() from any. A
// completion thread reaps the reads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "core/base/status.h"
#include "io/block_read_plan.h"
#include "io/io_backend.h"
#include "io/read_buffers.h"
#include "io/weight_block.h"

namespace sluice {

struct OrderedStreamOptions {
  uint64_t ring_bytes = 0;
  std::vector<uint32_t> resident = {};  // block ids kept once read
  bool verify_checksums = true;
  bool lock_memory = false;
  // Placed mode (non-null): every block is read to placed_base + its file offset (one file,
  // or see placed_file_bases; the caller reserves the file's size, page aligned, e.g. an anonymous
  // MAP_NORESERVE mapping), so pointers into it stay valid from one use to the next and a
  // network can keep them. No ring memory is allocated: ring_bytes only bounds the bytes live at
  // once (allocated as in the ring), and on release the pages wholly inside a streamed block are
  // returned to the system (MADV_DONTNEED; a page a block shares with its neighbour stays, at most
  // two per block). Two uses of one block are never live at once.
  uint8_t* placed_base = nullptr;
  // Placed mode over several files (a diffusers folder: one file per component): file i's bytes
  // go to placed_base + placed_file_bases[i] + offset (bases page aligned, ranges not
  // overlapping). Empty: one file at placed_base.
  std::vector<uint64_t> placed_file_bases = {};
};

struct OrderedStreamCounters {
  uint64_t uses = 0;           // Next calls that returned a block
  uint64_t resident_uses = 0;  // of them: a resident block already read for an earlier use
  uint64_t bytes_read = 0;     // from storage (aligned reads)
  uint64_t reads_completed = 0;
  uint64_t io_wait_ns = 0;  // time Next spent blocked on reads
  uint64_t busy_ns = 0;     // wall time with at least one read in flight
  uint64_t read_errors = 0;
  uint64_t checksum_failures = 0;
};

// A block handed out by Next: valid until Release.
struct StreamRef {
  const uint8_t* part[kMaxBlockParts] = {};
  uint32_t id = 0;
  uint64_t seq = 0;  // the use's position in the announced order
  bool valid = false;
};

class OrderedStream {
 public:
  // The smallest ring, in streamed blocks of the largest size (see MinRingBytes).
  static constexpr uint64_t kRingBlocks = 3;
  // Plans every block's reads (an error names the block), checks the ring against the minimum and
  // allocates. `table` and `io` must outlive the stream.
  static Result<std::unique_ptr<OrderedStream>> Create(const WeightBlockTable& table, IoBackend* io,
                                                       const OrderedStreamOptions& options);
  // Three times the largest aligned size among the blocks not in `resident`; 0 when all are.
  static Result<uint64_t> MinRingBytes(const WeightBlockTable& table,
                                       std::span<const uint32_t> resident);
  // The aligned bytes block `id` occupies (what a resident block costs).
  static Result<uint64_t> BlockBytes(const WeightBlockTable& table, uint32_t id);

  ~OrderedStream();
  OrderedStream(const OrderedStream&) = delete;
  OrderedStream& operator=(const OrderedStream&) = delete;

  // Announces uses, in order, after those announced before; reads start for those that fit.
  // CHECK-fails on an id out of range.
  void Enqueue(std::span<const uint32_t> ids);
  // The next announced use: waits for its reads (and verifies it), returns its bytes. Errors:
  // `id` is not the next announced use, nothing is announced, a read failed or a checksum did not
  // match (naming the file, the block and the offset), or the ring is full of held blocks.
  Result<StreamRef> Next(uint32_t id);
  void Release(StreamRef& ref);
  // Forgets every announced use not yet handed out (a pass that stopped early: an error, a
  // cancel), after waiting for their reads; the next Enqueue starts afresh. Uses handed out and
  // not released stay valid.
  void Abandon();

  OrderedStreamCounters counters() const;
  uint64_t allocated_bytes() const { return memory_.size(); }
  uint64_t ring_bytes() const { return ring_bytes_; }
  uint64_t resident_bytes() const { return arena_bytes_; }
  // Announced uses not yet handed out.
  size_t pending() const;

 private:
  enum State : uint8_t { kWaiting, kLoading, kLoaded, kReady, kFailed };
  struct Use {
    uint32_t id = 0;
    bool resident = false;
    State state = kWaiting;  // streamed uses; a resident one follows its block's state
    bool claimed = false, released = false;
    uint64_t ring_offset = 0, ring_size = 0;
    int reads_left = 0, read_error = 0;
    uint64_t short_offset = 0, short_got = 0, short_needed = 0;
    Status error;
  };
  struct Resident {
    uint64_t offset = 0;  // in the arena
    State state = kWaiting;
    int reads_left = 0, read_error = 0;
    uint64_t short_offset = 0, short_got = 0, short_needed = 0;
    Status error;
  };

  OrderedStream(const WeightBlockTable& table, IoBackend* io, const OrderedStreamOptions& options)
      : table_(table), io_(io), options_(options) {}
  Status Init();
  // Gives ring space / starts reads for announced uses in order, as far as the ring allows;
  // appends the reads to `out` (submitted by the caller without mu_).
  void AllocateLocked(std::vector<IoRequest>* out);
  bool RingSpaceLocked(uint64_t size, uint64_t* offset) const;
  void FreeRingLocked();
  void DropPagesLocked(uint32_t id);  // placed mode: the pages wholly inside a streamed block
  void AddReads(const BlockReadPlan& plan, uint8_t* dest, uint64_t tag_base,
                std::vector<IoRequest>* out);
  void Submit(std::vector<IoRequest>& reqs);
  void CompletionLoop();
  Status LoadError(uint32_t id, int error, uint64_t offset, uint64_t got, uint64_t needed) const;
  Status Verify(uint32_t id, const uint8_t* dest) const;
  std::string Where(uint32_t id) const;
  uint8_t* ring() const { return memory_.data() + arena_bytes_; }
  bool placed() const { return options_.placed_base != nullptr; }
  // Placed mode: where byte `offset` of file `file_index` lives.
  uint8_t* PlacedAt(int file_index, uint64_t offset) const {
    return options_.placed_base +
           (options_.placed_file_bases.empty() ? 0 : options_.placed_file_bases[file_index]) +
           offset;
  }
  // Where block `id`'s first part byte is, for a use at ring offset `ring_offset` (streamed) or
  // its arena place (resident).
  uint8_t* SlotOf(uint32_t id, const Use& u) const;

  const WeightBlockTable& table_;
  IoBackend* io_;
  const OrderedStreamOptions options_;
  std::vector<BlockReadPlan> plans_;     // by block id
  std::vector<int32_t> resident_index_;  // block id -> index in residents_, or -1
  std::vector<Resident> residents_;
  uint64_t arena_bytes_ = 0, ring_bytes_ = 0;
  ReadBuffers memory_;  // arena, then ring

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Use> uses_;             // announced, oldest first; popped once released and settled
  uint64_t first_seq_ = 0;           // seq of uses_.front()
  uint64_t next_alloc_ = 0;          // seq of the first use without ring space / reads
  uint64_t next_claim_ = 0;          // seq of the next use Next hands out
  uint64_t ring_head_ = 0;           // where the next allocation goes
  std::deque<uint64_t> ring_live_;   // seqs holding ring space, in ring order
  std::vector<uint32_t> live_uses_;  // placed mode: by block id, streamed uses allocated and
                                     // not yet released
  uint64_t in_flight_ = 0;
  uint64_t busy_since_ns_ = 0;
  OrderedStreamCounters counters_;
  bool stopping_ = false;
  std::thread completion_thread_;
};

}  // namespace sluice
