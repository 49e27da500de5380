/* One build of our kernels from their one source: included, once, by a
 * file that defines SIMD_W and is compiled for its target
 * (kernels/isa_avx512.c, isa_avx2.c; tests/own_w16_avx2.c), which then
 * names the build: OWN_BUILD(variable, the set it needs, its name). */
#ifndef SLIM_KERNELS_OWN_BUILD_H
#define SLIM_KERNELS_OWN_BUILD_H

#include "kernels/head_simd.h"
#include "kernels/stem_simd.h"
#include "kernels/wino_simd.h"

#define OWN_BUILD(VAR, NEEDS, NAME)                                                                \
    const own_impl VAR = {.needs = NEEDS,                                                          \
                          .name = NAME,                                                            \
                          .lanes = SIMD_W,                                                         \
                          .head = head_forward,                                                    \
                          .stem = stem_forward,                                                    \
                          .wino = wino_forward}

#endif
