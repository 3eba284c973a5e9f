// The routing trace reader on arbitrary bytes; a trace it accepts must hand out valid routes.
#include <cstdint>
#include <cstdlib>

#include "fuzz/fuzz_file.h"
#include "moe/routing_trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::fuzz::MemFile file(data, size);
  sluice::Result<sluice::RoutingTrace> trace = sluice::RoutingTrace::Read(file.path());
  if (!trace.ok()) return 0;
  const sluice::RoutingShape& shape = trace->shape();
  for (int64_t t = 0; t < trace->n_token(); ++t) {
    for (int m = 0; m < shape.n_moe_layer(); ++m) {
      const sluice::Route& r = trace->route(t, m);
      for (int j = 0; j < r.k; ++j) {
        if (r.ids[j] < 0 || r.ids[j] >= shape.n_expert) std::abort();  // Read() promised
      }
    }
  }
  return 0;
}
