// Routing traces: which experts every token used at every MoE layer, with their mixing weights,
// in a small binary file (byte layout in docs/routing-trace.md). Users with real models record one
// (`--record-trace FILE`) and share it; anyone can replay it (`--routing trace:FILE`) to drive a
// model of the same shape, e.g. a synthetic archive, with real routing locality.
//
// Layout in one paragraph: a header (magic "SLUITRCE", version, n_layer, n_moe_layer, n_expert, k,
// n_token, the ascending list of MoE layer indices and a free-text source string), then n_token
// fixed-size records; a record holds, for each MoE layer in order, k u16 expert ids (0xFFFF marks
// an unused slot, only after the used ones) and k f32 weights.
//
// Non-goals: compression (a 60-layer K=10 trace is ~3.6 KB per token; 10k tokens are 36 MB), the
// router's full probabilities (only the chosen experts matter for I/O), streaming reads (traces
// are read whole; the reader refuses files above kMaxTraceBytes).
//
// Thread-safety: RoutingTrace is immutable after Read() and safe to share; RoutingTraceWriter is
// single-threaded.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/base/status.h"
#include "moe/routing_hook.h"

namespace sluice {

inline constexpr char kTraceMagic[8] = {'S', 'L', 'U', 'I', 'T', 'R', 'C', 'E'};
inline constexpr uint32_t kTraceVersion = 1;
inline constexpr uint32_t kTraceFixedHeaderBytes = 48;
inline constexpr uint16_t kTraceUnusedSlot = 0xFFFF;
// Limits that keep a corrupt header from asking for absurd allocations.
inline constexpr uint32_t kMaxTraceLayers = 4096;
inline constexpr uint32_t kMaxTraceExperts = 65535;  // ids are u16, 0xFFFF reserved
inline constexpr uint32_t kMaxTraceSourceBytes = 4096;
inline constexpr uint64_t kMaxTraceBytes = 4ull << 30;

// The routing shape of a model: what a trace must agree with to drive it.
struct RoutingShape {
  int n_layer = 0;              // all layers of the model
  std::vector<int> moe_layers;  // layers with routed experts, ascending, each in [0, n_layer)
  int n_expert = 0;             // routed experts per MoE layer
  int k = 0;                    // experts used per token (1..kMaxExpertsPerToken)

  int n_moe_layer() const { return static_cast<int>(moe_layers.size()); }
  // Index of `layer` in moe_layers, or -1 when it has no routed experts.
  int MoeIndex(int layer) const;
  // "60 layers (60 MoE), 512 experts, k=10"
  std::string ToString() const;
  // InvalidArgument naming the field when out of the limits above.
  Status Validate() const;
};

struct RoutingTraceHeader {
  RoutingShape shape;
  int64_t n_token = 0;
  std::string source;  // free text: model name, prompt set, sluice version...

  // Bytes of one token's record: n_moe_layer * k * (2 + 4).
  uint64_t record_bytes() const;
  // Bytes of the header including the layer table and the source string.
  uint64_t header_bytes() const;
};

// A whole trace in memory, validated on Read().
class RoutingTrace {
 public:
  // Reads and validates `path`. Every error names the file, the byte offset and expected vs
  // found: bad magic, unsupported version, header fields out of range, a size that is not
  // header + n_token whole records (truncated or trailing bytes), an expert id out of range or
  // repeated within a route, an unused slot before a used one, a non-finite weight.
  static Result<RoutingTrace> Read(const std::string& path);
  // A trace built in memory (tests, the generator). `routes` is (n_token, n_moe_layer), row-major.
  static RoutingTrace FromRoutes(RoutingTraceHeader header, std::vector<Route> routes);

  const RoutingTraceHeader& header() const { return header_; }
  const RoutingShape& shape() const { return header_.shape; }
  int64_t n_token() const { return header_.n_token; }
  // The route of `token` at MoE layer index `moe_index` (index into shape().moe_layers).
  const Route& route(int64_t token, int moe_index) const;

 private:
  RoutingTraceHeader header_;
  std::vector<Route> routes_;  // (n_token, n_moe_layer)
};

// Writes a trace token by token. The file appears under its final name only after Finish()
// (written to PATH.tmp, then renamed), so an interrupted run never leaves a truncated trace.
class RoutingTraceWriter {
 public:
  static Result<std::unique_ptr<RoutingTraceWriter>> Create(const std::string& path,
                                                            const RoutingTraceHeader& header);
  ~RoutingTraceWriter();  // removes PATH.tmp when Finish() was not reached
  RoutingTraceWriter(const RoutingTraceWriter&) = delete;
  RoutingTraceWriter& operator=(const RoutingTraceWriter&) = delete;

  // Appends one token: routes[m] is the route at MoE layer index m (n_moe_layer entries), with
  // route.k <= shape.k. Programmer errors (CHECK): wrong count, ids out of range.
  Status AppendToken(const Route* routes, int n_routes);
  // Patches n_token into the header, flushes, fsyncs, renames PATH.tmp to PATH.
  Status Finish();
  int64_t tokens_written() const { return n_token_; }
  const std::string& path() const { return path_; }

 private:
  RoutingTraceWriter() = default;
  std::string path_, tmp_path_;
  RoutingTraceHeader header_;
  std::FILE* file_ = nullptr;
  int64_t n_token_ = 0;
  std::vector<uint8_t> record_;  // one encoded record, reused
};

// Writes a whole in-memory trace (convenience over RoutingTraceWriter).
Status WriteRoutingTrace(const std::string& path, const RoutingTrace& trace);

}  // namespace sluice
