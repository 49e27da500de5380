/* Private to src/train: numeric settings and the augmentation rule a
 * checkpoint records (src/train/data_meta.c). */
#ifndef SLIM_TRAIN_INTERNAL_H
#define SLIM_TRAIN_INTERNAL_H

#include "slim/ckpt.h"
#include "slim/train.h"

/* Setting `key` := v printed with fmt (a form that reads back as needed). */
slim_status train_set_meta_num(slim_ckpt *ck, const char *key, const char *fmt, double v);
/* *out := setting `key` as a number; missing or not a number is
 * SLIM_ERR_FORMAT naming path and the key. */
slim_status train_meta_num(const slim_ckpt *ck, const char *path, const char *key, double *out);

/* augment.rule for aug: "pad-crop <pad>" or "rrc scale=<min>-<max>
 * ratio=<min>-<max>", each number in the shortest form that reads back
 * exactly (so a resumed run draws the same windows). */
void train_augment_rule(const slim_augment *aug, char *buf, size_t len);
/* Sets up aug for ds from such a rule (flip as given); a rule that does not
 * parse is SLIM_ERR_FORMAT naming path and the key. */
slim_status train_augment_from_rule(const char *rule, const char *path, const slim_dataset *ds,
                                    int flip, slim_augment *aug);

/* Peak RSS: reset to the current RSS (start of an epoch), and read in
 * MiB since (0 where /proc is missing). src/train/rss.c. */
void train_rss_reset_peak(void);
double train_rss_peak_mib(void);

#endif
