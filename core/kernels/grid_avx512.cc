// AVX512 build of the grid-format kernels (grid_kernels_impl.h).
#if defined(__x86_64__)

#include "core/kernels/grid_kernels_impl.h"

namespace sluice {

void FillAvx512GridKernels(KernelTable* table) { FillGridTable(table); }

}  // namespace sluice

#endif  // __x86_64__
