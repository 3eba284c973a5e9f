#include "core/kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <string>

#include "core/base/log.h"
#include "core/kernels/kernel_table.h"

namespace sluice {
namespace {

constexpr int kUnset = -1;
std::atomic<int> g_active{kUnset};

bool CpuHasAvx2() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  // libgcc's checks include the OS (XCR0) having enabled the YMM/ZMM state.
#if defined(__clang__) && __clang_major__ < 16
  // clang before 16 has no "f16c" feature string (the fuzz build uses clang 14); every CPU with
  // AVX2 and FMA (Haswell, Zen and later) has F16C.
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("f16c");
#endif
#else
  return false;
#endif
}

bool CpuHasAvx512() {
#if defined(__x86_64__)
  return CpuHasAvx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

KernelTable BuildTable(Isa isa) {
  KernelTable table;
  (void)isa;  // unused on builds without the x86 paths
  FillScalarKernels(&table);
  FillScalarKQuantKernels(&table);
#if defined(__x86_64__)
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512) {
    FillAvx2Kernels(&table);
    FillAvx2KQuantKernels(&table);
    FillAvx2FloatKernels(&table);
    FillAvx2GridKernels(&table);
  }
  if (isa == Isa::kAvx512) {
    FillAvx512Kernels(&table);
    FillAvx512KQuantKernels(&table);
    FillAvx512FloatKernels(&table);
    FillAvx512GridKernels(&table);
    FillAvx512Block32Kernels(&table);
  }
#endif
  return table;
}

Isa InitialIsa() {
  const char* env = std::getenv("SLUICE_ISA");
  if (env == nullptr || *env == '\0') return BestIsa();
  const std::optional<Isa> requested = ParseIsa(env);
  if (!requested) {
    LOG(WARNING) << "SLUICE_ISA=" << env << " is not one of scalar|avx2|avx512; using "
                 << IsaName(BestIsa());
    return BestIsa();
  }
  if (!IsaSupported(*requested)) {
    LOG(WARNING) << "SLUICE_ISA=" << env << " is not supported by this CPU; using "
                 << IsaName(BestIsa());
    return BestIsa();
  }
  return *requested;
}

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "?";
}

std::optional<Isa> ParseIsa(std::string_view name) {
  for (int i = 0; i < kNumIsas; ++i) {
    if (name == IsaName(static_cast<Isa>(i))) return static_cast<Isa>(i);
  }
  return std::nullopt;
}

bool IsaCompiled(Isa isa) {
#if defined(__x86_64__)
  (void)isa;
  return true;
#else
  return isa == Isa::kScalar;
#endif
}

bool IsaSupported(Isa isa) {
  static const bool avx2 = CpuHasAvx2();
  static const bool avx512 = CpuHasAvx512();
  switch (isa) {
    case Isa::kScalar:
      return true;
    case Isa::kAvx2:
      return IsaCompiled(isa) && avx2;
    case Isa::kAvx512:
      return IsaCompiled(isa) && avx512;
  }
  return false;
}

Isa BestIsa() {
  if (IsaSupported(Isa::kAvx512)) return Isa::kAvx512;
  if (IsaSupported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa ActiveIsa() {
  int active = g_active.load(std::memory_order_acquire);
  if (active == kUnset) {
    int expected = kUnset;
    g_active.compare_exchange_strong(expected, static_cast<int>(InitialIsa()),
                                     std::memory_order_acq_rel);
    active = g_active.load(std::memory_order_acquire);
  }
  return static_cast<Isa>(active);
}

bool ForceIsa(Isa isa) {
  if (!IsaSupported(isa)) return false;
  g_active.store(static_cast<int>(isa), std::memory_order_release);
  return true;
}

const KernelTable& ActiveKernels() {
  static const KernelTable tables[kNumIsas] = {BuildTable(Isa::kScalar), BuildTable(Isa::kAvx2),
                                               BuildTable(Isa::kAvx512)};
  return tables[static_cast<int>(ActiveIsa())];
}

}  // namespace sluice
