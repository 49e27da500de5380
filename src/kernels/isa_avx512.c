/* Our kernels built for AVX-512F/VL: 16 lanes (kernels/simd.h). Compiled
 * with -mavx512f -mavx512vl -mfma (CMakeLists.txt); its functions run only
 * where own_isa_cpu() says AVX-512. */
#define SIMD_W 16
#include "kernels/own_build.h"

OWN_BUILD(own_impl_avx512, OWN_ISA_AVX512, "avx512");
