// AVX-512 (VL/BW/VNNI) build of the 32-element-format kernels (q8_kernels_impl.h).
#if defined(__x86_64__)

#include "core/kernels/q8_kernels_impl.h"

namespace sluice {

void FillAvx512Kernels(KernelTable* table) { FillTable(table); }

}  // namespace sluice

#endif  // __x86_64__
