// The results of one `sluice bench` invocation, as text for people, JSON for tools (the stable
// schema in docs/bench.md) and an SVG plot of a --sweep-ram.
//
// Non-goals: running anything (bench/bench_model.h). Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_model.h"

namespace sluice {

// Version of the JSON schema; bumped only when a key changes meaning or disappears.
inline constexpr const char* kBenchSchema = "sluice.bench.v1";

struct BenchReport {
  std::string model_path;
  std::string model_name;  // general.name
  bool synthetic = false;  // sluice.synthetic: the weights are random
  std::string preset;      // sluice.synth.preset, when synthetic
  std::string shape;       // "7 of 60 layers, 512 experts x 6.75 MiB q4_K, k=10"
  uint64_t model_bytes = 0, expert_bytes_total = 0, dense_bytes_total = 0;

  DeviceProbe device_before, device_after;
  std::vector<DeviceProbe> device_rounds;  // between the main run's decode rounds (R + 1)
  DeviceProbe device_qd_k;  // diagnostic: queue depth = experts per token (one layer's reads)
  BenchRun run;             // the streaming engine at --ram

  std::optional<BenchRun> mmap;  // --compare mmap
  uint64_t mmap_limit_bytes = 0;
  uint64_t balloon_bytes = 0;
  uint64_t mmap_reserve_bytes = 0;  // left unlocked for the rest of the machine

  std::vector<BenchRun> sweep;  // --sweep-ram, ascending budgets

  // Mean of every device measurement: before, between rounds, after.
  double device_GBps() const;
  // Per decode round of the main run: read GB/s / the mean of the two bracketing measurements.
  std::vector<double> RoundRatios() const;
  // device GB/s / bytes read per token: the tokens/s the disk allows (0 when nothing was read).
  double BoundTokS(const BenchRun& r) const;
  // decode_tok_s / (device GB/s / the bytes per token the decode needed: read minus read in
  // vain by a wrong next-layer guess). bound_ratio flatters speculative reads (more bytes, a
  // lower bound); this does not.
  double NeededBoundRatio(const BenchRun& r) const;
};

std::string BenchReportJson(const BenchReport& report);  // one JSON object, ends with '\n'
std::string BenchReportText(const BenchReport& report);  // the human summary
// Tokens/s and hit rate against the RAM budget, one point per sweep run. Empty sweep: "".
std::string SweepSvg(const BenchReport& report);

}  // namespace sluice
