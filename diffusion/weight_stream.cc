#include "diffusion/weight_stream.h"

#include <sys/mman.h>

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "core/base/byte_size.h"
#include "core/base/str_cat.h"

namespace sluice::diffusion {

Result<std::unique_ptr<PlacedRegion>> PlacedRegion::Create(uint64_t bytes) {
  const uint64_t size =
      std::max<uint64_t>(1, (bytes + kIoAlignment - 1) / kIoAlignment) * kIoAlignment;
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) {
    return ResourceExhausted("cannot reserve ", FormatBytes(size),
                             " of address space: ", ErrnoString(errno));
  }
  std::unique_ptr<PlacedRegion> r(new PlacedRegion());
  r->data_ = static_cast<uint8_t*>(p);
  r->size_ = size;
  return r;
}

PlacedRegion::~PlacedRegion() {
  if (data_ != nullptr) munmap(data_, size_);
}

std::vector<int> AssignBlocks(const Checkpoint& ckpt, const std::vector<std::string>& prefixes) {
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < prefixes.size(); ++i) index.emplace(prefixes[i], static_cast<int>(i));
  std::vector<int> out;
  out.reserve(ckpt.tensors().size());
  for (const CkptTensor& tensor : ckpt.tensors()) {
    // The longest registered prefix: cut the name after each '.', from the end.
    const std::string& name = tensor.name;
    int b = -1;
    for (size_t dot = name.rfind('.'); dot != std::string::npos && b < 0;
         dot = dot == 0 ? std::string::npos : name.rfind('.', dot - 1)) {
      auto it = index.find(name.substr(0, dot + 1));
      if (it != index.end()) b = it->second;
    }
    out.push_back(b);
  }
  return out;
}

Result<std::unique_ptr<PrefixBlockTable>> PrefixBlockTable::Create(
    const Checkpoint& ckpt, const std::vector<std::string>& prefixes) {
  std::unique_ptr<PrefixBlockTable> t(new PrefixBlockTable());
  t->paths_ = ckpt.file_paths();
  t->bases_ = ckpt.file_bases();
  const uint64_t none = std::numeric_limits<uint64_t>::max();
  std::vector<uint64_t> first(prefixes.size(), none), end(prefixes.size(), 0);
  std::vector<int> file(prefixes.size(), -1);
  t->own_.resize(prefixes.size());
  const std::vector<int> block_of = AssignBlocks(ckpt, prefixes);
  for (size_t i = 0; i < block_of.size(); ++i) {
    if (block_of[i] < 0) continue;
    const CkptTensor& tensor = ckpt.tensors()[i];
    const size_t b = static_cast<size_t>(block_of[i]);
    if (file[b] >= 0 && file[b] != tensor.file) {
      return Internal(ckpt.path(), ": block '", prefixes[b], "' has tensors in two files (",
                      ckpt.file_paths()[file[b]], ", ", ckpt.file_paths()[tensor.file], ")");
    }
    file[b] = tensor.file;
    first[b] = std::min(first[b], tensor.offset);
    end[b] = std::max(end[b], tensor.offset + tensor.nbytes);
    t->own_[b].push_back({tensor.file, tensor.offset, tensor.nbytes});
  }
  // Checksums of a diffusion archive: "<hex> <prefix>" lines.
  std::unordered_map<std::string, uint64_t> sums;
  const std::string lines = ckpt.MetadataValue(kBlockChecksumsKey);
  for (size_t pos = 0; pos < lines.size();) {
    size_t nl = lines.find('\n', pos);
    if (nl == std::string::npos) nl = lines.size();
    const std::string line = lines.substr(pos, nl - pos);
    pos = nl + 1;
    const size_t sp = line.find(' ');
    if (sp != 16) {
      return Corrupt(ckpt.path(), ": metadata ", kBlockChecksumsKey, ": line '", line.substr(0, 80),
                     "' is not '<16 hex digits> <block>'");
    }
    uint64_t v = 0;
    for (size_t i = 0; i < 16; ++i) {
      const char c = line[i];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) {
        return Corrupt(ckpt.path(), ": metadata ", kBlockChecksumsKey, ": '", line.substr(0, 16),
                       "' is not a hex checksum");
      }
      v = v << 4 | static_cast<uint64_t>(d);
    }
    sums[line.substr(sp + 1)] = v;
  }
  for (size_t b = 0; b < prefixes.size(); ++b) {
    if (first[b] == none) {
      return NotFound(ckpt.path(), ": no tensor starts with '", prefixes[b],
                      "', a block the networks stream");
    }
    t->ranges_.push_back({file[b], first[b], end[b] - first[b]});
    auto it = sums.find(prefixes[b]);
    t->checksum_.push_back(it == sums.end() ? std::make_pair(false, uint64_t{0})
                                            : std::make_pair(true, it->second));
    std::string n = prefixes[b];
    if (!n.empty() && n.back() == '.') n.pop_back();
    t->names_.push_back(std::move(n));
  }
  return t;
}

WeightBlock PrefixBlockTable::Locate(uint32_t id) const {
  WeightBlock b;
  b.n_parts = 1;
  b.parts[0] = ranges_[id];
  b.has_checksum = checksum_[id].first;
  b.xxh3 = checksum_[id].second;
  return b;
}

std::string PrefixBlockTable::Describe(uint32_t id) const { return names_[id]; }

Result<StreamPlan> PlanStream(const PrefixBlockTable& table, std::span<const int> repeated,
                              uint64_t budget) {
  const uint32_t n = table.n_blocks();
  std::vector<uint64_t> size(n);
  StreamPlan plan;
  for (uint32_t id = 0; id < n; ++id) {
    ASSIGN_OR_RETURN(size[id], OrderedStream::BlockBytes(table, id));
    plan.total_bytes += size[id];
  }
  // Candidates to keep: the repeated pass's blocks, largest first.
  std::vector<uint32_t> cand;
  std::vector<uint8_t> is_repeated(n, 0);
  for (int b : repeated) {
    CHECK(b >= 0 && static_cast<uint32_t>(b) < n) << b;
    if (!is_repeated[b]) cand.push_back(static_cast<uint32_t>(b));
    is_repeated[b] = 1;
  }
  std::stable_sort(cand.begin(), cand.end(),
                   [&](uint32_t a, uint32_t b) { return size[a] > size[b]; });
  uint64_t other_max = 0;  // the largest block that always streams
  for (uint32_t id = 0; id < n; ++id) {
    if (!is_repeated[id]) other_max = std::max(other_max, size[id]);
  }
  // Keeping the k largest: need(k) = their bytes + the smallest ring for the largest block left.
  uint64_t kept = 0, best_k = 0, min_need = std::numeric_limits<uint64_t>::max();
  bool fits = false;
  for (size_t k = 0; k <= cand.size(); ++k) {
    const uint64_t left_max = std::max(other_max, k < cand.size() ? size[cand[k]] : 0);
    const uint64_t need = kept + OrderedStream::kRingBlocks * left_max;
    min_need = std::min(min_need, need);
    if (need <= budget) {
      best_k = k;
      fits = true;
    }
    if (k < cand.size()) kept += size[cand[k]];
  }
  plan.min_budget = std::min(min_need, plan.total_bytes);
  if (plan.total_bytes <= budget) {  // everything stays once read
    for (uint32_t id = 0; id < n; ++id) plan.resident.push_back(id);
    plan.resident_bytes = plan.total_bytes;
    return plan;
  }
  if (!fits) {
    return ResourceExhausted("a weight budget of ", FormatBytes(budget),
                             " is below the minimum of ", FormatBytes(min_need), " for ",
                             table.file_paths()[0],
                             " (a ring of three times its largest streamed block)");
  }
  for (size_t k = 0; k < best_k; ++k) {
    plan.resident.push_back(cand[k]);
    plan.resident_bytes += size[cand[k]];
  }
  plan.ring_bytes = budget - plan.resident_bytes;
  std::vector<uint8_t> kept_flag(n, 0);
  for (uint32_t id : plan.resident) kept_flag[id] = 1;
  for (int b : repeated) {
    if (!kept_flag[b]) plan.streamed_bytes_per_pass += size[b];
  }
  return plan;
}

Result<std::unique_ptr<DiffusionStream>> DiffusionStream::Create(
    std::unique_ptr<PrefixBlockTable> table, const StreamPlan& plan, uint8_t* placed,
    const IoOptions& io) {
  std::unique_ptr<DiffusionStream> s(new DiffusionStream());
  s->table_ = std::move(table);
  s->plan_ = plan;
  ASSIGN_OR_RETURN(s->io_, CreateIoBackend(io, s->table_->file_paths()));
  ASSIGN_OR_RETURN(s->stream_,
                   OrderedStream::Create(*s->table_, s->io_.get(),
                                         {.ring_bytes = plan.ring_bytes,
                                          .resident = plan.resident,
                                          .placed_base = placed,
                                          .placed_file_bases = s->table_->file_paths().size() > 1
                                                                   ? s->table_->file_bases()
                                                                   : std::vector<uint64_t>{}}));
  s->held_.resize(s->table_->n_blocks());
  return s;
}

void DiffusionStream::Announce(std::span<const int> blocks) {
  std::vector<uint32_t> ids(blocks.begin(), blocks.end());
  stream_->Enqueue(ids);
}

Status DiffusionStream::Use(int block) {
  CHECK(block >= 0 && static_cast<uint32_t>(block) < table_->n_blocks()) << block;
  CHECK(!held_[block].valid) << "block " << table_->Describe(block) << " used twice at once";
  ASSIGN_OR_RETURN(held_[block], stream_->Next(static_cast<uint32_t>(block)));
  return Status::Ok();
}

void DiffusionStream::Done(int block) {
  CHECK(block >= 0 && static_cast<uint32_t>(block) < table_->n_blocks()) << block;
  stream_->Release(held_[block]);
}

void DiffusionStream::Abandon() { stream_->Abandon(); }

}  // namespace sluice::diffusion
