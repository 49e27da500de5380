/* The SIMD layer of our inference kernels (private): vectors of SIMD_W
 * floats in the compiler's vector extensions, and the few operations the
 * kernels need beyond its operators (+ - * on vectors, a[i] for a lane).
 *
 * The kernels are written once against it (kernels/<kernel>_simd.h) and compiled
 * once per target by a file that defines SIMD_W and is built with that
 * target's flags (kernels/isa_avx512.c: 16 lanes, AVX-512; isa_avx2.c: 8,
 * AVX2 + FMA). Any width compiles for any x86-64 target: the tests also
 * build 16 lanes for AVX2 (tests/own_w16_avx2.c), which runs the AVX-512
 * kernels' logic on CPUs without it.
 *
 * vf: SIMD_W lanes; v8: 8 lanes (a narrow block's 8 channels), whatever
 * SIMD_W. Loads and stores of vf/v8 at `p` need alignment of the vector's
 * size; the `u` ones any float alignment. */
#ifndef SLIM_KERNELS_SIMD_H
#define SLIM_KERNELS_SIMD_H

#if !defined(SIMD_W) || (SIMD_W != 8 && SIMD_W != 16)
#error "kernels/simd.h: define SIMD_W as 8 or 16 first"
#endif

#include <immintrin.h>
#include <string.h>

typedef float vf __attribute__((vector_size(SIMD_W * 4)));
typedef float vf_u __attribute__((vector_size(SIMD_W * 4), aligned(4)));
typedef int vi __attribute__((vector_size(SIMD_W * 4)));
typedef double vd __attribute__((vector_size(SIMD_W * 4)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v8_u __attribute__((vector_size(32), aligned(4)));
typedef int v8i __attribute__((vector_size(32)));

#define SIMD_INLINE static inline __attribute__((always_inline))

SIMD_INLINE vf vload(const float *p) { return *(const vf *)p; }
SIMD_INLINE vf vloadu(const float *p) { return *(const vf_u *)p; }
SIMD_INLINE void vstore(float *p, vf v) { *(vf *)p = v; }
SIMD_INLINE void vstoreu(float *p, vf v) { *(vf_u *)p = v; }
SIMD_INLINE v8 v8loadu(const float *p) { return *(const v8_u *)p; }
SIMD_INLINE void v8store(float *p, v8 v) { *(v8 *)p = v; }
SIMD_INLINE void v8storeu(float *p, v8 v) { *(v8_u *)p = v; }

SIMD_INLINE vf vadd(vf a, vf b) { return a + b; }
SIMD_INLINE vf vsub(vf a, vf b) { return a - b; }
SIMD_INLINE vf vzero(void) { return (vf){0}; }
SIMD_INLINE v8 v8zero(void) { return (v8){0}; }
SIMD_INLINE v8 v8set1(float x) { return (v8){x, x, x, x, x, x, x, x}; }
#if SIMD_W == 8
SIMD_INLINE vf vset1(float x) { return v8set1(x); }
#else
SIMD_INLINE vf vset1(float x) { return (vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }
#endif

/* a * b + c, one rounding (the files of each target are built with
 * -ffp-contract=fast; the intrinsics make it certain where they exist). */
SIMD_INLINE vf vfma(vf a, vf b, vf c) {
#if SIMD_W == 16 && defined(__AVX512F__)
    return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif SIMD_W == 8 && defined(__FMA__)
    return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}
SIMD_INLINE v8 v8fma(v8 a, v8 b, v8 c) {
#if defined(__FMA__)
    return (v8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
    return a * b + c;
#endif
}

/* The larger of a and b per lane (b where either is NaN, as maxps). */
SIMD_INLINE vf vmax(vf a, vf b) {
#if SIMD_W == 16 && defined(__AVX512F__)
    return (vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif SIMD_W == 8 && defined(__AVX__)
    return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#else
    const vi m = a > b;
    return (vf)(((vi)a & m) | ((vi)b & ~m));
#endif
}
SIMD_INLINE v8 v8max(v8 a, v8 b) {
#if defined(__AVX__)
    return (v8)_mm256_max_ps((__m256)a, (__m256)b);
#else
    const v8i m = a > b;
    return (v8)(((v8i)a & m) | ((v8i)b & ~m));
#endif
}
SIMD_INLINE vf vrelu(vf a) { return vmax(a, vzero()); }
SIMD_INLINE v8 v8relu(v8 a) { return v8max(a, v8zero()); }

/* The two floats at p in every pair of lanes (one 64-bit broadcast). */
SIMD_INLINE vf vset1_pair(const float *p) {
    double d;
    memcpy(&d, p, sizeof d);
#if SIMD_W == 8
    return (vf)(vd){d, d, d, d};
#else
    return (vf)(vd){d, d, d, d, d, d, d, d};
#endif
}

#endif
