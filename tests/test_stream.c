/* The picture store (src/data/stream.c): streamed and partly cached data
 * sets hand out exactly the bytes of a fully cached one, batch by batch over
 * shuffled epochs; decode errors at load name the first bad file in path
 * order whatever the threads do; a file that goes bad after loading is a
 * clean error from the batcher, never a hang; freeing a store with decodes
 * in flight is clean (run under ASan too). */
#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#include "data/internal.h"
#include "slim/data.h"

#include <jpeglib.h> /* after stdio.h */

/* PNGs by stb; JPEGs by libjpeg (stb's JPEG writer shifts negative ints,
 * which UBSan stops at). */
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBIW_WINDOWS_UTF8 0
#include <stb/stb_image_write.h>

#define has tu_error_has
#define assert_error tu_assert_error

/* ---- a picture folder --------------------------------------------------- */

/* The model's input; the pictures are 20..89 pixels a side. */
#define PIC_H 64
#define PIC_W 64
#define PIC_C 3
#define PIC_PER (PIC_C * PIC_H * PIC_W) /* 12 KiB: 85 of them fill 1 MiB */
#define PIC_CLASSES 3
#define PIC_PER_CLASS 40
#define PIC_N (PIC_CLASSES * PIC_PER_CLASS)
#define PIC_MAX_SIDE 90

/* The file of picture i of class k: PNG, PNG, JPEG, ... */
static void image_name(char *buf, size_t len, const char *dir, int k, int i) {
    snprintf(buf, len, "%s/c%d/%03d.%s", dir, k, i, i % 3 == 2 ? "jpg" : "png");
}

/* px: (h, w, comp) as a JPEG file at path. */
static void write_jpg(const char *path, int w, int h, int comp, const unsigned char *px) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = comp;
    ci.in_color_space = comp == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * (size_t)(w * comp));
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    assert_int_equal(fclose(f), 0);
}

/* dir/c<k>/<i>.png|jpg, PIC_PER_CLASS per class, of sizes 20..89 a side,
 * gray or RGB, smooth patterns plus noise from a seeded rng. */
static void write_folder(const char *dir) {
    slim_rng rng;
    slim_rng_seed(&rng, 21, 0);
    static unsigned char px[PIC_MAX_SIDE * PIC_MAX_SIDE * 3];
    char path[512];
    for (int k = 0; k < PIC_CLASSES; k++) {
        snprintf(path, sizeof path, "%s/c%d", dir, k);
        assert_int_equal(mkdir(path, 0755), 0);
        for (int i = 0; i < PIC_PER_CLASS; i++) {
            int comp = slim_rng_below(&rng, 2) ? 1 : 3;
            int h = 20 + (int)slim_rng_below(&rng, PIC_MAX_SIDE - 20);
            int w = 20 + (int)slim_rng_below(&rng, PIC_MAX_SIDE - 20);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < comp; ch++)
                        px[(y * w + x) * comp + ch] =
                            (unsigned char)(x * (k + 2) + y * (ch + 1) + i +
                                            (int)slim_rng_below(&rng, 40));
            image_name(path, sizeof path, dir, k, i);
            if (i % 3 == 2)
                write_jpg(path, w, h, comp, px);
            else
                assert_true(stbi_write_png(path, w, h, comp, px, w * comp) != 0);
        }
    }
}

/* The path of image i of a folder loaded in full (class, name order). */
static void image_path(char *buf, size_t len, const char *dir, size_t i) {
    image_name(buf, len, dir, (int)(i / PIC_PER_CLASS), (int)(i % PIC_PER_CLASS));
}

static slim_dataset *load(const char *dir, int streaming, size_t cache_mib, int workers) {
    slim_data_options o = {.c = PIC_C, .h = PIC_H, .w = PIC_W};
    o.streaming = streaming;
    o.cache_mib = cache_mib;
    o.workers = workers;
    slim_dataset *ds = NULL;
    slim_status st = slim_data_load_imagefolder(dir, NULL, 0, &o, &ds);
    if (st != SLIM_OK) fail_msg("load: %s", slim_last_error());
    return ds;
}

/* Every batch of two shuffled epochs of `a` and `b` is the same, bit for
 * bit. */
static void assert_same_batches(const slim_dataset *a, const slim_dataset *b, size_t batch) {
    slim_batcher ba, bb;
    assert_int_equal(slim_batcher_init(&ba, a, batch, 1), SLIM_OK);
    assert_int_equal(slim_batcher_init(&bb, b, batch, 1), SLIM_OK);
    float *xa = malloc(batch * PIC_PER * sizeof(float)),
          *xb = malloc(batch * PIC_PER * sizeof(float));
    int32_t *ya = malloc(batch * sizeof(int32_t)), *yb = malloc(batch * sizeof(int32_t));
    assert_true(xa && xb && ya && yb);
    slim_rng ra, rb;
    slim_rng_seed(&ra, 5, 0);
    slim_rng_seed(&rb, 5, 0);
    size_t batches = 0;
    for (int epoch = 0; epoch < 2; epoch++) {
        slim_batcher_begin_epoch(&ba, &ra);
        slim_batcher_begin_epoch(&bb, &rb);
        for (;;) {
            size_t ka = 0, kb = 0;
            memset(xb, 0xA5, batch * PIC_PER * sizeof(float));
            assert_int_equal(slim_batcher_next_checked(&ba, xa, ya, &ka), SLIM_OK);
            assert_int_equal(slim_batcher_next_checked(&bb, xb, yb, &kb), SLIM_OK);
            assert_int_equal(ka, kb);
            if (ka == 0) break;
            assert_memory_equal(xa, xb, ka * PIC_PER * sizeof(float));
            assert_memory_equal(ya, yb, ka * sizeof(int32_t));
            batches++;
        }
    }
    assert_int_equal(batches, 2 * ((a->n + batch - 1) / batch));
    free(xa);
    free(xb);
    free(ya);
    free(yb);
    slim_batcher_free(&ba);
    slim_batcher_free(&bb);
}

/* slim_dataset_read of every image and data_image_bytes agree. */
static void assert_same_reads(const slim_dataset *a, const slim_dataset *b) {
    float *xa = malloc(a->n * PIC_PER * sizeof(float)),
          *xb = malloc(a->n * PIC_PER * sizeof(float));
    assert_true(xa && xb);
    for (size_t first = 0; first < a->n; first += 7) {
        size_t k = a->n - first < 7 ? a->n - first : 7;
        assert_int_equal(slim_dataset_read(a, first, k, xa + first * PIC_PER), SLIM_OK);
        assert_int_equal(slim_dataset_read(b, first, k, xb + first * PIC_PER), SLIM_OK);
    }
    assert_memory_equal(xa, xb, a->n * PIC_PER * sizeof(float));
    uint8_t pa[PIC_PER], pb[PIC_PER];
    for (size_t i = 0; i < a->n; i++) {
        assert_int_equal(data_image_bytes(a, i, pa), SLIM_OK);
        assert_int_equal(data_image_bytes(b, i, pb), SLIM_OK);
        assert_memory_equal(pa, pb, PIC_PER);
    }
    assert_memory_equal(a->labels, b->labels, a->n * sizeof(int32_t));
    free(xa);
    free(xb);
}

static void test_streamed_equals_cached(void **state) {
    (void)state;
    char *dir = tu_make_tmpdir("stream");
    write_folder(dir);
    slim_dataset *cached = load(dir, 0, 0, 0);
    assert_null(cached->store);
    assert_int_equal(cached->n, PIC_N);
    /* Everything streamed (with 1 and with 3 threads), and a cache of
     * 1 MiB: the first 85 pictures cached, 35 streamed. */
    for (int run = 0; run < 3; run++) {
        slim_dataset *streamed = load(dir, 1, run == 2, run == 1 ? 3 : 1);
        assert_non_null(streamed->store);
        assert_int_equal(data_store_cached(streamed->store), run == 2 ? 85 : 0);
        /* The statistics (from the bytes, through the store) too. */
        assert_memory_equal(cached->mean, streamed->mean, sizeof cached->mean);
        assert_memory_equal(cached->std, streamed->std, sizeof cached->std);
        assert_same_batches(cached, streamed, 16);
        assert_same_reads(cached, streamed);
        slim_dataset_free(streamed);
    }
    /* A cache that holds them all: no store. */
    slim_dataset *fits = load(dir, 1, 2, 0);
    assert_null(fits->store);
    assert_same_batches(cached, fits, 16);
    slim_dataset_free(fits);
    slim_dataset_free(cached);
    tu_rm_tree(dir);
}

/* ---- a synthetic decoder: image i of "pic/<i>" is a function of i -------- */

static atomic_int fail_from; /* paths with i >= fail_from fail (-1: none) */
static atomic_int fail_only; /* the one path that fails (-1: none) */
static atomic_int delay_us;  /* each decode sleeps this long */
static atomic_int slow_only; /* this path's decode sleeps 20 ms (-1: none) */
static atomic_int decodes;
static atomic_int thread_failures; /* failures met by the store's threads */
static pthread_t main_thread;
static atomic_int thread_order[64]; /* images the store's threads decoded, in order */
static atomic_int n_thread_order;

static slim_status fake_decode(const char *path, int c, int h, int w, slim_resize_mode mode,
                               double crop_scale, uint8_t *out) {
    (void)mode;
    (void)crop_scale;
    atomic_fetch_add(&decodes, 1);
    int i = atoi(path + 4);
    if (atomic_load(&delay_us) > 0) usleep((useconds_t)atomic_load(&delay_us));
    if (i == atomic_load(&slow_only)) usleep(20000);
    if (!pthread_equal(pthread_self(), main_thread)) {
        int k = atomic_fetch_add(&n_thread_order, 1);
        if (k < 64) atomic_store(&thread_order[k], i);
    }
    int from = atomic_load(&fail_from);
    if ((from >= 0 && i >= from) || i == atomic_load(&fail_only)) {
        if (!pthread_equal(pthread_self(), main_thread)) atomic_fetch_add(&thread_failures, 1);
        return slim_error(SLIM_ERR_FORMAT, "%s: corrupt picture (test)", path);
    }
    size_t per = (size_t)c * (size_t)h * (size_t)w;
    for (size_t j = 0; j < per; j++)
        out[j] = (uint8_t)(i * 31 + (int)j * 7 + (int)(j >> 8));
    return SLIM_OK;
}

#define FAKE_C 2
#define FAKE_H 32
#define FAKE_W 32
#define FAKE_PER (FAKE_C * FAKE_H * FAKE_W) /* 2 KiB: 512 of them fill 1 MiB */

static char fake_names[2000][16];
static const char *fake_paths[2000];
static int32_t fake_labels[2000];

static void fake_reset(void) {
    atomic_store(&fail_from, -1);
    atomic_store(&fail_only, -1);
    atomic_store(&delay_us, 0);
    atomic_store(&slow_only, -1);
    atomic_store(&decodes, 0);
    atomic_store(&thread_failures, 0);
    atomic_store(&n_thread_order, 0);
    main_thread = pthread_self();
    for (int i = 0; i < 2000; i++) {
        snprintf(fake_names[i], sizeof fake_names[i], "pic/%d", i);
        fake_paths[i] = fake_names[i];
        fake_labels[i] = i % 5;
    }
}

static slim_status fake_load(size_t n, int streaming, size_t cache_mib, int workers, int skip_bad,
                             slim_dataset **ds, size_t *skipped) {
    slim_data_options o = {0};
    o.streaming = streaming;
    o.cache_mib = cache_mib;
    o.workers = workers;
    return data_pictures_load(fake_paths, fake_labels, n, FAKE_C, FAKE_H, FAKE_W, 5,
                              SLIM_RESIZE_NONE, 1.0, fake_decode, skip_bad, &o, ds, skipped);
}

/* A partial cache: 1 MiB holds 512 of 1300 images; the batches, reads and
 * bytes are those of the all-cached set. */
static void test_partial_cache(void **state) {
    (void)state;
    fake_reset();
    slim_dataset *all = NULL, *part = NULL;
    assert_int_equal(fake_load(1300, 0, 0, 2, 0, &all, NULL), SLIM_OK);
    assert_int_equal(atomic_load(&decodes), 1300); /* each file once at load */
    assert_int_equal(fake_load(1300, 1, 1, 2, 0, &part, NULL), SLIM_OK);
    assert_null(all->store);
    assert_non_null(part->store);
    assert_int_equal(data_store_cached(part->store), 512);
    uint8_t a[FAKE_PER], b[FAKE_PER];
    for (size_t i = 0; i < 1300; i += 97) {
        assert_int_equal(data_image_bytes(all, i, a), SLIM_OK);
        assert_int_equal(data_image_bytes(part, i, b), SLIM_OK);
        assert_memory_equal(a, b, FAKE_PER);
    }
    /* The batches of two shuffled epochs, batch sizes that do and do not
     * divide n. */
    for (size_t batch = 50; batch <= 64; batch += 14) {
        slim_batcher ba, bb;
        assert_int_equal(slim_batcher_init(&ba, all, batch, 1), SLIM_OK);
        assert_int_equal(slim_batcher_init(&bb, part, batch, 1), SLIM_OK);
        float *xa = malloc(batch * FAKE_PER * sizeof(float));
        float *xb = malloc(batch * FAKE_PER * sizeof(float));
        int32_t ya[64], yb[64];
        slim_rng ra, rb;
        slim_rng_seed(&ra, batch, 0);
        slim_rng_seed(&rb, batch, 0);
        for (int epoch = 0; epoch < 2; epoch++) {
            slim_batcher_begin_epoch(&ba, &ra);
            slim_batcher_begin_epoch(&bb, &rb);
            size_t ka, kb;
            while ((ka = slim_batcher_next(&ba, xa, ya)) > 0) {
                kb = slim_batcher_next(&bb, xb, yb);
                assert_int_equal(ka, kb);
                assert_memory_equal(xa, xb, ka * FAKE_PER * sizeof(float));
                assert_memory_equal(ya, yb, ka * sizeof(int32_t));
            }
            assert_int_equal(slim_batcher_next(&bb, xb, yb), 0);
            assert_int_equal(bb.error, SLIM_OK);
        }
        free(xa);
        free(xb);
        slim_batcher_free(&ba);
        slim_batcher_free(&bb);
    }
    /* To floats: the store goes, the values stay. */
    assert_int_equal(slim_dataset_to_floats(all), SLIM_OK);
    assert_int_equal(slim_dataset_to_floats(part), SLIM_OK);
    assert_null(part->store);
    assert_memory_equal(all->images, part->images, 1300 * FAKE_PER * sizeof(float));
    slim_dataset_free(all);
    slim_dataset_free(part);
}

/* A bad file at load: the first in path order is named, whichever thread
 * met it first (37 is slow, so with 2 threads or more 38 fails first);
 * later files need not be decoded. */
static void test_load_error_first_in_order(void **state) {
    (void)state;
    for (int rep = 0; rep < 12; rep++) {
        fake_reset();
        atomic_store(&fail_from, 37); /* 37, 38, ... all fail */
        atomic_store(&slow_only, 37);
        slim_dataset *ds = NULL;
        int workers = 1 + rep % 4;
        assert_error(fake_load(400, rep % 2, 0, workers, 0, &ds, NULL), SLIM_ERR_FORMAT,
                     "pic/37: corrupt picture");
        assert_null(ds);
        assert_true(atomic_load(&decodes) <= 37 + workers);
    }
}

/* skip_bad: bad files are left out and counted; the images close up, the
 * cache takes the first good ones (decoding again those that were past
 * it). */
static void test_skip_bad(void **state) {
    (void)state;
    fake_reset();
    atomic_store(&fail_only, 3);
    slim_dataset *ds = NULL;
    size_t skipped = 0;
    /* 512 cached of 1000 files, one of them bad: image 511 is file 512. */
    assert_int_equal(fake_load(1000, 1, 1, 3, 1, &ds, &skipped), SLIM_OK);
    assert_int_equal(skipped, 1);
    assert_int_equal(ds->n, 999);
    assert_int_equal(data_store_cached(ds->store), 512);
    uint8_t got[FAKE_PER], want[FAKE_PER];
    for (size_t i = 0; i < ds->n; i++) {
        size_t file = i < 3 ? i : i + 1;
        assert_int_equal(
            fake_decode(fake_paths[file], FAKE_C, FAKE_H, FAKE_W, SLIM_RESIZE_NONE, 1.0, want),
            SLIM_OK);
        assert_int_equal(data_image_bytes(ds, i, got), SLIM_OK);
        assert_memory_equal(got, want, FAKE_PER);
        assert_int_equal(ds->labels[i], fake_labels[file]);
    }
    slim_dataset_free(ds);
    /* Every file bad. */
    atomic_store(&fail_from, 0);
    assert_error(fake_load(20, 1, 0, 2, 1, &ds, &skipped), SLIM_ERR_FORMAT, "none of the 20");
    assert_null(ds);
}

/* Files that go bad after loading: the batch that needs one fails with the
 * picture's message (decoded in a thread or here), the position stays, and
 * nothing hangs. */
static void test_error_mid_run(void **state) {
    (void)state;
    fake_reset();
    slim_dataset *ds = NULL;
    assert_int_equal(fake_load(300, 1, 0, 2, 0, &ds, NULL), SLIM_OK);
    atomic_store(&fail_from, 70); /* images 70.. break after loading */
    slim_batcher b;
    assert_int_equal(slim_batcher_init(&b, ds, 32, 0), SLIM_OK);
    float *x = malloc(32 * FAKE_PER * sizeof(float));
    int32_t y[32];
    slim_batcher_begin_epoch(&b, NULL);
    size_t k = 0;
    assert_int_equal(slim_batcher_next_checked(&b, x, y, &k), SLIM_OK);
    assert_int_equal(k, 32);
    /* The threads meet image 70 (batch 2, asked for by the first call). */
    for (int t = 0; t < 2000 && atomic_load(&thread_failures) == 0; t++)
        usleep(1000);
    assert_true(atomic_load(&thread_failures) > 0);
    assert_int_equal(slim_batcher_next_checked(&b, x, y, &k), SLIM_OK);
    assert_error(slim_batcher_next_checked(&b, x, y, &k), SLIM_ERR_FORMAT,
                 "pic/70: corrupt picture");
    assert_int_equal(k, 0);
    assert_int_equal(b.pos.index, 64);
    /* The old call: 0, with the error kept. */
    slim_clear_error();
    assert_int_equal(slim_batcher_next(&b, x, y), 0);
    assert_int_equal(b.error, SLIM_ERR_FORMAT);
    assert_true(has("pic/70"));
    /* Reading and gathering report it too. */
    assert_error(slim_dataset_read(ds, 60, 20, x), SLIM_ERR_FORMAT, "pic/70");
    uint32_t idx[2] = {5, 250};
    assert_error(slim_dataset_gather(ds, idx, 2, x, y), SLIM_ERR_FORMAT, "pic/250");
    /* Fixed again (and the decodes begun before that ended): the same batch
     * now comes, its failed pictures decoded again. */
    atomic_store(&fail_from, -1);
    usleep(20000);
    assert_int_equal(slim_batcher_next_checked(&b, x, y, &k), SLIM_OK);
    assert_int_equal(k, 32);
    free(x);
    slim_batcher_free(&b);
    slim_dataset_free(ds);
}

/* A file removed after loading (a real folder): a clean error naming it. */
static void test_file_removed_after_load(void **state) {
    (void)state;
    char *dir = tu_make_tmpdir("streamrm");
    write_folder(dir);
    slim_dataset *ds = load(dir, 1, 0, 2);
    char gone[512];
    image_path(gone, sizeof gone, dir, 50);
    assert_int_equal(remove(gone), 0);
    slim_batcher b;
    assert_int_equal(slim_batcher_init(&b, ds, 16, 0), SLIM_OK);
    float *x = malloc(16 * PIC_PER * sizeof(float));
    int32_t y[16];
    slim_batcher_begin_epoch(&b, NULL);
    size_t k;
    slim_status st = SLIM_OK;
    while ((st = slim_batcher_next_checked(&b, x, y, &k)) == SLIM_OK && k > 0)
        ;
    assert_int_equal(st, SLIM_ERR_IO);
    assert_true(has(gone));
    assert_int_equal(b.pos.index, 48);
    free(x);
    slim_batcher_free(&b);
    slim_dataset_free(ds);
    tu_rm_tree(dir);
}

/* Freeing a store whose threads are decoding and have more queued. */
static void test_free_in_flight(void **state) {
    (void)state;
    fake_reset();
    for (int rep = 0; rep < 5; rep++) {
        slim_dataset *ds = NULL;
        assert_int_equal(fake_load(400, 1, 0, 3, 0, &ds, NULL), SLIM_OK);
        atomic_store(&delay_us, 2000);
        slim_batcher b;
        assert_int_equal(slim_batcher_init(&b, ds, 40, 1), SLIM_OK);
        slim_rng r;
        slim_rng_seed(&r, (uint64_t)rep, 0);
        slim_batcher_begin_epoch(&b, &r);
        float *x = malloc(40 * FAKE_PER * sizeof(float));
        int32_t y[40];
        if (rep % 2) assert_int_equal(slim_batcher_next(&b, x, y), 40);
        /* Batches queued for the threads; some being decoded now. */
        uint32_t idx[100];
        for (int i = 0; i < 100; i++)
            idx[i] = (uint32_t)(i * 3);
        data_store_prefetch(ds->store, idx, 100);
        usleep(1000);
        slim_batcher_free(&b);
        slim_dataset_free(ds);
        free(x);
        atomic_store(&delay_us, 0);
    }
}

/* The threads decode in the order images were first asked for: a batch
 * named again (as gather does after the batcher asked for it and the two
 * after it) stays ahead of the later ones. */
static void test_prefetch_order(void **state) {
    (void)state;
    fake_reset();
    slim_dataset *ds = NULL;
    assert_int_equal(fake_load(100, 1, 0, 1, 0, &ds, NULL), SLIM_OK);
    atomic_store(&n_thread_order, 0);
    atomic_store(&delay_us, 1000);
    uint32_t idx[30];
    for (int i = 0; i < 30; i++)
        idx[i] = (uint32_t)i;
    assert_int_equal(data_store_reserve(ds->store, 30), SLIM_OK);
    data_store_prefetch(ds->store, idx, 30);
    data_store_prefetch(ds->store, idx, 10);
    for (int t = 0; t < 2000 && atomic_load(&n_thread_order) < 30; t++)
        usleep(1000);
    atomic_store(&delay_us, 0);
    slim_dataset_free(ds); /* joins the thread: its last entry is in */
    assert_int_equal(atomic_load(&n_thread_order), 30);
    for (int i = 0; i < 30; i++)
        assert_int_equal(atomic_load(&thread_order[i]), i);
}

/* Bad options. */
static void test_bad_options(void **state) {
    (void)state;
    fake_reset();
    slim_dataset *ds = NULL;
    assert_error(fake_load(10, 1, 0, -1, 0, &ds, NULL), SLIM_ERR_ARG, "decode threads");
    assert_error(fake_load(10, 1, 0, SLIM_DATA_MAX_WORKERS + 1, 0, &ds, NULL), SLIM_ERR_ARG,
                 "decode threads");
    assert_null(ds);
    /* More threads than files, and a huge cache: all cached, no store. */
    assert_int_equal(fake_load(3, 1, SIZE_MAX, 8, 0, &ds, NULL), SLIM_OK);
    assert_null(ds->store);
    assert_int_equal(ds->n, 3);
    slim_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_streamed_equals_cached),
        cmocka_unit_test(test_partial_cache),
        cmocka_unit_test(test_load_error_first_in_order),
        cmocka_unit_test(test_skip_bad),
        cmocka_unit_test(test_error_mid_run),
        cmocka_unit_test(test_file_removed_after_load),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_prefetch_order),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
