// AVX-512 (VL/BW/VNNI) build of the K-quant kernels (kquant_kernels_impl.h).
#if defined(__x86_64__)

#include "core/kernels/kquant_kernels_impl.h"

namespace sluice {

void FillAvx512KQuantKernels(KernelTable* table) { FillTable(table); }

}  // namespace sluice

#endif  // __x86_64__
