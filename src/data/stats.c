/* Normalisation statistics computed from a data set's own pixel bytes
 * (image folders, data.h's top), and the caller-given statistics that
 * replace them. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The sample's rng stream, apart from those training draws from the seed. */
#define STATS_STREAM 0x7374617473000000ull /* "stats" */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The sorted indices of SLIM_DATA_STATS_SAMPLE images out of n, drawn from
 * seed (a partial Fisher-Yates shuffle), into *idx (free() it). */
static slim_status sample_indices(size_t n, uint64_t seed, uint32_t **idx) {
    uint32_t *perm = malloc(n * sizeof *perm);
    if (!perm) return slim_error(SLIM_ERR_NOMEM, "statistics: out of memory for %zu indices", n);
    for (size_t i = 0; i < n; i++)
        perm[i] = (uint32_t)i;
    slim_rng rng;
    slim_rng_seed(&rng, seed, STATS_STREAM);
    for (size_t i = 0; i < SLIM_DATA_STATS_SAMPLE; i++) {
        size_t j = i + slim_rng_below(&rng, (uint32_t)(n - i));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    qsort(perm, SLIM_DATA_STATS_SAMPLE, sizeof *perm, cmp_u32);
    *idx = perm;
    return SLIM_OK;
}

slim_status data_image_stats(const slim_dataset *ds, uint64_t seed, float *mean, float *std) {
    if (ds->n == 0) return slim_error(SLIM_ERR_ARG, "statistics of an empty data set");
    if (ds->n > UINT32_MAX) return slim_error(SLIM_ERR_ARG, "statistics: too many images");
    size_t plane = (size_t)ds->h * (size_t)ds->w, per = (size_t)ds->c * plane;
    size_t count = ds->n > SLIM_DATA_STATS_SAMPLE ? SLIM_DATA_STATS_SAMPLE : ds->n;
    uint32_t *idx = NULL;
    if (count < ds->n) SLIM_TRY(sample_indices(ds->n, seed, &idx));
    uint8_t *img = malloc(per);
    /* hist[k][p]: how often byte p occurs in channel k. */
    uint64_t(*hist)[256] = calloc(SLIM_DATA_MAX_CHANNELS, sizeof *hist);
    slim_status st =
        img && hist ? SLIM_OK : slim_error(SLIM_ERR_NOMEM, "statistics: out of memory");
    for (size_t i = 0; i < count && st == SLIM_OK; i++) {
        /* Streamed pictures: the store's threads decode the next ones. */
        if (i % 8 == 0) data_prefetch(ds, idx, i, count - i < 16 ? count - i : 16);
        st = data_image_bytes(ds, idx ? idx[i] : i, img);
        for (int k = 0; k < ds->c && st == SLIM_OK; k++)
            for (size_t p = 0; p < plane; p++)
                hist[k][img[k * plane + p]]++;
    }
    for (int k = 0; k < ds->c && st == SLIM_OK; k++) {
        double n = 0, sum = 0, sq = 0;
        for (int p = 0; p < 256; p++) {
            n += (double)hist[k][p];
            sum += (double)hist[k][p] * (p / 255.0);
        }
        double m = sum / n;
        for (int p = 0; p < 256; p++)
            sq += (double)hist[k][p] * (p / 255.0 - m) * (p / 255.0 - m);
        double s = sqrt(sq / n);
        mean[k] = (float)m;
        /* All values equal: nothing to scale (and a division by 0 else). */
        std[k] = s > 1e-6 ? (float)s : 1.0f;
    }
    free(idx);
    free(img);
    free(hist);
    return st;
}

slim_status data_set_norm(slim_dataset *ds, const float *mean, const float *std) {
    for (int k = 0; k < ds->c; k++)
        if (!(std[k] > 0.0f) || !isfinite(std[k]) || !isfinite(mean[k]))
            return slim_error(SLIM_ERR_ARG,
                              "normalisation of channel %d: mean %g, std %g (std must be a "
                              "finite number > 0)",
                              k, mean[k], std[k]);
    for (int k = 0; k < ds->c; k++) {
        ds->mean[k] = mean[k];
        ds->std[k] = std[k];
    }
    return SLIM_OK;
}
