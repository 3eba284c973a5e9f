// Run-time choice of the kernel instruction set. One binary runs on any x86-64: the best path the
// CPU supports is chosen from CPUID at first use, unless SLUICE_ISA=scalar|avx2|avx512 says
// otherwise (for comparisons and tests), or ForceIsa() is called.
//
// Paths: kScalar (portable C++, the reference every other path is tested against), kAvx2 (AVX2 +
// FMA + F16C), kAvx512 (AVX-512 F/BW/VL/DQ + VNNI: the AVX2 kernel sources recompiled so the
// integer dots fuse into VNNI instructions; bit-identical results to kAvx2). Files named
// *_avx2.cc / *_avx512.cc get those flags from core/CMakeLists.txt; nothing else may use those
// instructions.
//
// Adding ARM NEON: add kNeon here, compile *_neon.cc files with -march=armv8.2-a+dotprod (a
// CMake rule like the x86 ones), give them FillNeon*Kernels(KernelTable*) (kernel_table.h) built
// on vdotq_s32 (the analogue of VNNI's vpdpbusd), detect dotprod with getauxval(AT_HWCAP) &
// HWCAP_ASIMDDP, and fill scalar first then NEON in BuildTable. Activation formats and block
// layouts are ISA-independent, so nothing outside core/kernels changes.
//
// Thread-safety: ActiveIsa() is safe from any thread; ForceIsa() is for start-up and tests and
// must not race with running kernels.
#pragma once

#include <optional>
#include <string_view>

namespace sluice {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };
inline constexpr int kNumIsas = 3;

const char* IsaName(Isa isa);
std::optional<Isa> ParseIsa(std::string_view name);  // "scalar", "avx2", "avx512"

// True when this binary contains the path (x86-64 builds contain all three).
bool IsaCompiled(Isa isa);
// True when the path is compiled and the CPU (and OS) can run it.
bool IsaSupported(Isa isa);
// The best supported path.
Isa BestIsa();

// The path kernels use now: SLUICE_ISA if set and supported (an unsupported request logs a
// warning and falls back to BestIsa()), else BestIsa().
Isa ActiveIsa();
// Switches the path. Returns false and changes nothing when the path is not supported.
bool ForceIsa(Isa isa);

}  // namespace sluice
