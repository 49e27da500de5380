/* PCG32 (PCG-XSH-RR with 64-bit state), after O'Neill's reference. */
#include "slim/core.h"

#include <math.h>

#define PCG_MULT 6364136223846793005ULL

uint32_t slim_rng_u32(slim_rng *rng) {
    uint64_t old = rng->state;
    rng->state = old * PCG_MULT + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
}

void slim_rng_seed(slim_rng *rng, uint64_t seed, uint64_t stream) {
    rng->state = 0;
    rng->inc = (stream << 1u) | 1u;
    slim_rng_u32(rng);
    rng->state += seed;
    slim_rng_u32(rng);
}

uint32_t slim_rng_below(slim_rng *rng, uint32_t bound) {
    /* Reject the low values that would bias the modulo (Lemire/O'Neill). */
    uint32_t threshold = (uint32_t)(-bound) % bound;
    for (;;) {
        uint32_t r = slim_rng_u32(rng);
        if (r >= threshold) return r % bound;
    }
}

float slim_rng_uniform(slim_rng *rng) {
    /* 24 random bits: every value exactly representable, never 1.0. */
    return (float)(slim_rng_u32(rng) >> 8) * (1.0f / 16777216.0f);
}

float slim_rng_normal(slim_rng *rng) {
    /* u1 in (0, 1] so the log is finite. */
    double u1 = ((double)(slim_rng_u32(rng) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(slim_rng_u32(rng) >> 8) / 16777216.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void slim_rng_shuffle(slim_rng *rng, uint32_t *perm, size_t n) {
    for (size_t i = n; i > 1; i--) {
        size_t j = slim_rng_below(rng, (uint32_t)i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
