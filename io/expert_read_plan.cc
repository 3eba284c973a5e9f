#include "io/expert_read_plan.h"

#include <algorithm>

#include "core/base/byte_size.h"
#include "io/io_backend.h"

namespace sluice {

Result<ExpertReadPlan> PlanExpertRead(const ExpertLocation& loc) {
  // Matrices in file order.
  std::array<int, 3> order = {0, 1, 2};
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const auto& x = loc.matrices[a];
    const auto& y = loc.matrices[b];
    return x.file_index != y.file_index ? x.file_index < y.file_index : x.offset < y.offset;
  });
  ExpertReadPlan plan;
  uint64_t run_end = 0;  // file offset of the current run's last matrix byte + 1
  for (int m : order) {
    const ExpertLocation::Extent& e = loc.matrices[m];
    if (e.bytes == 0 || e.bytes > kMaxIoRequestBytes) {
      return InvalidArgument("expert matrix ", m, " at offset ", e.offset, " has ", e.bytes,
                             " bytes (1..", kMaxIoRequestBytes, " supported)");
    }
    const uint64_t start = AlignDown(e.offset, kIoAlignment);
    const uint64_t end = e.offset + e.bytes;
    ExpertRead* cur = plan.n_reads > 0 ? &plan.reads[plan.n_reads - 1] : nullptr;
    // Join the current read when this matrix starts within its aligned span: the bytes between
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
      return InvalidArgument("expert read of ", cur->length, " bytes at offset ", cur->offset,
                             " exceeds ", kMaxIoRequestBytes);
    }
    plan.matrix_slot_offset[m] = cur->slot_offset + (e.offset - cur->offset);
  }
  const ExpertRead& last = plan.reads[plan.n_reads - 1];
  plan.slot_bytes = last.slot_offset + last.length;
  if (loc.has_checksum) {
    if (plan.n_reads != 1) {
      return Corrupt("expert with a checksum spans ", plan.n_reads,
                     " separate file ranges; the checksum covers one contiguous block");
    }
    const ExpertLocation::Extent& first = loc.matrices[order[0]];
    plan.has_checksum = true;
    plan.hash_slot_offset = first.offset - plan.reads[0].offset;
    plan.hash_bytes = run_end - first.offset;
    plan.xxh3 = loc.xxh3;
  }
  return plan;
}

}  // namespace sluice
