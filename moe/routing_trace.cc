#include "moe/routing_trace.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <utility>

#include "io/output_file.h"

namespace sluice {
namespace {

void PutU16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint16_t GetU16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t GetU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}
uint64_t GetU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
void PutF32(uint8_t* p, float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  PutU32(p, v);
}
float GetF32(const uint8_t* p) {
  uint32_t v = GetU32(p);
  float f;
  std::memcpy(&f, &v, 4);
  return f;
}

// Header field offsets (docs/routing-trace.md).
constexpr uint64_t kOffVersion = 8, kOffHeaderBytes = 12, kOffNLayer = 16, kOffNMoe = 20,
                   kOffNExpert = 24, kOffK = 28, kOffNToken = 32, kOffSourceBytes = 40,
                   kOffReserved = 44;

std::vector<uint8_t> EncodeHeader(const RoutingTraceHeader& h) {
  std::vector<uint8_t> out(h.header_bytes(), 0);
  std::memcpy(out.data(), kTraceMagic, 8);
  PutU32(&out[kOffVersion], kTraceVersion);
  PutU32(&out[kOffHeaderBytes], static_cast<uint32_t>(h.header_bytes()));
  PutU32(&out[kOffNLayer], static_cast<uint32_t>(h.shape.n_layer));
  PutU32(&out[kOffNMoe], static_cast<uint32_t>(h.shape.n_moe_layer()));
  PutU32(&out[kOffNExpert], static_cast<uint32_t>(h.shape.n_expert));
  PutU32(&out[kOffK], static_cast<uint32_t>(h.shape.k));
  PutU64(&out[kOffNToken], static_cast<uint64_t>(h.n_token));
  PutU32(&out[kOffSourceBytes], static_cast<uint32_t>(h.source.size()));
  uint8_t* p = out.data() + kTraceFixedHeaderBytes;
  for (int layer : h.shape.moe_layers) {
    PutU32(p, static_cast<uint32_t>(layer));
    p += 4;
  }
  std::memcpy(p, h.source.data(), h.source.size());
  return out;
}

void EncodeRecord(const RoutingShape& shape, const Route* routes, uint8_t* out) {
  for (int m = 0; m < shape.n_moe_layer(); ++m) {
    const Route& r = routes[m];
    CHECK(r.k >= 1 && r.k <= shape.k) << "route k " << r.k << " at MoE layer index " << m;
    for (int j = 0; j < shape.k; ++j) {
      bool used = j < r.k;
      if (used) CHECK(r.ids[j] >= 0 && r.ids[j] < shape.n_expert) << "expert id " << r.ids[j];
      PutU16(out + 2 * j, used ? static_cast<uint16_t>(r.ids[j]) : kTraceUnusedSlot);
      PutF32(out + 2 * shape.k + 4 * j, used ? r.weights[j] : 0.0f);
    }
    out += 6 * shape.k;
  }
}

// Decodes and validates one (token, MoE layer) route at file offset `offset`.
Status DecodeRoute(const std::string& path, const RoutingShape& shape, const uint8_t* p,
                   uint64_t offset, int64_t token, int moe_index, Route* route) {
  route->k = 0;
  for (int j = 0; j < shape.k; ++j) {
    uint64_t id_offset = offset + 2 * j;
    uint16_t id = GetU16(p + 2 * j);
    float w = GetF32(p + 2 * shape.k + 4 * j);
    if (id == kTraceUnusedSlot) continue;
    if (route->k != j) {
      return Corrupt(path, ": token ", token, ", MoE layer ", shape.moe_layers[moe_index],
                     ": slot ", j, " at offset ", id_offset,
                     " is used after an unused slot (unused slots must come last)");
    }
    if (id >= shape.n_expert) {
      return Corrupt(path, ": token ", token, ", MoE layer ", shape.moe_layers[moe_index],
                     ": expert id ", id, " at offset ", id_offset, " out of range (n_expert ",
                     shape.n_expert, ")");
    }
    for (int i = 0; i < j; ++i) {
      if (route->ids[i] == id) {
        return Corrupt(path, ": token ", token, ", MoE layer ", shape.moe_layers[moe_index],
                       ": expert id ", id, " at offset ", id_offset, " repeats slot ", i);
      }
    }
    if (!std::isfinite(w)) {
      return Corrupt(path, ": token ", token, ", MoE layer ", shape.moe_layers[moe_index],
                     ": weight at offset ", offset + 2 * shape.k + 4 * j, " is not finite");
    }
    route->ids[j] = id;
    route->weights[j] = w;
    route->k = j + 1;
  }
  if (route->k == 0) {
    return Corrupt(path, ": token ", token, ", MoE layer ", shape.moe_layers[moe_index],
                   ": route at offset ", offset, " has no expert");
  }
  return Status::Ok();
}

Status ReadWholeFile(const std::string& path, std::vector<uint8_t>* out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return IoError(path, ": cannot open routing trace: ", ErrnoString(errno));
  Status status = Status::Ok();
  if (std::fseek(f, 0, SEEK_END) != 0) {
    status = IoError(path, ": seek: ", ErrnoString(errno));
  } else {
    long size = std::ftell(f);
    if (size < 0) {
      status = IoError(path, ": ftell: ", ErrnoString(errno));
    } else if (static_cast<uint64_t>(size) > kMaxTraceBytes) {
      status = ResourceExhausted(path, ": routing trace is ", size, " bytes, above the limit of ",
                                 kMaxTraceBytes);
    } else {
      out->resize(static_cast<size_t>(size));
      std::rewind(f);
      if (size > 0 && std::fread(out->data(), 1, out->size(), f) != out->size()) {
        status = IoError(path, ": short read of ", size, " bytes: ", ErrnoString(errno));
      }
    }
  }
  std::fclose(f);
  return status;
}

}  // namespace

int RoutingShape::MoeIndex(int layer) const {
  for (int m = 0; m < n_moe_layer(); ++m) {
    if (moe_layers[m] == layer) return m;
  }
  return -1;
}

std::string RoutingShape::ToString() const {
  return StrCat(n_layer, " layers (", n_moe_layer(), " MoE), ", n_expert, " experts, k=", k);
}

Status RoutingShape::Validate() const {
  if (n_layer < 1 || static_cast<uint32_t>(n_layer) > kMaxTraceLayers) {
    return InvalidArgument("routing shape: n_layer ", n_layer, " outside [1, ", kMaxTraceLayers,
                           "]");
  }
  if (moe_layers.empty()) return InvalidArgument("routing shape: no MoE layer");
  for (size_t i = 0; i < moe_layers.size(); ++i) {
    if (moe_layers[i] < 0 || moe_layers[i] >= n_layer ||
        (i > 0 && moe_layers[i] <= moe_layers[i - 1])) {
      return InvalidArgument("routing shape: MoE layer list must be ascending in [0, ", n_layer,
                             "); entry ", i, " is ", moe_layers[i]);
    }
  }
  if (n_expert < 1 || static_cast<uint32_t>(n_expert) > kMaxTraceExperts) {
    return InvalidArgument("routing shape: n_expert ", n_expert, " outside [1, ", kMaxTraceExperts,
                           "]");
  }
  if (k < 1 || k > kMaxExpertsPerToken || k > n_expert) {
    return InvalidArgument("routing shape: k ", k, " outside [1, min(", kMaxExpertsPerToken,
                           ", n_expert ", n_expert, ")]");
  }
  return Status::Ok();
}

uint64_t RoutingTraceHeader::record_bytes() const {
  return static_cast<uint64_t>(shape.n_moe_layer()) * shape.k * 6;
}

uint64_t RoutingTraceHeader::header_bytes() const {
  return kTraceFixedHeaderBytes + 4ull * shape.n_moe_layer() + source.size();
}

Result<RoutingTrace> RoutingTrace::Read(const std::string& path) {
  std::vector<uint8_t> bytes;
  RETURN_IF_ERROR(ReadWholeFile(path, &bytes));
  const uint64_t size = bytes.size();
  const uint8_t* d = bytes.data();
  if (size < kTraceFixedHeaderBytes) {
    return Corrupt(path, ": truncated routing trace: ", size, " bytes, the header alone needs ",
                   kTraceFixedHeaderBytes, " (offset 0)");
  }
  if (std::memcmp(d, kTraceMagic, 8) != 0) {
    return Corrupt(path,
                   ": not a sluice routing trace: bad magic at offset 0 (expected "
                   "\"SLUITRCE\")");
  }
  uint32_t version = GetU32(d + kOffVersion);
  if (version != kTraceVersion) {
    return Unsupported(path, ": routing trace version ", version, " at offset ", kOffVersion,
                       " (this sluice reads version ", kTraceVersion, ")");
  }
  RoutingTraceHeader h;
  uint32_t n_layer = GetU32(d + kOffNLayer), n_moe = GetU32(d + kOffNMoe);
  uint32_t n_expert = GetU32(d + kOffNExpert), k = GetU32(d + kOffK);
  uint32_t source_bytes = GetU32(d + kOffSourceBytes);
  if (n_layer == 0 || n_layer > kMaxTraceLayers) {
    return Corrupt(path, ": n_layer ", n_layer, " at offset ", kOffNLayer, " outside [1, ",
                   kMaxTraceLayers, "]");
  }
  if (n_moe == 0 || n_moe > n_layer) {
    return Corrupt(path, ": n_moe_layer ", n_moe, " at offset ", kOffNMoe, " outside [1, n_layer ",
                   n_layer, "]");
  }
  if (n_expert == 0 || n_expert > kMaxTraceExperts) {
    return Corrupt(path, ": n_expert ", n_expert, " at offset ", kOffNExpert, " outside [1, ",
                   kMaxTraceExperts, "]");
  }
  if (k == 0 || k > static_cast<uint32_t>(kMaxExpertsPerToken) || k > n_expert) {
    return Corrupt(path, ": k ", k, " at offset ", kOffK, " outside [1, min(", kMaxExpertsPerToken,
                   ", n_expert)]");
  }
  if (source_bytes > kMaxTraceSourceBytes) {
    return Corrupt(path, ": source string length ", source_bytes, " at offset ", kOffSourceBytes,
                   " above the limit ", kMaxTraceSourceBytes);
  }
  if (GetU32(d + kOffReserved) != 0) {
    return Corrupt(path, ": reserved field at offset ", kOffReserved, " is not zero");
  }
  uint64_t header_bytes = kTraceFixedHeaderBytes + 4ull * n_moe + source_bytes;
  if (GetU32(d + kOffHeaderBytes) != header_bytes) {
    return Corrupt(path, ": header_bytes at offset ", kOffHeaderBytes, " is ",
                   GetU32(d + kOffHeaderBytes), ", the counts imply ", header_bytes);
  }
  if (size < header_bytes) {
    return Corrupt(path, ": truncated routing trace: ", size, " bytes, the header needs ",
                   header_bytes);
  }
  h.shape.n_layer = static_cast<int>(n_layer);
  h.shape.n_expert = static_cast<int>(n_expert);
  h.shape.k = static_cast<int>(k);
  for (uint32_t m = 0; m < n_moe; ++m) {
    uint64_t off = kTraceFixedHeaderBytes + 4ull * m;
    uint32_t layer = GetU32(d + off);
    if (layer >= n_layer || (m > 0 && static_cast<int>(layer) <= h.shape.moe_layers.back())) {
      return Corrupt(path, ": MoE layer table entry ", m, " at offset ", off, " is ", layer,
                     ": entries must be ascending and below n_layer ", n_layer);
    }
    h.shape.moe_layers.push_back(static_cast<int>(layer));
  }
  h.source.assign(reinterpret_cast<const char*>(d) + kTraceFixedHeaderBytes + 4ull * n_moe,
                  source_bytes);
  uint64_t n_token = GetU64(d + kOffNToken);
  const uint64_t record_bytes = h.record_bytes();
  const uint64_t body = size - header_bytes;
  if (n_token > body / record_bytes || body != n_token * record_bytes) {
    uint64_t expected = header_bytes + n_token * record_bytes;  // may wrap; only printed
    if (n_token > body / record_bytes) {
      uint64_t whole = body / record_bytes;
      return Corrupt(path, ": truncated routing trace: the header (offset ", kOffNToken, ") says ",
                     n_token, " tokens of ", record_bytes, " bytes, the file holds ", whole,
                     " whole records and ends at offset ", size, " inside token ", whole,
                     " (which starts at offset ", header_bytes + whole * record_bytes, ")");
    }
    return Corrupt(path, ": routing trace has ", size - expected, " trailing bytes after the ",
                   n_token, " records the header announces (records end at offset ", expected, ")");
  }
  h.n_token = static_cast<int64_t>(n_token);
  std::vector<Route> routes(n_token * n_moe);
  for (uint64_t t = 0; t < n_token; ++t) {
    for (uint32_t m = 0; m < n_moe; ++m) {
      uint64_t off = header_bytes + t * record_bytes + m * 6ull * k;
      RETURN_IF_ERROR(DecodeRoute(path, h.shape, d + off, off, static_cast<int64_t>(t),
                                  static_cast<int>(m), &routes[t * n_moe + m]));
    }
  }
  return FromRoutes(std::move(h), std::move(routes));
}

RoutingTrace RoutingTrace::FromRoutes(RoutingTraceHeader header, std::vector<Route> routes) {
  CHECK_EQ(routes.size(), static_cast<size_t>(header.n_token) * header.shape.n_moe_layer());
  RoutingTrace trace;
  trace.header_ = std::move(header);
  trace.routes_ = std::move(routes);
  return trace;
}

const Route& RoutingTrace::route(int64_t token, int moe_index) const {
  DCHECK(token >= 0 && token < header_.n_token);
  DCHECK(moe_index >= 0 && moe_index < header_.shape.n_moe_layer());
  return routes_[static_cast<size_t>(token) * header_.shape.n_moe_layer() + moe_index];
}

Result<std::unique_ptr<RoutingTraceWriter>> RoutingTraceWriter::Create(
    const std::string& path, const RoutingTraceHeader& header) {
  RETURN_IF_ERROR(CheckOutputPath(path));  // before the run it records, not after
  RETURN_IF_ERROR(header.shape.Validate());
  if (header.source.size() > kMaxTraceSourceBytes) {
    return InvalidArgument("routing trace source string is ", header.source.size(),
                           " bytes, above the limit ", kMaxTraceSourceBytes);
  }
  std::unique_ptr<RoutingTraceWriter> w(new RoutingTraceWriter());
  w->path_ = path;
  w->tmp_path_ = path + ".tmp";
  w->header_ = header;
  w->header_.n_token = 0;
  w->record_.resize(w->header_.record_bytes());
  w->file_ = std::fopen(w->tmp_path_.c_str(), "wb");
  if (w->file_ == nullptr) {
    return IoError(w->tmp_path_, ": cannot create routing trace: ", ErrnoString(errno));
  }
  std::vector<uint8_t> head = EncodeHeader(w->header_);
  if (std::fwrite(head.data(), 1, head.size(), w->file_) != head.size()) {
    return IoError(w->tmp_path_, ": writing the header: ", ErrnoString(errno));
  }
  return w;
}

RoutingTraceWriter::~RoutingTraceWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

Status RoutingTraceWriter::AppendToken(const Route* routes, int n_routes) {
  CHECK(file_ != nullptr) << "AppendToken after Finish";
  CHECK_EQ(n_routes, header_.shape.n_moe_layer());
  EncodeRecord(header_.shape, routes, record_.data());
  if (std::fwrite(record_.data(), 1, record_.size(), file_) != record_.size()) {
    return IoError(tmp_path_, ": writing token ", n_token_, " at offset ",
                   header_.header_bytes() + n_token_ * record_.size(), ": ", ErrnoString(errno));
  }
  ++n_token_;
  return Status::Ok();
}

Status RoutingTraceWriter::Finish() {
  CHECK(file_ != nullptr) << "Finish called twice";
  uint8_t n[8];
  PutU64(n, static_cast<uint64_t>(n_token_));
  Status status = Status::Ok();
  if (std::fseek(file_, kOffNToken, SEEK_SET) != 0 || std::fwrite(n, 1, 8, file_) != 8 ||
      std::fflush(file_) != 0 || fsync(fileno(file_)) != 0) {
    status = IoError(tmp_path_, ": finishing the routing trace: ", ErrnoString(errno));
  }
  if (std::fclose(file_) != 0 && status.ok()) {
    status = IoError(tmp_path_, ": close: ", ErrnoString(errno));
  }
  file_ = nullptr;
  if (status.ok() && std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    status = IoError("renaming ", tmp_path_, " to ", path_, ": ", ErrnoString(errno));
  }
  if (!status.ok()) std::remove(tmp_path_.c_str());
  return status;
}

Status WriteRoutingTrace(const std::string& path, const RoutingTrace& trace) {
  ASSIGN_OR_RETURN(auto writer, RoutingTraceWriter::Create(path, trace.header()));
  const int n_moe = trace.shape().n_moe_layer();
  for (int64_t t = 0; t < trace.n_token(); ++t) {
    RETURN_IF_ERROR(writer->AppendToken(&trace.route(t, 0), n_moe));
  }
  return writer->Finish();
}

}  // namespace sluice
