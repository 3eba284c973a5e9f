// AVX2 build of the 32-element-format kernels and activation quantizers (q8_kernels_impl.h).
#if defined(__x86_64__)

#include "core/kernels/q8_kernels_impl.h"

namespace sluice {

void FillAvx2Kernels(KernelTable* table) { FillTable(table); }

}  // namespace sluice

#endif  // __x86_64__
