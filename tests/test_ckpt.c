/* Tests of the checkpoint container (include/slim/ckpt.h): bit-exact round
 * trips, the atomic write protocol, and the reader's defences against
 * truncated, corrupted and hostile files (docs/CHECKPOINT_FORMAT.md).
 *
 * The corruption tests copy each mutated file into a buffer of exactly its
 * length, so that under AddressSanitizer any read past the end is caught. The
 * "hostile" cases recompute the checksum after editing a field, so that the
 * field's own validation, not the CRC, has to reject it. */
#include "testutil.h"

#include "slim/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The documented layout (docs/CHECKPOINT_FORMAT.md), duplicated on purpose:
 * these tests hold the implementation to the document. */
#define HDR_SIZE 128
#define HDR_VERSION 8
#define HDR_KIND 12
#define HDR_FLAGS 16
#define HDR_FILE_SIZE 24
#define HDR_DIR 32
enum { SEC_TEXT, SEC_META, SEC_POS, SEC_TABLE, SEC_DATA };
#define ENT_SIZE 108
#define ENT_NDIM 64
#define ENT_SHAPE 68
#define ENT_FLAGS 84
#define ENT_DTYPE 88
#define ENT_OFFSET 92
#define ENT_NBYTES 100

static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t sec_off(const uint8_t *b, int s) { return rd64(b + HDR_DIR + 16 * s); }
static uint64_t sec_len_off(int s) { return HDR_DIR + 16 * s + 8; }
static uint8_t *entry(uint8_t *b, int i) {
    return b + sec_off(b, SEC_TABLE) + 8 + (size_t)ENT_SIZE * i;
}
/* Recomputes the trailing CRC-32 (zlib crc32 of all bytes but the last 4). */
static void fix_crc(uint8_t *b, size_t len) {
    wr32(b + len - 4, (uint32_t)crc32(0, b, (uInt)(len - 4)));
}

/* ---- fixtures ----------------------------------------------------------- */

static const char *k_text = "# vgg-fm — a small net, γ-L1\ninput x 1 28 28\nconv c1 x 8 3\n";

/* A training checkpoint with every kind of content, including float bit
 * patterns that a lossy path would change (NaN payloads, -0, denormals). */
static slim_ckpt *make_rich(void) {
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_non_null(ck);
    assert_int_equal(slim_ckpt_set_text(ck, k_text), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "data", "fashion-mnist"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "penalty", "gamma-l1"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "lambda", "0.02"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "class.0", "T-shirt/top"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "class.1", "Trouser"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "note", "two\nlines, ünïcödé"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "empty", ""), SLIM_OK);
    ck->pos.epoch = 7;
    ck->pos.step = 123456789012345ull;
    ck->pos.n_rng = 2;
    slim_rng_seed(&ck->pos.rng[0], 42, 1);
    slim_rng_seed(&ck->pos.rng[1], 0xdeadbeefcafeull, 7);

    slim_rng rng;
    slim_rng_seed(&rng, 3, 3);
    static const int shapes[][4] = {{5}, {3, 7}, {4, 3, 3, 3}, {2, 1, 17}, {1}};
    static const int ndims[] = {1, 2, 4, 3, 1};
    static const char *names[] = {"c1.bias", "fc.weight", "c1.weight", "odd.shape", "scalar"};
    for (int i = 0; i < 5; i++) {
        size_t n = slim_shape_numel(ndims[i], shapes[i]);
        float *x = malloc(n * sizeof *x);
        assert_non_null(x);
        tu_fill_uniform(&rng, x, n, -2.0f, 2.0f);
        if (i == 2) {
            uint32_t nan_payload = 0x7fc12345u, snan = 0xff800001u, denorm = 0x00000001u;
            memcpy(&x[0], &nan_payload, 4);
            memcpy(&x[1], &snan, 4);
            memcpy(&x[2], &denorm, 4);
            x[3] = -0.0f;
            x[4] = INFINITY;
            x[5] = -INFINITY;
        }
        assert_int_equal(slim_ckpt_add_tensor(ck, names[i], ndims[i], shapes[i], x, 0), SLIM_OK);
        free(x);
    }
    float mom[5] = {0.5f, -0.25f, 0, 1e-30f, 3};
    int s5[1] = {5};
    assert_int_equal(slim_ckpt_add_tensor(ck, "momentum.c1.bias", 1, s5, mom, 1), SLIM_OK);
    int s37[2] = {3, 7};
    assert_int_equal(slim_ckpt_add_tensor(ck, "momentum.fc.weight", 2, s37, NULL, 1), SLIM_OK);
    return ck;
}

/* A small file for the exhaustive corruption tests: two tensors. */
static slim_ckpt *make_small(void) {
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    assert_non_null(ck);
    assert_int_equal(slim_ckpt_set_text(ck, "input x 1 2 2\ndense fc x 3\n"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "data", "fm"), SLIM_OK);
    ck->pos.epoch = 1;
    ck->pos.step = 9;
    ck->pos.n_rng = 1;
    slim_rng_seed(&ck->pos.rng[0], 1, 1);
    float w[12], m[3] = {1, 2, 3};
    for (int i = 0; i < 12; i++)
        w[i] = (float)i * 0.5f - 1;
    int sw[2] = {3, 4}, sb[1] = {3};
    assert_int_equal(slim_ckpt_add_tensor(ck, "fc.weight", 2, sw, w, 0), SLIM_OK);
    assert_int_equal(slim_ckpt_add_tensor(ck, "momentum.fc.bias", 1, sb, m, 1), SLIM_OK);
    return ck;
}

static uint8_t *encode(const slim_ckpt *ck, size_t *len) {
    void *buf = NULL;
    assert_int_equal(slim_ckpt_encode(ck, &buf, len), SLIM_OK);
    assert_non_null(buf);
    return buf;
}

static void assert_same(const slim_ckpt *a, const slim_ckpt *b) {
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->model_text, b->model_text);
    assert_int_equal(a->n_meta, b->n_meta);
    for (int i = 0; i < a->n_meta; i++) {
        assert_string_equal(a->meta_keys[i], b->meta_keys[i]);
        assert_string_equal(a->meta_values[i], b->meta_values[i]);
    }
    assert_int_equal(a->pos.epoch, b->pos.epoch);
    assert_true(a->pos.step == b->pos.step);
    assert_int_equal(a->pos.n_rng, b->pos.n_rng);
    for (int i = 0; i < a->pos.n_rng; i++) {
        assert_true(a->pos.rng[i].state == b->pos.rng[i].state);
        assert_true(a->pos.rng[i].inc == b->pos.rng[i].inc);
    }
    assert_int_equal(a->n_tensors, b->n_tensors);
    for (int i = 0; i < a->n_tensors; i++) {
        const slim_ckpt_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->ndim, y->ndim);
        for (int d = 0; d < SLIM_MAX_DIMS; d++)
            assert_int_equal(x->shape[d], y->shape[d]);
        assert_int_equal(x->numel, y->numel);
        assert_int_equal(x->is_optim, y->is_optim);
        assert_memory_equal(x->data, y->data, x->numel * sizeof(float)); /* bit-exact */
        assert_int_equal((uintptr_t)y->data % 64, 0);
    }
}

/* A parse that must fail with SLIM_ERR_FORMAT, "t.ckpt: " in front and
 * `want` (if given) in the message. The bytes are copied to a buffer of
 * exactly len bytes so that ASan sees any over-read. */
static void expect_bad(const uint8_t *b, size_t len, const char *want) {
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) memcpy(copy, b, len);
    slim_ckpt *ck = (slim_ckpt *)(uintptr_t)1;
    slim_status st = slim_ckpt_read_memory(len ? copy : NULL, len, "t.ckpt", &ck);
    free(copy);
    if (st != SLIM_ERR_FORMAT || ck != NULL || strncmp(slim_last_error(), "t.ckpt: ", 8) != 0 ||
        (want && !strstr(slim_last_error(), want))) {
        print_error("status %d, message \"%s\", wanted \"%s\"\n", st, slim_last_error(),
                    want ? want : "(any)");
        slim_ckpt_free(st == SLIM_OK ? ck : NULL);
        fail();
    }
}

/* Edits bytes through `edit`, recomputes the CRC, expects rejection. */
typedef void (*edit_fn)(uint8_t *b, size_t len);
static void expect_bad_edit(edit_fn edit, const char *want) {
    slim_ckpt *ck = make_small();
    size_t len;
    uint8_t *b = encode(ck, &len);
    slim_ckpt_free(ck);
    edit(b, len);
    fix_crc(b, len);
    expect_bad(b, len, want);
    free(b);
}

/* ---- temporary directory ------------------------------------------------ */

static char g_dir[64];

static int setup_dir(void **state) {
    (void)state;
    strcpy(g_dir, "/tmp/slim-ckpt-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown_dir(void **state) {
    (void)state;
    remove_tree(g_dir);
    return 0;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* ---- round trips -------------------------------------------------------- */

/* Everything written comes back bit-exact, the file is the encoded bytes,
 * encoding is deterministic, and the documented layout holds. */
static void test_roundtrip_bit_exact(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/rich.ckpt", g_dir);
    slim_ckpt *ck = make_rich();
    assert_int_equal(slim_ckpt_write(ck, path), SLIM_OK);
    assert_int_equal(count_entries(g_dir), 1); /* no temporary file left */

    slim_ckpt *back = NULL;
    assert_int_equal(slim_ckpt_read(path, &back), SLIM_OK);
    assert_non_null(back);
    assert_same(ck, back);
    assert_string_equal(slim_ckpt_get_meta(back, "lambda"), "0.02");
    assert_string_equal(slim_ckpt_get_meta(back, "class.1"), "Trouser");
    assert_null(slim_ckpt_get_meta(back, "class.2"));
    const slim_ckpt_tensor *t = slim_ckpt_find(back, "momentum.c1.bias");
    assert_non_null(t);
    assert_int_equal(t->is_optim, 1);
    assert_true(t->data[3] == 1e-30f);
    assert_null(slim_ckpt_find(back, "nope"));
    /* A restored RNG continues the same stream. */
    slim_rng a = ck->pos.rng[1], b = back->pos.rng[1];
    for (int i = 0; i < 10; i++)
        assert_int_equal(slim_rng_u32(&a), slim_rng_u32(&b));

    size_t flen, mlen, mlen2;
    uint8_t *file = tu_read_file(path, &flen);
    uint8_t *mem = encode(ck, &mlen);
    uint8_t *mem2 = encode(back, &mlen2);
    assert_int_equal(flen, mlen);
    assert_memory_equal(file, mem, flen);
    assert_int_equal(mlen, mlen2);
    assert_memory_equal(mem, mem2, mlen); /* re-encoding a read file is identical */

    /* Layout spot checks against the document. */
    assert_memory_equal(mem, "SLIMCKPT", 8);
    assert_int_equal(rd32(mem + HDR_VERSION), 1);
    assert_int_equal(rd32(mem + HDR_KIND), SLIM_CKPT_TRAIN);
    assert_true(rd64(mem + HDR_FILE_SIZE) == mlen);
    assert_int_equal(sec_off(mem, SEC_TEXT), HDR_SIZE);
    assert_memory_equal(mem + HDR_SIZE, k_text, strlen(k_text));
    assert_true(rd64(mem + sec_len_off(SEC_TEXT)) == strlen(k_text));
    assert_int_equal(rd32(mem + sec_off(mem, SEC_TABLE)), 7);
    for (int i = 0; i < 7; i++) {
        uint8_t *e = entry(mem, i);
        assert_string_equal((const char *)e, ck->tensors[i].name);
        assert_int_equal(rd64(e + ENT_OFFSET) % 64, 0);
        assert_true(rd64(e + ENT_NBYTES) == 4 * ck->tensors[i].numel);
        assert_int_equal(rd32(e + ENT_FLAGS), ck->tensors[i].is_optim);
        uint32_t first;
        memcpy(&first, ck->tensors[i].data, 4);
        assert_int_equal(rd32(mem + rd64(e + ENT_OFFSET)), first); /* little-endian float */
    }
    assert_int_equal(rd32(mem + mlen - 4), (uint32_t)crc32(0, mem, (uInt)(mlen - 4)));

    free(file);
    free(mem);
    free(mem2);
    slim_ckpt_free(back);
    slim_ckpt_free(ck);
    unlink(path);
}

/* An exported model with no metadata, no RNG and empty text round-trips;
 * an empty container does too. */
static void test_roundtrip_export_and_empty(void **state) {
    (void)state;
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_EXPORT);
    assert_non_null(ck);
    int s[4] = {2, 2, 1, 1};
    float w[4] = {1, 2, 3, 4};
    assert_int_equal(slim_ckpt_add_tensor(ck, "c.weight", 4, s, w, 0), SLIM_OK);
    size_t len;
    uint8_t *b = encode(ck, &len);
    slim_ckpt *back = NULL;
    assert_int_equal(slim_ckpt_read_memory(b, len, "e.slim", &back), SLIM_OK);
    assert_same(ck, back);
    assert_string_equal(back->model_text, "");
    slim_ckpt_free(back);
    slim_ckpt_free(ck);
    free(b);

    ck = slim_ckpt_new(SLIM_CKPT_TRAIN);
    b = encode(ck, &len);
    assert_int_equal(slim_ckpt_read_memory(b, len, "e.ckpt", &back), SLIM_OK);
    assert_same(ck, back);
    slim_ckpt_free(back);
    slim_ckpt_free(ck);
    free(b);
}

/* ---- the atomic write protocol ----------------------------------------- */

/* Writing over an existing file replaces it completely; no temp files stay. */
static void test_write_replaces(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/replace.ckpt", g_dir);
    slim_ckpt *big = make_rich(), *small = make_small();
    assert_int_equal(slim_ckpt_write(big, path), SLIM_OK);
    assert_int_equal(slim_ckpt_write(small, path), SLIM_OK);
    assert_int_equal(count_entries(g_dir), 1);
    slim_ckpt *back = NULL;
    assert_int_equal(slim_ckpt_read(path, &back), SLIM_OK);
    assert_same(small, back);
    size_t flen, mlen;
    uint8_t *file = tu_read_file(path, &flen), *mem = encode(small, &mlen);
    assert_int_equal(flen, mlen); /* not the old, longer file with a new head */
    free(file);
    free(mem);
    slim_ckpt_free(back);
    slim_ckpt_free(big);
    slim_ckpt_free(small);
    unlink(path);
}

static void expect_io_error_naming(const char *path, slim_status st, const char *reason) {
    assert_int_equal(st, SLIM_ERR_IO);
    if (!strstr(slim_last_error(), path) || (reason && !strstr(slim_last_error(), reason))) {
        print_error("message \"%s\" should name %s and say %s\n", slim_last_error(), path,
                    reason ? reason : "why");
        fail();
    }
}

/* A path in a directory that does not exist: SLIM_ERR_IO, path and reason. */
static void test_write_missing_dir(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/no/such/dir/model.ckpt", g_dir);
    slim_ckpt *ck = make_small();
    expect_io_error_naming(path, slim_ckpt_write(ck, path), strerror(ENOENT));
    slim_ckpt *back = (slim_ckpt *)(uintptr_t)1;
    expect_io_error_naming(path, slim_ckpt_read(path, &back), strerror(ENOENT));
    assert_null(back);
    slim_ckpt_free(ck);
}

/* Failures part-way leave the previous file byte-for-byte intact and no
 * temporary file behind: (a) an invalid container is refused before any file
 * is touched; (b) the disk "fills up" mid-write (RLIMIT_FSIZE makes write()
 * fail with EFBIG); (c) the rename fails (the target is a directory). */
static void test_write_failure_keeps_old(void **state) {
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/keep.ckpt", g_dir);
    slim_ckpt *old = make_small();
    assert_int_equal(slim_ckpt_write(old, path), SLIM_OK);
    size_t old_len;
    uint8_t *old_bytes = tu_read_file(path, &old_len);
    assert_true(old_len < 4096);

    /* (a) */
    slim_ckpt *bad = make_small();
    bad->pos.n_rng = 9;
    assert_int_equal(slim_ckpt_write(bad, path), SLIM_ERR_ARG);
    bad->pos.n_rng = 1;
    bad->pos.rng[0].inc = 2;
    assert_int_equal(slim_ckpt_write(bad, path), SLIM_ERR_ARG);
    slim_ckpt_free(bad);

    /* (b) a new file of ~64 KiB against a 4 KiB file-size limit */
    slim_ckpt *big = slim_ckpt_new(SLIM_CKPT_TRAIN);
    int s[1] = {16384};
    assert_int_equal(slim_ckpt_add_tensor(big, "w", 1, s, NULL, 0), SLIM_OK);
    struct rlimit saved, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    lim = saved;
    lim.rlim_cur = 4096;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    slim_status st = slim_ckpt_write(big, path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);
    expect_io_error_naming(path, st, strerror(EFBIG));
    slim_ckpt_free(big);

    size_t now_len;
    uint8_t *now = tu_read_file(path, &now_len);
    assert_int_equal(now_len, old_len);
    assert_memory_equal(now, old_bytes, old_len);
    free(now);
    assert_int_equal(count_entries(g_dir), 1);

    /* (c) */
    char dpath[128], inner[160];
    snprintf(dpath, sizeof dpath, "%s/adir", g_dir);
    assert_int_equal(mkdir(dpath, 0700), 0);
    snprintf(inner, sizeof inner, "%s/keepme", dpath);
    FILE *f = fopen(inner, "w");
    assert_non_null(f);
    fclose(f);
    expect_io_error_naming(dpath, slim_ckpt_write(old, dpath), NULL);
    assert_int_equal(count_entries(g_dir), 2); /* keep.ckpt and adir, no temp file */
    assert_int_equal(count_entries(dpath), 1);
    unlink(inner);
    rmdir(dpath);

    free(old_bytes);
    slim_ckpt_free(old);
    unlink(path);
}

/* Reading a directory or an empty file fails cleanly. */
static void test_read_odd_files(void **state) {
    (void)state;
    slim_ckpt *ck = (slim_ckpt *)(uintptr_t)1;
    expect_io_error_naming(g_dir, slim_ckpt_read(g_dir, &ck), NULL);
    assert_null(ck);
    char path[128];
    snprintf(path, sizeof path, "%s/empty.ckpt", g_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(slim_ckpt_read(path, &ck), SLIM_ERR_FORMAT);
    assert_null(ck);
    assert_non_null(strstr(slim_last_error(), path));
    assert_non_null(strstr(slim_last_error(), "not a slim checkpoint"));
    unlink(path);
}

/* ---- damaged files ------------------------------------------------------ */

/* Every proper prefix of a valid file is rejected without a crash. */
static void test_truncation_every_length(void **state) {
    (void)state;
    slim_ckpt *ck = make_rich();
    size_t len;
    uint8_t *b = encode(ck, &len);
    slim_ckpt_free(ck);
    for (size_t n = 0; n < len; n++)
        expect_bad(b, n, n >= 8 ? "truncated" : NULL);
    free(b);
}

/* Every single-byte change anywhere in a small file is rejected. */
static void test_every_byte_flip(void **state) {
    (void)state;
    slim_ckpt *ck = make_small();
    size_t len;
    uint8_t *b = encode(ck, &len);
    slim_ckpt_free(ck);
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t m = 0; m < sizeof masks; m++) {
            b[i] ^= masks[m];
            expect_bad(b, len, NULL);
            b[i] ^= masks[m];
        }
    }
    /* Away from the header, the checksum is what catches it. */
    size_t mid = len / 2;
    b[mid] ^= 0x10;
    expect_bad(b, len, "checksum mismatch");
    free(b);
}

static void test_wrong_magic(void **state) {
    (void)state;
    static const uint8_t png[16] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    expect_bad(png, sizeof png, "not a slim checkpoint");
    expect_bad((const uint8_t *)"SLIM", 4, NULL); /* a prefix of the magic */
    expect_bad((const uint8_t *)"SLAM", 4, "not a slim checkpoint");
    slim_ckpt *ck = make_small();
    size_t len;
    uint8_t *b = encode(ck, &len);
    slim_ckpt_free(ck);
    b[7] = 'X';
    fix_crc(b, len);
    expect_bad(b, len, "not a slim checkpoint");
    free(b);
}

static void edit_version2(uint8_t *b, size_t len) {
    (void)len;
    wr32(b + HDR_VERSION, 2);
}
static void edit_version0(uint8_t *b, size_t len) {
    (void)len;
    wr32(b + HDR_VERSION, 0);
}

static void test_newer_version(void **state) {
    (void)state;
    expect_bad_edit(edit_version2, "written by a newer slim (version 2)");
    expect_bad_edit(edit_version0, "unsupported format version 0");
    /* Even a short file from a newer slim says so, rather than "truncated". */
    uint8_t head[12] = {'S', 'L', 'I', 'M', 'C', 'K', 'P', 'T', 7, 0, 0, 0};
    expect_bad(head, sizeof head, "newer slim (version 7)");
}

/* ---- hostile sizes and offsets (valid checksum) ------------------------ */

static void e_tensor_count_2_31(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_TABLE), 0x80000000u);
}
static void e_tensor_count_cap(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_TABLE), 65537);
}
static void e_tensor_count_plus1(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_TABLE), 3);
}
static void e_dim_2_31(uint8_t *b, size_t n) {
    (void)n;
    wr32(entry(b, 0) + ENT_SHAPE, 0x80000000u);
}
static void e_dim_0(uint8_t *b, size_t n) {
    (void)n;
    wr32(entry(b, 0) + ENT_SHAPE + 4, 0);
}
static void e_dims_overflow(uint8_t *b, size_t n) {
    (void)n;
    uint8_t *e = entry(b, 0);
    wr32(e + ENT_NDIM, 4);
    for (int d = 0; d < 4; d++)
        wr32(e + ENT_SHAPE + 4 * d, 0x7fffffffu);
}
static void e_ndim_0(uint8_t *b, size_t n) {
    (void)n;
    wr32(entry(b, 0) + ENT_NDIM, 0);
}
static void e_ndim_5(uint8_t *b, size_t n) {
    (void)n;
    wr32(entry(b, 0) + ENT_NDIM, 5);
}
static void e_unused_dim(uint8_t *b, size_t n) {
    (void)n;
    wr32(entry(b, 0) + ENT_SHAPE + 12, 1); /* a 2-D tensor's fourth dim */
}
static void e_nbytes_wrong(uint8_t *b, size_t n) {
    (void)n;
    wr64(entry(b, 0) + ENT_NBYTES, 44);
}
static void e_nbytes_huge(uint8_t *b, size_t n) {
    (void)n;
    wr64(entry(b, 0) + ENT_NBYTES, UINT64_MAX);
}
static void e_text_2_62(uint8_t *b, size_t n) {
    (void)n;
    wr64(b + sec_len_off(SEC_TEXT), 1ull << 62);
}
static void e_data_len_huge(uint8_t *b, size_t n) {
    (void)n;
    wr64(b + sec_len_off(SEC_DATA), UINT64_MAX - 100);
}
static void e_section_overlap(uint8_t *b, size_t n) {
    (void)n;
    wr64(b + HDR_DIR + 16 * SEC_META, sec_off(b, SEC_TEXT)); /* meta on top of the text */
}
static void e_offset_past_end(uint8_t *b, size_t n) {
    wr64(entry(b, 1) + ENT_OFFSET, (uint64_t)n + 64 * 4);
}
static void e_offset_wraps(uint8_t *b, size_t n) {
    (void)n;
    wr64(entry(b, 1) + ENT_OFFSET, UINT64_MAX - 63);
}
static void e_offset_unaligned(uint8_t *b, size_t n) {
    (void)n;
    uint8_t *e = entry(b, 0);
    wr64(e + ENT_OFFSET, rd64(e + ENT_OFFSET) + 4);
}
static void e_offset_in_table(uint8_t *b, size_t n) {
    (void)n;
    wr64(entry(b, 0) + ENT_OFFSET, sec_off(b, SEC_TABLE) / 64 * 64);
}
static void e_overlap(uint8_t *b, size_t n) {
    (void)n;
    wr64(entry(b, 1) + ENT_OFFSET, rd64(entry(b, 0) + ENT_OFFSET)); /* 12 B over 48 B */
}
static void e_dup_name(uint8_t *b, size_t n) {
    (void)n;
    memcpy(entry(b, 1), entry(b, 0), 64);
}
static void e_name_unterminated(uint8_t *b, size_t n) {
    (void)n;
    memset(entry(b, 0), 'a', 64);
}
static void e_name_control(uint8_t *b, size_t n) {
    (void)n;
    entry(b, 0)[2] = 0x07;
}
static void e_name_empty(uint8_t *b, size_t n) {
    (void)n;
    memset(entry(b, 0), 0, 64);
}
static void e_name_padding(uint8_t *b, size_t n) {
    (void)n;
    entry(b, 0)[63] = 'x';
}
static void e_flags(uint8_t *b, size_t n) {
    (void)n;
    wr32(entry(b, 0) + ENT_FLAGS, 6);
}
static void e_dtype(uint8_t *b, size_t n) {
    (void)n;
    wr32(entry(b, 0) + ENT_DTYPE, 1);
}
static void e_export_with_optim(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + HDR_KIND, SLIM_CKPT_EXPORT);
}
static void e_kind(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + HDR_KIND, 3);
}
static void e_hdr_flags(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + HDR_FLAGS, 1);
}
static void e_hdr_reserved(uint8_t *b, size_t n) {
    (void)n;
    b[HDR_SIZE - 1] = 1;
}
static void e_file_size_bigger(uint8_t *b, size_t n) { wr64(b + HDR_FILE_SIZE, (uint64_t)n + 1); }
static void e_file_size_2_63(uint8_t *b, size_t n) {
    (void)n;
    wr64(b + HDR_FILE_SIZE, 1ull << 63);
}
static void e_file_size_smaller(uint8_t *b, size_t n) { wr64(b + HDR_FILE_SIZE, (uint64_t)n - 1); }
static void e_meta_count_2_31(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_META), 0x80000000u);
}
static void e_meta_count_fits_cap(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_META), 60000); /* under the cap, over the bytes */
}
static void e_meta_key_len_huge(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_META) + 4, 0xffffffffu);
}
static void e_meta_value_len_huge(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_META) + 4 + 4 + 4, 0xfffffff0u); /* after key "data" */
}
static void e_meta_key_space(uint8_t *b, size_t n) {
    (void)n;
    b[sec_off(b, SEC_META) + 8] = ' ';
}
static void e_text_nul(uint8_t *b, size_t n) {
    (void)n;
    b[HDR_SIZE + 3] = 0;
}
static void e_text_bad_utf8(uint8_t *b, size_t n) {
    (void)n;
    b[HDR_SIZE + 3] = 0xc0; /* an overlong lead byte */
}
static void e_rng_count(uint8_t *b, size_t n) {
    (void)n;
    wr32(b + sec_off(b, SEC_POS) + 4, 0x80000000u);
}
static void e_rng_even(uint8_t *b, size_t n) {
    (void)n;
    uint8_t *inc = b + sec_off(b, SEC_POS) + 16 + 8;
    wr64(inc, rd64(inc) & ~1ull);
}

typedef struct hostile_case {
    edit_fn edit;
    const char *want;
} hostile_case;

static void test_hostile_fields(void **state) {
    (void)state;
    static const hostile_case cases[] = {
        {e_tensor_count_2_31, "2147483648 tensors (at most 65536)"},
        {e_tensor_count_cap, "65537 tensors (at most 65536)"},
        {e_tensor_count_plus1, "3 tensors need"},
        {e_dim_2_31, "dimension 0 is 2147483648"},
        {e_dim_0, "dimension 1 is 0"},
        {e_dims_overflow, "overflows"},
        {e_ndim_0, "0 dimensions"},
        {e_ndim_5, "5 dimensions"},
        {e_unused_dim, "unused dimension 3"},
        {e_nbytes_wrong, "44 bytes declared"},
        {e_nbytes_huge, "bytes declared"},
        {e_text_2_62, "model text section needs 4611686018427387904 bytes"},
        {e_data_len_huge, "tensor data section needs"},
        {e_section_overlap, "overlaps"},
        {e_offset_past_end, "outside the data section"},
        {e_offset_wraps, "outside the data section"},
        {e_offset_unaligned, "not a multiple of 64"},
        {e_offset_in_table, "outside the data section"},
        {e_overlap, "overlap"},
        {e_dup_name, "two tensors are named \"fc.weight\""},
        {e_name_unterminated, "not NUL-terminated"},
        {e_name_control, "byte 0x07"},
        {e_name_empty, "empty name"},
        {e_name_padding, "after its name"},
        {e_flags, "unknown flags"},
        {e_dtype, "unknown data type"},
        {e_export_with_optim, "optimizer state in an exported model"},
        {e_kind, "unknown kind 3"},
        {e_hdr_flags, "header flags"},
        {e_hdr_reserved, "reserved"},
        {e_file_size_bigger, "truncated"},
        {e_file_size_2_63, "truncated"},
        {e_file_size_smaller, "after the declared end"},
        {e_meta_count_2_31, "2147483648 entries (at most 65536)"},
        {e_meta_count_fits_cap, "60000 entries but"},
        {e_meta_key_len_huge, "key length 4294967295"},
        {e_meta_value_len_huge, "runs past"},
        {e_meta_key_space, "byte 0x20"},
        {e_text_nul, "not valid UTF-8"},
        {e_text_bad_utf8, "not valid UTF-8"},
        {e_rng_count, "2147483648 RNG states"},
        {e_rng_even, "even increment"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_bad_edit(cases[i].edit, cases[i].want);
}

/* Random multi-byte damage with a recomputed checksum: the reader never
 * crashes or leaks, and whatever it accepts, the writer accepts too (the
 * reader admits nothing the format does not allow). */
static void test_random_damage(void **state) {
    (void)state;
    slim_ckpt *ck = make_small();
    size_t len;
    uint8_t *orig = encode(ck, &len);
    slim_ckpt_free(ck);
    uint8_t *b = malloc(len);
    assert_non_null(b);
    slim_rng rng;
    slim_rng_seed(&rng, 2024, 5);
    int accepted = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(b, orig, len);
        int edits = 1 + (int)slim_rng_below(&rng, 4);
        for (int k = 0; k < edits; k++) {
            size_t at = slim_rng_below(&rng, (uint32_t)(len - 4));
            switch (slim_rng_below(&rng, 4)) {
            case 0: b[at] = (uint8_t)slim_rng_u32(&rng); break;
            case 1:
                if (at + 4 <= len - 4) wr32(b + at, slim_rng_u32(&rng));
                break;
            case 2:
                if (at + 4 <= len - 4) wr32(b + at, 0xffffffffu >> slim_rng_below(&rng, 32));
                break;
            default: b[at] ^= (uint8_t)(1u << slim_rng_below(&rng, 8)); break;
            }
        }
        fix_crc(b, len);
        slim_ckpt *out = NULL;
        slim_status st = slim_ckpt_read_memory(b, len, "r.ckpt", &out);
        if (st == SLIM_OK) {
            accepted++;
            void *again;
            size_t again_len;
            assert_int_equal(slim_ckpt_encode(out, &again, &again_len), SLIM_OK);
            free(again);
            slim_ckpt_free(out);
        } else {
            assert_int_equal(st, SLIM_ERR_FORMAT);
            assert_null(out);
        }
    }
    /* Edits to tensor values and padding are legitimate, so some pass. */
    assert_true(accepted > 0);
    free(b);
    free(orig);
}

/* ---- the building API --------------------------------------------------- */

static void test_api_checks(void **state) {
    (void)state;
    assert_null(slim_ckpt_new(3));
    slim_ckpt *ck = slim_ckpt_new(SLIM_CKPT_EXPORT);
    assert_non_null(ck);
    int s2[2] = {2, 3}, s0[2] = {2, 0};
    float x[6] = {0, 1, 2, 3, 4, 5};
    char long_name[80];
    memset(long_name, 'n', 64);
    long_name[64] = '\0';
    assert_int_equal(slim_ckpt_add_tensor(ck, "", 2, s2, x, 0), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_add_tensor(ck, long_name, 2, s2, x, 0), SLIM_ERR_ARG);
    long_name[63] = '\0'; /* 63 bytes is the longest allowed */
    assert_int_equal(slim_ckpt_add_tensor(ck, long_name, 2, s2, x, 0), SLIM_OK);
    assert_int_equal(slim_ckpt_add_tensor(ck, "has space", 2, s2, x, 0), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_add_tensor(ck, "w", 0, s2, x, 0), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_add_tensor(ck, "w", 5, s2, x, 0), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_add_tensor(ck, "w", 2, s0, x, 0), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_add_tensor(ck, "w", 2, s2, x, 1), SLIM_ERR_ARG); /* export */
    assert_int_equal(slim_ckpt_add_tensor(ck, "w", 2, s2, x, 0), SLIM_OK);
    assert_int_equal(slim_ckpt_add_tensor(ck, "w", 2, s2, x, 0), SLIM_ERR_ARG); /* duplicate */
    assert_int_equal(ck->n_tensors, 2);
    const slim_ckpt_tensor *t = slim_ckpt_find(ck, "w");
    assert_non_null(t);
    assert_int_equal(t->numel, 6);
    assert_memory_equal(t->data, x, sizeof x);

    assert_int_equal(slim_ckpt_set_meta(ck, "", "v"), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_set_meta(ck, "a key", "v"), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_set_meta(ck, "k", "\xff"), SLIM_ERR_ARG);
    assert_int_equal(slim_ckpt_set_meta(ck, "k", "one"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_meta(ck, "k", "two"), SLIM_OK); /* replaces */
    assert_int_equal(ck->n_meta, 1);
    assert_string_equal(slim_ckpt_get_meta(ck, "k"), "two");
    assert_int_equal(slim_ckpt_set_text(ck, "ok \xe2\x82\xac"), SLIM_OK);
    assert_int_equal(slim_ckpt_set_text(ck, "bad \xed\xa0\x80"), SLIM_ERR_ARG); /* surrogate */
    assert_int_equal(slim_ckpt_set_text(ck, "bad \xe2\x82"), SLIM_ERR_ARG);     /* cut short */
    assert_string_equal(ck->model_text, "ok \xe2\x82\xac");

    const char *bad_name = "x";
    assert_int_equal(slim_ckpt_all_finite(ck, &bad_name), 1);
    assert_null(bad_name);
    ck->tensors[1].data[4] = NAN;
    assert_int_equal(slim_ckpt_all_finite(ck, &bad_name), 0);
    assert_string_equal(bad_name, "w");
    ck->tensors[1].data[4] = -INFINITY;
    assert_int_equal(slim_ckpt_all_finite(ck, NULL), 0);
    slim_ckpt_free(ck);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_bit_exact),
        cmocka_unit_test(test_roundtrip_export_and_empty),
        cmocka_unit_test(test_write_replaces),
        cmocka_unit_test(test_write_missing_dir),
        cmocka_unit_test(test_write_failure_keeps_old),
        cmocka_unit_test(test_read_odd_files),
        cmocka_unit_test(test_truncation_every_length),
        cmocka_unit_test(test_every_byte_flip),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_newer_version),
        cmocka_unit_test(test_hostile_fields),
        cmocka_unit_test(test_random_damage),
        cmocka_unit_test(test_api_checks),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
