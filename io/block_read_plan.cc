#include "io/block_read_plan.h"

#include <algorithm>
#include <limits>

#include "core/base/byte_size.h"
#include "io/io_backend.h"

namespace sluice {

Result<BlockReadPlan> PlanBlockRead(const WeightBlock& block) {
  if (block.n_parts < 1 || block.n_parts > kMaxBlockParts) {
    return InvalidArgument("a weight block has ", block.n_parts, " parts (1..", kMaxBlockParts,
                           " supported)");
  }
  // Parts in file order.
  // Insertion sort: at most kMaxBlockParts entries (and GCC 12's -Warray-bounds misfires on
  // std::sort over a prefix of a std::array under -O2 -fsanitize=address).
  auto before = [&](int a, int b) {
    const ByteRange& x = block.parts[a];
    const ByteRange& y = block.parts[b];
    return x.file_index != y.file_index ? x.file_index < y.file_index : x.offset < y.offset;
  };
  std::array<int, kMaxBlockParts> order{};
  for (int i = 0; i < block.n_parts; ++i) {
    int j = i;
    for (; j > 0 && before(i, order[j - 1]); --j) order[j] = order[j - 1];
    order[j] = i;
  }
  BlockReadPlan plan;
  uint64_t run_end = 0;  // file offset of the current run's last part byte + 1
  for (int k = 0; k < block.n_parts; ++k) {
    const int m = order[k];
    const ByteRange& e = block.parts[m];
    if (e.bytes == 0 || e.bytes > kMaxIoRequestBytes) {
      return InvalidArgument("part ", m, " at offset ", e.offset, " has ", e.bytes, " bytes (1..",
                             kMaxIoRequestBytes, " supported)");
    }
    if (e.offset > std::numeric_limits<uint64_t>::max() - e.bytes - kIoAlignment) {
      return InvalidArgument("part ", m, " at offset ", e.offset, " + ", e.bytes,
                             " bytes overflows a file offset");
    }
    plan.data_bytes += e.bytes;
    const uint64_t start = AlignDown(e.offset, kIoAlignment);
    const uint64_t end = e.offset + e.bytes;
    BlockRead* cur = plan.n_reads > 0 ? &plan.reads[plan.n_reads - 1] : nullptr;
    // Join the current read when this part starts within its aligned span: the bytes between
    // them are at most one page of padding (the archive's 64-byte gaps).
    if (cur != nullptr && cur->file_index == e.file_index && start <= cur->offset + cur->length) {
      run_end = std::max(run_end, end);
      cur->length = AlignUp(run_end, kIoAlignment) - cur->offset;
      cur->needed = run_end - cur->offset;
    } else {
      if (cur != nullptr) plan.slot_bytes = cur->slot_offset + cur->length;
      cur = &plan.reads[plan.n_reads++];
      cur->file_index = e.file_index;
      cur->offset = start;
      cur->slot_offset = plan.slot_bytes;
      run_end = end;
      cur->length = AlignUp(end, kIoAlignment) - start;
      cur->needed = end - start;
    }
    if (cur->length > kMaxIoRequestBytes) {
      return InvalidArgument("block read of ", cur->length, " bytes at offset ", cur->offset,
                             " exceeds ", kMaxIoRequestBytes);
    }
    plan.part_slot_offset[m] = cur->slot_offset + (e.offset - cur->offset);
  }
  const BlockRead& last = plan.reads[plan.n_reads - 1];
  plan.slot_bytes = last.slot_offset + last.length;
  if (block.has_checksum) {
    if (plan.n_reads != 1) {
      return Corrupt("block with a checksum spans ", plan.n_reads,
                     " separate file ranges; the checksum covers one contiguous block");
    }
    const ByteRange& first = block.parts[order[0]];
    plan.has_checksum = true;
    plan.hash_slot_offset = first.offset - plan.reads[0].offset;
    plan.hash_bytes = run_end - first.offset;
    plan.xxh3 = block.xxh3;
  }
  return plan;
}

}  // namespace sluice
