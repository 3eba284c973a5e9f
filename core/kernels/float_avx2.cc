// AVX2 build of the float-weight kernels (float_kernels_impl.h).
#if defined(__x86_64__)

#include "core/kernels/float_kernels_impl.h"

namespace sluice {

void FillAvx2FloatKernels(KernelTable* table) { FillTable(table); }

}  // namespace sluice

#endif  // __x86_64__
