/* Our kernels' 16-lane build (the AVX-512 one's source and logic),
 * compiled for AVX2 + FMA: it runs, and is held to the reference, on CPUs
 * without AVX-512 (test_kernels_fast). Not part of the library. */
#define SIMD_W 16
#include "kernels/own_build.h"

OWN_BUILD(own_impl_w16_on_avx2, OWN_ISA_AVX2, "avx512-logic-on-avx2");
