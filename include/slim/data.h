/* slim data: data sets held in memory, their loaders, augmentation and
 * batching.
 *
 * A slim_dataset holds every image of one split (train or test), NCHW, with
 * one int32 label per image, in one of two forms:
 *   - bytes (`pixels`, `images` NULL): what every loader makes. The raw
 *     pixel bytes are kept and normalised only when images are copied out
 *     (slim_dataset_gather, slim_batcher_next, slim_dataset_read): a quarter
 *     of the memory of floats (a training run's largest item of memory).
 *     The copy
 *     goes through a 256-entry table per channel holding exactly the floats
 *     the formula below gives, so the batches are bit for bit those of a
 *     float copy.
 *   - floats (`images`, `pixels` NULL): slim_dataset_new, for tests and
 *     synthetic data ("memory" data sets); the values are used as they are.
 * Code that wants a whole split as normalised floats (comparisons, speed
 * runs over the test set) calls slim_dataset_to_floats() once; code that
 * walks it calls slim_dataset_read() batch by batch. Loading happens once at
 * start-up; after that a training step only copies images into a
 * caller-owned batch buffer (slim_batcher) and augments them in place
 * (slim_augment_batch), so the steady state allocates nothing.
 *
 * Normalisation. A pixel byte p (0..255) of channel k becomes
 *     x = (p / 255 - mean[k]) / std[k]
 * computed in double (from the float mean[k] and std[k]) and rounded once to
 * float. mean/std are recorded in the data set so that an exported model can
 * apply the same transform:
 *   - Fashion-MNIST            mean 0.2860, std 0.3530
 *   - MNIST (other IDX)        mean 0.1307, std 0.3081
 *   - CIFAR-10                 mean (0.4914, 0.4822, 0.4465),
 *                              std  (0.2470, 0.2435, 0.2616)
 *   - image folders            computed from the train split's pictures as
 *                              the model sees them (decoded, resized in the
 *                              eval-mode way, before augmentation): per
 *                              channel, the mean and the population standard
 *                              deviation of p / 255 over every pixel of
 *                              every picture when the split has at most
 *                              SLIM_DATA_STATS_SAMPLE pictures, else of a
 *                              sample of that many (chosen from split_seed).
 *                              Counted in a 256-bin histogram per channel,
 *                              so the result does not depend on the order of
 *                              the pictures; a channel whose values are all
 *                              equal gets std 1. The test split gets the
 *                              *train split's* statistics: when it is loaded
 *                              without have_norm, slim_data_load loads the
 *                              train split too to compute them (callers that
 *                              hold the train split pass its mean/std with
 *                              have_norm and save that decoding).
 * slim_data_options.have_norm replaces the statistics of every kind (e.g.
 * with those a checkpoint recorded). slim_data_normalisation (for callers
 * with neither data nor checkpoint) keeps the fixed rule, 0.5 / 0.5 for an
 * image folder.
 *
 * What `--data SPEC` means (slim_data_load), tried in this order:
 *   1. "" / NULL / "fashion-mnist": the Debian package dataset-fashion-mnist,
 *      SLIM_FASHION_MNIST_DIR (/usr/share/datasets/fashion-mnist).
 *   2. Otherwise SPEC must be a directory, and
 *      a. it holds train-images-idx3-ubyte[.gz] or t10k-images-idx3-ubyte[.gz]:
 *         an IDX (MNIST-format) folder. Fashion-MNIST's statistics and class
 *         names are used when the path contains "fashion" (any case), MNIST's
 *         statistics and the names "0".."9" otherwise.
 *      b. it (or its subdirectory cifar-10-batches-bin/) holds data_batch_1.bin
 *         or test_batch.bin: the CIFAR-10 binary version.
 *      c. anything else: an image folder, root/<class>/<picture>.png|jpg|jpeg,
 *         whose splits are, in this order:
 *         - val_dir given: the train split is root (root/train when that
 *           exists), the test split is val_dir (val_dir/test when that
 *           exists), with the train split's classes;
 *         - root/train/ exists: the train split is root/train and the test
 *           split root/test (which must then exist); val_split is then an
 *           error (the folder is split already);
 *         - val_split in (0, 1): both splits are drawn from root, stratified:
 *           in each class (pictures sorted by name, so readdir's order does
 *           not matter) a shuffle seeded by (split_seed, class index) puts
 *           round(val_split * n) of its n pictures (at least 1 when n >= 2,
 *           at most n - 1) in the test split and the rest in the train
 *           split. A class of one picture stays in the train split. The same
 *           options give complementary train and test sets;
 *         - otherwise both splits are root itself and a warning says so (test
 *           accuracy is then accuracy on the training images).
 *         Through slim_data_load an image folder must have at least 2
 *         classes (a classifier needs them).
 *
 * Image folders: the classes are the subdirectories, sorted by name (byte
 * order), label = position in that list; the test split takes the train
 * split's class list, and a test class unknown to the train split is an
 * error. A class subdirectory without pictures is an error naming it when
 * the folder defines the classes (the train split), a warning when it
 * borrows them (the test split). Names starting with '.' are skipped; other
 * files without a .png/.jpg/.jpeg name are ignored and counted (n_ignored,
 * one log line). Only root/<class>/<file> is read, never deeper, so a
 * directory symlink cycle cannot make loading loop; an entry that cannot be
 * read (a symlink loop, a dangling symlink, no permission, a directory
 * named x.png) is a bad picture. A bad picture (unreadable, empty, not a PNG
 * or JPEG by its first bytes, corrupt or truncated, declaring more than
 * SLIM_DATA_MAX_PIXELS pixels, which is refused before anything is
 * allocated for it) is an error naming the file, or with skip_bad is left
 * out and counted (n_skipped, one log line at the end of loading).
 *
 * Pictures. PNG is decoded with stb_image (PNG only, after a chunk check
 * that refuses truncated or oversized data), JPEG with libjpeg-turbo (stb's
 * JPEG decoder had memory-safety bugs under fuzzing, docs/RELIABILITY.md);
 * both are converted to the requested channel count (gray -> RGB
 * replicates, RGB -> gray uses luma (77 r + 150 g + 29 b) >> 8, alpha is
 * dropped, a missing alpha channel reads 255; an EXIF orientation is not
 * applied, as PIL's Image.open does not), then resized to the model's
 * h x w by the data set's slim_resize_mode with stb_image_resize (v0.97,
 * Debian's libstb-dev): triangle filter (STBIR_FILTER_TRIANGLE: bilinear,
 * widened when shrinking, i.e. PIL's / torchvision's antialiased bilinear),
 * edge pixels clamped, bytes resampled as they are (linear, no sRGB
 * conversion), rounded to bytes. A picture already h x w whose mode maps it
 * onto itself (crop with crop_scale 1, stretch, pad) is copied unchanged.
 */
#ifndef SLIM_DATA_H
#define SLIM_DATA_H

#include "slim/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLIM_DATA_MAX_CHANNELS 4
#define SLIM_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
/* Declared IDX image counts above this are refused before anything is
 * allocated for them. */
#define SLIM_DATA_MAX_IMAGES 10000000u
/* A picture whose header declares more pixels (height x width) than this is
 * refused before it is decoded: 8192 x 8192. */
#define SLIM_DATA_MAX_PIXELS (8192ull * 8192ull)
/* Image-folder statistics use at most this many pictures (data.h's top). */
#define SLIM_DATA_STATS_SAMPLE 10000

/* How a picture of any size becomes the model's h x w (image folders and
 * single pictures). */
typedef enum slim_resize_mode {
    /* The default: scale (keeping the aspect) so that the picture covers
     * (crop_scale h) x (crop_scale w), then take the centre h x w:
     * torchvision's Resize(round(crop_scale * side)) + CenterCrop(side) for
     * a square input. The crop is centred exactly (a fraction of a source
     * pixel where torchvision rounds to a whole one). */
    SLIM_RESIZE_CROP = 0,
    SLIM_RESIZE_STRETCH, /* scale each side to h x w (the aspect is not kept) */
    /* Scale (keeping the aspect) so that the longer side fits: the picture
     * becomes round(s src_h) x round(s src_w) for s = min(h / src_h,
     * w / src_w), placed at row (h - that height) / 2 and column
     * (w - that width) / 2 (rounded down) on black (raw 0). */
    SLIM_RESIZE_PAD,
    SLIM_RESIZE_NONE, /* no resizing: a picture that is not h x w is an error */
} slim_resize_mode;
/* "crop", "stretch", "pad" or "none" ("?" for a value out of range). */
const char *slim_resize_mode_name(slim_resize_mode m);
/* The mode named s (a name above); an error listing the choices otherwise. */
slim_status slim_resize_mode_parse(const char *s, slim_resize_mode *m);
/* The default crop_scale: the centre crop is the whole shorter side.
 * torchvision's ImageNet evaluation (Resize(256) + CenterCrop(224)) is
 * 256 / 224 = 1.143. */
#define SLIM_DATA_CROP_SCALE 1.0

/* ---- data sets -------------------------------------------------------- */

typedef struct slim_dataset {
    uint8_t *pixels;    /* pixels: (n, c, h, w) raw bytes, or NULL (float data set) */
    float *images;      /* images: (n, c, h, w) normalised, or NULL (byte data set) */
    int32_t *labels;    /* labels: (n), each in [0, n_classes) */
    size_t n;           /* number of images */
    int c, h, w;        /* image shape; c in 1..SLIM_DATA_MAX_CHANNELS */
    int n_classes;      /* number of classes (a model's output width) */
    char **class_names; /* (n_classes) names, or NULL when unknown */
    float mean[SLIM_DATA_MAX_CHANNELS]; /* (c) x = (p/255 - mean) / std */
    float std[SLIM_DATA_MAX_CHANNELS];  /* (c) */
    const char *kind;                   /* "idx", "cifar10", "imagefolder" or "memory" */
    char *source;                       /* the file or directory the split came from */
    /* Image folders: how the pictures were resized (crop_scale resolved:
     * SLIM_DATA_CROP_SCALE when the options said 0; every other kind leaves
     * both 0, i.e. the defaults) and, for a folder split by val_split, the
     * rule (val_split 0 otherwise), so that evaluation and export can repeat
     * them. */
    slim_resize_mode resize;
    double crop_scale;
    double val_split;
    uint64_t split_seed;
    size_t n_skipped; /* bad pictures left out (skip_bad) */
    size_t n_ignored; /* files that are not pictures, ignored */
    /* ---- decode cache and streaming (stream.c) ---- */
    /* Decodes images [K, n) when they are asked for, where `pixels` holds
     * only images [0, K); NULL (every image in pixels or images) unless the
     * data set was loaded with streaming and did not fit the cache. */
    struct slim_data_store *store;
} slim_dataset;

/* A zero-filled float data set of n images (for tests and synthetic data):
 * `images` allocated, `pixels` NULL, mean 0, std 1, no class names, kind
 * "memory". n may be 0. */
slim_status slim_dataset_new(size_t n, int c, int h, int w, int n_classes, slim_dataset **out);
/* Frees everything the data set owns. NULL is allowed. */
void slim_dataset_free(slim_dataset *ds);
/* Copies images idx[0..count) into x: (count, c, h, w), normalised, and
 * their labels into y: (count) (y may be NULL). Indices must be < ds->n.
 * No allocation, but for streamed pictures (ds->store), which are decoded
 * here unless prefetched, and whose decode errors are returned. */
slim_status slim_dataset_gather(const slim_dataset *ds, const uint32_t *idx, size_t count, float *x,
                                int32_t *y);
/* Copies images first..first+count-1 into x: (count, c, h, w), normalised.
 * The range must lie within the data set. As gather for streamed pictures
 * (and it asks for the next `count` to be prefetched). */
slim_status slim_dataset_read(const slim_dataset *ds, size_t first, size_t count, float *x);
/* Turns a byte data set into a float one: allocates `images` with every
 * image normalised and frees `pixels` (peak memory: both at once) and the
 * store. Nothing to do for a float data set. On failure the data set is
 * unchanged. */
slim_status slim_dataset_to_floats(slim_dataset *ds);
/* lut[k][p] = (p / 255 - mean[k]) / std[k] for k < ds->c, in double and
 * rounded once to float: the values a byte data set's pixels stand for. */
void slim_dataset_lut(const slim_dataset *ds, float lut[SLIM_DATA_MAX_CHANNELS][256]);

/* ---- loaders ---------------------------------------------------------- */

typedef struct slim_data_options {
    /* The model's input shape. 0 accepts what the data holds (for an image
     * folder: the first image's size; 1 channel if it is gray, 3 otherwise).
     * A non-zero value the data does not match is an error (SLIM_ERR_SHAPE). */
    int c, h, w;
    /* Keep at most this many images (0 = all), for quick runs. IDX and
     * CIFAR-10 keep the first `limit` images of the split (after the whole
     * file has been validated); an image folder, whose order is sorted by
     * class, keeps the evenly spaced images floor(k * n / limit) of the n
     * pictures of its split (after val_split) so that every class stays
     * represented, and decodes only those. */
    size_t limit;
    /* All of the following are 0 for the defaults. */
    slim_resize_mode resize; /* image folders */
    double crop_scale;       /* SLIM_RESIZE_CROP: 0 = SLIM_DATA_CROP_SCALE; else must be >= 1 */
    /* In (0, 1): the fraction of each class of an image folder without
     * train/ and test/ that forms the test split (the top of this file);
     * 0 = off. */
    double val_split;
    uint64_t split_seed; /* the split's shuffles; also the statistics' sample */
    const char *val_dir; /* a separate image folder for the test split, or NULL */
    /* 1: normalise with mean/std below (e.g. a checkpoint's) whatever the
     * kind of data; 0: the kind's rule (the top of this file). */
    int have_norm;
    float mean[SLIM_DATA_MAX_CHANNELS], std[SLIM_DATA_MAX_CHANNELS];
    /* 1: leave bad pictures out, counted in n_skipped; 0: the first one is
     * an error naming it. */
    int skip_bad;
    /* ---- decode cache and streaming (image folders) ----
     * streaming 0 (default): every picture is decoded at load, as bytes of
     * the model's input size, and kept in memory. 1: only the first
     * K = floor(cache_mib * 2^20 / (c h w)) pictures (in data set order) are
     * kept; the others are decoded again whenever a batch needs them, by
     * `workers` decode threads that prefetch the next batches (slim_batcher)
     * while the current one trains. Either way every picture is decoded once
     * at load, so a bad one is found then, and the bytes handed out are the
     * same: training is bit for bit the same in both modes. The command line
     * always streams, with --cache-mib (default SLIM_DATA_CACHE_MIB; 0 =
     * decode every picture on the fly). */
    int streaming;
    size_t cache_mib;
    int workers; /* decode threads at load and for prefetching; 0 = SLIM_DATA_WORKERS */
} slim_data_options;

#define SLIM_DATA_CACHE_MIB 2048 /* the command line's default --cache-mib */
#define SLIM_DATA_WORKERS 2      /* decode threads when slim_data_options.workers is 0 */
#define SLIM_DATA_MAX_WORKERS 64

/* Resolves `spec` as described at the top and loads the train split
 * (train != 0) or the test split. opts may be NULL (all defaults). */
slim_status slim_data_load(const char *spec, int train, const slim_data_options *opts,
                           slim_dataset **out);

/* The normalisation rule above for data named by `spec`, for a model of c
 * input channels: fills mean, std: (c) and returns the kind whose statistics
 * they are, "fashion-mnist", "mnist", "cifar-10", or "image-folder" (0.5,
 * also when the kind's statistics have another channel count). An existing
 * directory is inspected like slim_data_load does; a path not on this
 * machine is judged by its name ("mnist", "fashion", "cifar", any case). */
const char *slim_data_normalisation(const char *spec, int c, float *mean, float *std);

/* One pair of IDX files (MNIST format), gzip-compressed or not. images_path
 * must hold magic 0x00000803 (ubyte, 3-D: n x rows x cols), labels_path magic
 * 0x00000801 (ubyte, 1-D: n); the counts must agree, the files must end
 * exactly where their headers say, and every label must be < 10. The result
 * has c = 1, n_classes = 10, no class names, holds the pixel bytes, and
 * is normalised with the scalar mean/std when copied out. A declared size
 * is believed only as far as the bytes actually read: memory grows with the
 * data, never with the header. */
slim_status slim_data_load_idx(const char *images_path, const char *labels_path, float mean,
                               float std, slim_dataset **out);

/* The CIFAR-10 binary version in `dir`: data_batch_1.bin .. data_batch_5.bin
 * (train) or test_batch.bin (test), each a sequence of 3073-byte records
 * (label byte < 10, then 1024 R, 1024 G, 1024 B bytes of a 32x32 image).
 * Class names come from batches.meta.txt when present (its first 10
 * non-empty lines), the standard names otherwise. */
slim_status slim_data_load_cifar10(const char *dir, int train, const slim_data_options *opts,
                                   slim_dataset **out);

/* One image folder dir/<class>/<picture>.png|jpg|jpeg, as one data set: no
 * train/test logic (opts->val_split and val_dir are not looked at), and one
 * class is enough. class_names: when NULL the classes are dir's sorted
 * subdirectories; when given (n_classes of them, e.g. the train split's)
 * labels index that list and a subdirectory not in it is an error.
 * Pictures are resized by opts->resize; normalised with opts' mean/std when
 * have_norm, else with the folder's own statistics (the top of this file).
 * A folder without pictures, or a bad picture without skip_bad, is an error
 * naming it. */
slim_status slim_data_load_imagefolder(const char *dir, const char *const *class_names,
                                       int n_classes, const slim_data_options *opts,
                                       slim_dataset **out);

/* Decodes one picture file into x: (c, h, w), resized by the default mode
 * (SLIM_RESIZE_CROP, SLIM_DATA_CROP_SCALE) and normalised with mean/std (c
 * values each), for inference on a single picture. */
slim_status slim_data_load_image(const char *path, int c, int h, int w, const float *mean,
                                 const float *std, float *x);
/* slim_data_load_image with the resize mode and crop_scale given (0 =
 * SLIM_DATA_CROP_SCALE), e.g. those a checkpoint recorded. */
slim_status slim_data_load_image_ex(const char *path, int c, int h, int w, slim_resize_mode resize,
                                    double crop_scale, const float *mean, const float *std,
                                    float *x);
/* The same for a picture already decoded: px: (src_h, src_w, src_c)
 * interleaved bytes, src_c 1 (gray) or 3 (RGB), converted to c channels by
 * the decoders' rules (the top of this file), resized by `resize` (0 =
 * crop; crop_scale 0 = SLIM_DATA_CROP_SCALE) and normalised into x:
 * (c, h, w). */
slim_status slim_data_pixels_to_input(const uint8_t *px, int src_h, int src_w, int src_c, int c,
                                      int h, int w, slim_resize_mode resize, double crop_scale,
                                      const float *mean, const float *std, float *x);

/* ---- augmentation ----------------------------------------------------- */

/* Two kinds, both followed by a random horizontal flip when `flip`:
 *   - SLIM_AUGMENT_PAD_CROP (IDX, CIFAR-10): random crop with padding, as
 *     torchvision's RandomCrop(size, padding=pad) + RandomHorizontalFlip().
 *     The padding is a black pixel (raw value 0, as torchvision pads before
 *     normalising), i.e. fill[k] = (0 - mean[k]) / std[k] in normalised
 *     space.
 *   - SLIM_AUGMENT_RRC (image folders): random-resized crop on the h x w
 *     picture (already resized to the model's input), as torchvision's
 *     RandomResizedCrop(size, scale=(scale_min, scale_max),
 *     ratio=(aspect_min, aspect_max)): a window of a random area fraction
 *     and aspect (width / height) is cut out and resized back to h x w with
 *     stb_image_resize on the floats (the triangle filter of the pictures,
 *     edges clamped at the window). The default scale_min is
 *     SLIM_AUGMENT_RRC_SCALE_MIN, not torchvision's 0.08: that value is
 *     meant for photos of hundreds of pixels cut to 224; on a 32x32 or 64x64
 *     input 8% of the area is a 9x9 or 18x18 patch blown up four times,
 *     mostly blur that no longer shows the object. */
typedef enum slim_augment_mode {
    SLIM_AUGMENT_PAD_CROP = 0,
    SLIM_AUGMENT_RRC,
} slim_augment_mode;
#define SLIM_AUGMENT_RRC_SCALE_MIN 0.35
#define SLIM_AUGMENT_RRC_ASPECT_MIN (3.0 / 4.0)
#define SLIM_AUGMENT_RRC_ASPECT_MAX (4.0 / 3.0)

typedef struct slim_augment {
    int pad;                            /* PAD_CROP: crop padding in pixels; 0 = no crop */
    int flip;                           /* 1 = flip with probability 1/2 */
    float fill[SLIM_DATA_MAX_CHANNELS]; /* (c) normalised value of a black pixel */
    slim_augment_mode mode;
    double scale_min, scale_max;   /* RRC: the window's area as a fraction of h w */
    double aspect_min, aspect_max; /* RRC: the window's width / height */
    void *scratch;                 /* RRC: working memory (slim_augment_free); owned, so
                                      an RRC slim_augment is not copied */
} slim_augment;

/* PAD_CROP: sets pad and flip, and fill from the data set's mean/std. */
slim_status slim_augment_init(slim_augment *aug, const slim_dataset *ds, int pad, int flip);
/* RRC with scale [scale_min, 1] (0 = SLIM_AUGMENT_RRC_SCALE_MIN; must be in
 * (0, 1]) and aspect [SLIM_AUGMENT_RRC_ASPECT_MIN, _MAX]; the fields may be
 * changed afterwards (0 < scale_min <= scale_max <= 1, 0 < aspect_min <=
 * aspect_max). Allocates scratch for ds's image size: free with
 * slim_augment_free. */
slim_status slim_augment_init_rrc(slim_augment *aug, const slim_dataset *ds, double scale_min,
                                  int flip);
/* Frees the scratch memory (nothing for PAD_CROP); aug may be reused only
 * after another init. */
void slim_augment_free(slim_augment *aug);
/* Augments x: (n, c, h, w) in place. Per image, in this order:
 *   PAD_CROP: oy = rng_below(2*pad+1), ox = rng_below(2*pad+1) when pad > 0,
 *     then rng_below(2) when flip (1 = flip); nothing is drawn when pad == 0
 *     and flip == 0, which is the identity. No allocation.
 *   RRC: up to 10 attempts, each drawing u = rng_uniform (area fraction
 *     scale_min + (scale_max - scale_min) u) and v = rng_uniform (aspect
 *     exp(log aspect_min + (log aspect_max - log aspect_min) v)); the window
 *     is cw = round(sqrt(area h w aspect)) by ch = round(sqrt(area h w /
 *     aspect)); the first attempt that fits (1 <= cw <= w, 1 <= ch <= h)
 *     draws its top row rng_below(h - ch + 1) then its left column
 *     rng_below(w - cw + 1). When none fits, the window is the whole image
 *     (nothing more is drawn). Then rng_below(2) when flip. The scratch
 *     memory grows to what the largest window needs and then stays (no
 *     allocation once every window size has been seen). */
slim_status slim_augment_batch(const slim_augment *aug, float *x, int n, int c, int h, int w,
                               slim_rng *rng);
/* The deterministic pieces, x: (c, h, w) in place. Crop at offset (oy, ox)
 * of the image padded by `pad`: out[y][x] = in[y + oy - pad][x + ox - pad],
 * or fill[k] where that falls outside. */
void slim_augment_crop(float *x, int c, int h, int w, int pad, int oy, int ox, const float *fill);
/* out[y][x] = in[y][w - 1 - x]. */
void slim_augment_flip(float *x, int c, int h, int w);
/* The window of ch x cw pixels at (top, left) resized to the whole h x w (the
 * RRC step; the identity for the whole image). aug must be an RRC one (its
 * scratch). */
slim_status slim_augment_resized_crop(const slim_augment *aug, float *x, int c, int h, int w,
                                      int top, int left, int ch, int cw);

/* ---- batching --------------------------------------------------------- */

/* Where a batcher stands, for checkpoints. The order of an epoch is a pure
 * function of order_rng (the caller's rng state when the epoch began), so
 * saving this struct and restoring it with slim_batcher_seek() continues the
 * epoch exactly. */
typedef struct slim_batcher_pos {
    uint64_t epoch;     /* epochs begun so far (1 during the first epoch) */
    uint64_t index;     /* samples already handed out in this epoch */
    slim_rng order_rng; /* rng state the epoch's shuffle started from */
} slim_batcher_pos;

typedef struct slim_batcher {
    const slim_dataset *ds; /* borrowed */
    uint32_t *order;        /* order: (ds->n) sample indices of this epoch */
    size_t batch;           /* batch size (the last batch may be smaller) */
    int shuffle;            /* 0: order is 0..n-1 every epoch */
    slim_batcher_pos pos;
    /* The status of the last slim_batcher_next (SLIM_OK, or a streamed
     * picture that could not be decoded; slim_last_error() says which). */
    slim_status error;
} slim_batcher;

slim_status slim_batcher_init(slim_batcher *b, const slim_dataset *ds, size_t batch, int shuffle);
void slim_batcher_free(slim_batcher *b);
/* Starts an epoch: order = 0..n-1, shuffled with slim_rng_shuffle(rng) when
 * shuffling (rng may be NULL otherwise). Records rng's prior state. */
void slim_batcher_begin_epoch(slim_batcher *b, slim_rng *rng);
/* Copies the next batch into x: (batch, c, h, w), normalised, and
 * y: (batch) and returns how many samples it holds: b->batch, fewer for the
 * last (partial) batch, 0 when the epoch is over. Also 0 when a streamed
 * picture cannot be decoded (a file removed after loading): b->error says
 * so; callers on streamed data use slim_batcher_next_checked. */
size_t slim_batcher_next(slim_batcher *b, float *x, int32_t *y);
/* slim_batcher_next returning the decode error of a streamed data set (the
 * position does not move then); *count as slim_batcher_next returns it.
 * On a streamed data set it first asks the store to decode the next two
 * batches' pictures in its threads. */
slim_status slim_batcher_next_checked(slim_batcher *b, float *x, int32_t *y, size_t *count);
/* Number of batches in an epoch: ceil(n / batch). */
size_t slim_batcher_num_batches(const slim_batcher *b);
/* Restores a position saved from b->pos (same data set and batch size). */
slim_status slim_batcher_seek(slim_batcher *b, const slim_batcher_pos *pos);

#ifdef __cplusplus
}
#endif
#endif
