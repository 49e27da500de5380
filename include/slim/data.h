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
 *   - image folders            mean 0.5, std 0.5 in every channel (maps
 *                              [0, 255] to [-1, 1]; no statistics of an
 *                              unknown data set are assumed)
 *
 * What `--data SPEC` means (slim_data_load), tried in this order:
 *   1. "" / NULL / "fashion-mnist": the Debian package dataset-fashion-mnist,
 *      SLIM_FASHION_MNIST_DIR (/usr/share/datasets/fashion-mnist).
 *   2. Otherwise SPEC must be a directory, and
 *      a. it holds train-images-idx3-ubyte[.gz] or t10k-images-idx3-ubyte[.gz]:
 *         an IDX (MNIST-format) folder. Fashion-MNIST's statistics and class
 *         names are used when the path contains "fashion" (any case), MNIST's
 *         statistics and the names "0".."9" otherwise. (Computing the
 *         statistics from the data would make the test split depend on
 *         loading the train split; a fixed rule is simpler and reproducible.)
 *      b. it (or its subdirectory cifar-10-batches-bin/) holds data_batch_1.bin
 *         or test_batch.bin: the CIFAR-10 binary version.
 *      c. anything else: an image folder, root/<class>/<image>.png|jpg|jpeg.
 *         When root/train/ exists, the train split is root/train and the test
 *         split root/test (which must then exist); otherwise both splits are
 *         root itself and a warning says so (test accuracy is then accuracy on
 *         the training images).
 *
 * Image folders: the classes are the subdirectories, sorted by name (byte
 * order), label = position in that list; the test split takes the train
 * split's class list, and a test class unknown to the train split is an
 * error. Files with other extensions and names starting with '.' are
 * ignored. PNG is decoded with stb_image (PNG only, after a chunk check that
 * refuses truncated or oversized data), JPEG with libjpeg-turbo (stb's JPEG
 * decoder had memory-safety bugs under fuzzing, docs/RELIABILITY.md); both
 * are converted to the requested channel count (gray -> RGB replicates,
 * RGB -> gray uses luma (77 r + 150 g + 29 b) >> 8, alpha is dropped). Images are never resized:
 * one whose size differs from the expected h x w is an error naming the file and both sizes.
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
     * class, keeps the evenly spaced images floor(k * n / limit) so that
     * every class stays represented, and decodes only those. */
    size_t limit;
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

/* One image folder dir/<class>/<image>.png|jpg|jpeg (no train/test logic).
 * class_names: when NULL the classes are dir's sorted subdirectories; when
 * given (n_classes of them, e.g. the train split's) labels index that list
 * and a subdirectory not in it is an error. Normalised with mean = std = 0.5.
 * An empty folder, an unreadable or corrupt image, or a size mismatch is an
 * error naming the file. */
slim_status slim_data_load_imagefolder(const char *dir, const char *const *class_names,
                                       int n_classes, const slim_data_options *opts,
                                       slim_dataset **out);

/* Decodes one image file into x: (c, h, w), normalised with mean/std (c
 * values each), for inference on a single picture. Size mismatch is an
 * error (no resizing). */
slim_status slim_data_load_image(const char *path, int c, int h, int w, const float *mean,
                                 const float *std, float *x);

/* ---- augmentation ----------------------------------------------------- */

/* Random crop with padding, then random horizontal flip, as torchvision's
 * RandomCrop(size, padding=pad) + RandomHorizontalFlip(). The padding is a
 * black pixel (raw value 0, as torchvision pads before normalising), i.e.
 * fill[k] = (0 - mean[k]) / std[k] in normalised space. */
typedef struct slim_augment {
    int pad;                            /* crop padding in pixels; 0 = no crop */
    int flip;                           /* 1 = flip with probability 1/2 */
    float fill[SLIM_DATA_MAX_CHANNELS]; /* (c) normalised value of a black pixel */
} slim_augment;

/* Sets pad and flip, and fill from the data set's mean/std. */
slim_status slim_augment_init(slim_augment *aug, const slim_dataset *ds, int pad, int flip);
/* Augments x: (n, c, h, w) in place. Per image, in this order, it draws
 * oy = rng_below(2*pad+1), ox = rng_below(2*pad+1) when pad > 0, then
 * rng_below(2) when flip (1 = flip); nothing is drawn when pad == 0 and
 * flip == 0, which is the identity. No allocation. */
slim_status slim_augment_batch(const slim_augment *aug, float *x, int n, int c, int h, int w,
                               slim_rng *rng);
/* The deterministic pieces, x: (c, h, w) in place. Crop at offset (oy, ox)
 * of the image padded by `pad`: out[y][x] = in[y + oy - pad][x + ox - pad],
 * or fill[k] where that falls outside. */
void slim_augment_crop(float *x, int c, int h, int w, int pad, int oy, int ox, const float *fill);
/* out[y][x] = in[y][w - 1 - x]. */
void slim_augment_flip(float *x, int c, int h, int w);

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
