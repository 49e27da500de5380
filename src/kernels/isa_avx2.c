/* Our kernels built for AVX2 + FMA: 8 lanes (kernels/simd.h). Compiled
 * with -mavx2 -mfma (CMakeLists.txt); its functions run only where
 * own_isa_cpu() says AVX2. */
#define SIMD_W 8
#include "kernels/own_build.h"

OWN_BUILD(own_impl_avx2, OWN_ISA_AVX2, "avx2");
