#include "io/archive_verify.h"

#include <xxhash.h>

#include <algorithm>
#include <deque>
#include <memory>

#include "core/base/byte_size.h"
#include "core/base/clock.h"
#include "core/base/str_cat.h"
#include "io/read_buffers.h"

namespace sluice {
namespace {

// One checksummed span of the file.
struct Item {
  std::string what;  // "dense tensor NAME", "expert (layer L, expert E) block"
  uint64_t offset = 0, bytes = 0, xxh3 = 0;
};

// One read: an aligned piece of one item.
struct Piece {
  size_t item = 0;
  uint64_t offset = 0, length = 0;      // aligned file range read
  uint64_t hash_from = 0, hash_to = 0;  // the item's bytes inside the read buffer
  bool last = false;                    // the item's final piece
};

std::vector<Item> Items(const ArchiveReader& a) {
  std::vector<Item> items;
  const std::vector<TensorInfo>& dense = a.dense_tensors();
  for (size_t i = 0; i < a.dense_entries().size(); ++i) {
    const DenseEntry& e = a.dense_entries()[i];
    items.push_back({StrCat("dense tensor ", dense[i].name), e.offset, e.nbytes, e.xxh3});
  }
  for (const ExpertLayerEntry& e : a.expert_layer_entries()) {
    for (uint32_t x = 0; x < e.n_expert; ++x) {
      const int layer = static_cast<int>(e.layer), expert = static_cast<int>(x);
      items.push_back({StrCat("expert (layer ", layer, ", expert ", expert, ") block"),
                       a.expert_block_offset(layer, expert), e.block_bytes,
                       a.LocateExpert(layer, expert).xxh3});
    }
  }
  // In file order: the device reads forward.
  std::stable_sort(items.begin(), items.end(),
                   [](const Item& x, const Item& y) { return x.offset < y.offset; });
  return items;
}

}  // namespace

Result<VerifyReport> VerifyArchive(const ArchiveReader& archive, const VerifyOptions& options) {
  CHECK(options.queue_depth >= 1 && options.read_bytes >= kIoAlignment &&
        options.read_bytes % kIoAlignment == 0);
  const Clock::time_point start = Clock::now();
  VerifyReport report;
  const std::vector<Item> items = Items(archive);
  report.dense_checks = archive.dense_entries().size();
  report.checks = items.size();
  for (const Item& it : items) report.bytes += it.bytes;

  // Pieces in order; each item's hash is updated piece by piece in that order.
  std::vector<Piece> pieces;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& it = items[i];
    const uint64_t begin = AlignDown(it.offset, kIoAlignment);
    const uint64_t end = AlignUp(it.offset + it.bytes, kIoAlignment);
    for (uint64_t at = begin; at < end; at += options.read_bytes) {
      Piece p;
      p.item = i;
      p.offset = at;
      p.length = std::min(options.read_bytes, end - at);
      p.hash_from = std::max(it.offset, at) - at;
      p.hash_to = std::min(it.offset + it.bytes, at + p.length) - at;
      p.last = at + p.length >= end;
      pieces.push_back(p);
    }
  }

  const int qd = options.queue_depth;
  ASSIGN_OR_RETURN(std::unique_ptr<IoBackend> io,
                   CreateIoBackend({.kind = options.io, .queue_depth = qd}, {archive.path()}));
  report.backend = io->Describe();
  ReadBuffers buffers(static_cast<uint64_t>(qd) * options.read_bytes, /*numa_local=*/true,
                      /*lock=*/false);
  if (buffers.data() == nullptr) {
    return ResourceExhausted("verify: cannot allocate ", FormatBytes(buffers.size()),
                             " of read buffers");
  }
  std::vector<iovec> iov(qd);
  for (int s = 0; s < qd; ++s)
    iov[s] = {buffers.data() + s * options.read_bytes, options.read_bytes};
  io->RegisterBuffers(iov);
  struct Unregister {
    IoBackend* io;
    ~Unregister() { io->UnregisterBuffers(); }
  } unregister{io.get()};

  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(),
                                                                 &XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<IoCompletion> done_by_slot(qd);
  std::vector<bool> complete(qd, false);
  std::deque<size_t> in_flight;  // piece indices, oldest first; piece p uses slot p % qd
  size_t next = 0;
  uint64_t verified_bytes = 0;
  auto submit = [&](size_t p) -> Status {
    const int slot = static_cast<int>(p % qd);
    complete[slot] = false;
    IoRequest r{.offset = pieces[p].offset,
                .length = pieces[p].length,
                .dest = buffers.data() + slot * options.read_bytes,
                .buffer_index = slot,
                .tag = p};
    in_flight.push_back(p);
    return io->Submit({&r, 1});
  };
  IoCompletion reaped[16];
  auto reap_until = [&](int slot) {
    while (!complete[slot]) {
      const size_t n = io->Reap(reaped, 1);
      for (size_t i = 0; i < n; ++i) {
        const int s = static_cast<int>(reaped[i].tag % qd);
        done_by_slot[s] = reaped[i];
        complete[s] = true;
      }
    }
  };
  // Before any return: the kernel may still be writing into the buffers.
  auto drain = [&](Status error) {
    for (size_t p : in_flight) reap_until(static_cast<int>(p % qd));
    return error;
  };
  while (next < pieces.size() && static_cast<int>(in_flight.size()) < qd) {
    if (Status st = submit(next++); !st.ok()) return drain(st);
  }
  while (!in_flight.empty()) {
    const size_t oldest = in_flight.front();
    const int slot = static_cast<int>(oldest % qd);
    reap_until(slot);
    in_flight.pop_front();
    const Piece& p = pieces[oldest];
    const Item& item = items[p.item];
    const IoCompletion& c = done_by_slot[slot];
    if (c.error != 0) {
      return drain(IoError(archive.path(), ": reading ", item.what, " at offset ", p.offset,
                           " failed: ", IoErrorText(c.error)));
    }
    if (c.bytes < p.hash_to) {
      return drain(Corrupt(archive.path(), ": ", item.what, " at offset ", p.offset,
                           ": the file ended after ", c.bytes, " of ", p.hash_to,
                           " bytes (truncated?)"));
    }
    report.bytes_read += c.bytes;
    XXH3_64bits_update(state.get(), buffers.data() + slot * options.read_bytes + p.hash_from,
                       p.hash_to - p.hash_from);
    verified_bytes += p.hash_to - p.hash_from;
    if (p.last) {
      const uint64_t found = XXH3_64bits_digest(state.get());
      if (found != item.xxh3) {
        ++report.failed;
        if (report.failures.size() < options.max_listed) {
          report.failures.push_back(StrCat(archive.path(), ": ", item.what, " at offset ",
                                           item.offset, " (", item.bytes, " bytes): xxh3 expected ",
                                           Hex64(item.xxh3), ", found ", Hex64(found)));
        }
      }
      XXH3_64bits_reset(state.get());
      if (options.on_progress) options.on_progress(verified_bytes, report.bytes);
    }
    if (next < pieces.size()) {
      if (Status st = submit(next++); !st.ok()) return drain(st);
    }
  }
  report.seconds = Seconds(start, Clock::now());
  return report;
}

}  // namespace sluice
