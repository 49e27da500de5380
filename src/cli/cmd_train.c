/* slim train: options -> slim_train_config -> slim_train. */
#include "cli/cli.h"

#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "slim/dist.h"
#include "slim/measure.h"
#include "slim/model_io.h"
#include "slim/train.h"

static struct {
    const char *model, *data, *schedule, *backend, *penalty, *progress, *out, *resume, *init;
    const char *resize, *val, *cost, *target_macs, *target_params, *target_latency, *latency_from;
    const char *bn_sync;
    int64_t epochs, batch, limit, test_limit, seed, threads, cache_mib, workers, dist_check,
        live_after;
    double lr, momentum, weight_decay, lambda, crop_scale, val_split;
    int augment, flip, quiet, skip_bad, live_prune, budget_trim;
} a;

#define STR_(x) #x
#define STR(x) STR_(x)

static cli_opt opts[] = {
    {"model", CLI_STRING, "FILE", NULL,
     "Model file (.net, see models/) to train from a fresh initialisation. Required unless "
     "--resume or --init gives the model.",
     NULL, 0, &a.model, 0},
    {"data", CLI_STRING, "SPEC", "fashion-mnist",
     "Training data: fashion-mnist (the Debian package), or a directory holding IDX files, the "
     "CIFAR-10 binary version, or an image folder root/<class>/*.png|jpg|jpeg of pictures of "
     "any size (root/train and root/test when present; else see --val-split and --val). With "
     "--init, the default is the checkpoint's data.",
     NULL, 0, &a.data, 0},
    {"val-split", CLI_FLOAT, "F", "0",
     "For an image folder without train/ and test/: hold out the fraction F (0 < F < 1) of "
     "each class as the test split, chosen by --seed (stratified, deterministic). 0 = off: "
     "the test split is then the training pictures, with a warning. Recorded in the "
     "checkpoint, so slim eval, prune and report use exactly the held-out pictures.",
     NULL, 0, &a.val_split, 0},
    {"val", CLI_STRING, "DIR", NULL,
     "A separate image folder DIR/<class>/... as the test split (its classes must be among the "
     "training folder's). Recorded in the checkpoint.",
     NULL, 0, &a.val, 0},
    {"resize", CLI_CHOICE, NULL, "crop",
     "How a picture becomes the model's input size: crop (scale it, keeping the aspect, until it "
     "covers the input times --crop-scale, then cut out the centre: torchvision's Resize + "
     "CenterCrop), stretch (scale each side, aspect not kept), pad (scale the longer side to "
     "fit, centre on black), none (a picture of another size is an error). Triangle "
     "(antialiased bilinear) filter. Recorded in the checkpoint and every export.",
     CLI_RESIZE_CHOICES, 0, &a.resize, 0},
    {"crop-scale", CLI_FLOAT, "F", "1",
     "With --resize crop: scale the shorter side to F times the input before cutting out the "
     "centre (F >= 1; torchvision's ImageNet evaluation uses 256/224 = 1.143). Recorded.",
     NULL, 0, &a.crop_scale, 0},
    {"cache-mib", CLI_INT, "N", "2048",
     "Image folders: keep at most N MiB of decoded pictures (bytes at the model's input size) "
     "in memory and decode the others on the fly, in --workers threads that prefetch the next "
     "batches. 0 = decode every picture on the fly. The results are bit for bit the same "
     "whatever N.",
     NULL, 0, &a.cache_mib, 0},
    {"workers", CLI_INT, "N", "2",
     "Image folders: threads decoding pictures (at load, and on the fly beyond --cache-mib); "
     "1 to 64.",
     NULL, 0, &a.workers, 0},
    {"skip-bad", CLI_FLAG, NULL, NULL,
     "Image folders: leave out pictures that cannot be read (corrupt, truncated, empty, "
     "absurdly large) and print how many at the end of loading, instead of stopping at the "
     "first one. Recorded in the checkpoint.",
     NULL, 0, &a.skip_bad, 0},
    {"epochs", CLI_INT, "N", "1",
     "Total epochs of the run. With --resume: the new total, to extend a finished run (the "
     "schedule is then computed over the new total from the resumed step on); omitted, the "
     "saved total.",
     NULL, 0, &a.epochs, 0},
    {"batch", CLI_INT, "N", "128", "Mini-batch size (> 0).", NULL, 0, &a.batch, 0},
    {"lr", CLI_FLOAT, "X", "0.05", "Base learning rate (> 0).", NULL, 0, &a.lr, 0},
    {"schedule", CLI_CHOICE, NULL, "cosine",
     "Learning-rate schedule: constant; step (x0.1 at 50% and 75% of the run); cosine (annealed "
     "to 0 over the run, stepped every batch).",
     "constant|step|cosine", 0, &a.schedule, 0},
    {"momentum", CLI_FLOAT, "X", "0.9", "SGD momentum (0 <= X < 1).", NULL, 0, &a.momentum, 0},
    {"weight-decay", CLI_FLOAT, "X", "5e-4",
     "Weight decay, COUPLED L2 as in PyTorch's SGD (X*w is added to the gradient, so momentum "
     "carries it). Applies to conv/dense weights and biases, and to BN gamma and beta unless a "
     "gamma penalty is on: then BN gets no weight decay, because decay on gamma would change the "
     "proximal step (the prox of lambda|g| + X/2 g^2 is a scaled soft-threshold, not the exact "
     "one that makes gammas reach zero).",
     NULL, 0, &a.weight_decay, 0},
    {"limit", CLI_INT, "N", "0", "Train on the first N images only (0 = all).", NULL, 0, &a.limit,
     0},
    {"test-limit", CLI_INT, "N", "0",
     "Evaluate after each epoch on the first N test images only (0 = all).", NULL, 0, &a.test_limit,
     0},
    {"augment", CLI_FLAG, NULL, NULL,
     "IDX and CIFAR-10: random crop with padding (2 pixels below 32x32 images, 4 from 32x32 "
     "up). Image folders: random-resized crop (a window of 35% to 100% of the area, aspect "
     "3/4 to 4/3, resized back to the input; torchvision's 8% minimum is meant for large "
     "photos). Then, see --flip, random horizontal flips. The rule is recorded in the "
     "checkpoint (augment.rule).",
     NULL, 0, &a.augment, 0},
    {"flip", CLI_FLAG, NULL, "auto",
     "With --augment: flip images horizontally at random. auto = on for colour data, off for "
     "gray (Fashion-MNIST garments are not mirror images of each other).",
     NULL, 1, &a.flip, 0},
    {"seed", CLI_INT, "S", "0",
     "Seed of the one random generator (initialisation, shuffling, augmentation) and of "
     "--val-split. The same seed and thread count give the same run.",
     NULL, 0, &a.seed, 0},
    {"threads", CLI_INT, "N", "2", "Threads for oneDNN and OpenBLAS (0 = one per processor).", NULL,
     0, &a.threads, 0},
    {"backend", CLI_CHOICE, NULL, "fast",
     "Kernels: fast (oneDNN + OpenBLAS) or ref (plain C reference kernels, slow).", "ref|fast", 0,
     &a.backend, 0},
    {"penalty", CLI_CHOICE, NULL, "none",
     "Sparsity penalty lambda*P added to the loss and applied by its proximal step after each "
     "SGD step: gamma-l1 (|gamma| of every BN scale, soft-threshold: gammas reach exactly 0), "
     "weight-l1 (|w| of conv/dense weights), filter-l1 (L2 norm of each conv filter, whole "
     "filters reach 0), gamma-l1-subgrad (the Network Slimming baseline: lambda*sign(gamma) "
     "added to the gradient, no exact zeros).",
     "none|gamma-l1|weight-l1|filter-l1|gamma-l1-subgrad", 0, &a.penalty, 0},
    {"lambda", CLI_FLOAT, "X", "0",
     "Penalty strength (>= 0). A positive lambda without --penalty is an error (it would do "
     "nothing); a penalty with lambda 0 gives a warning.",
     NULL, 0, &a.lambda, 0},
    {"cost", CLI_CHOICE, NULL, "uniform",
     "What a channel costs in a gamma penalty lambda * sum_j c_j |gamma_j|: uniform (c_j = 1), "
     "macs or params (what the channel accounts for in the model threshold-0 pruning would "
     "give: its filters, its BN, the input slices reading it, counted with the channels "
     "still alive, normalised to mean 1; recomputed 8 times per epoch), latency (likewise, "
     "the batch-1 latency it accounts for in a table of each conv and dense layer timed at a "
     "few widths on slim's runtime on this machine, measured once at the start, in seconds, "
     "and kept in the checkpoint; see --latency-from). The prox threshold becomes lr * lambda "
     "* c_j.",
     "uniform|macs|params|latency", 0, &a.cost, 0},
    {"target-macs", CLI_STRING, "X", NULL,
     "A MACs budget for the model threshold-0 pruning gives at the end of training: a "
     "percentage of the unpruned model's (15%) or a count (4.5M, 120k). Needs --penalty "
     "gamma-l1; lambda is then adapted 8 times per epoch, aiming to land within 90-100% of the "
     "budget (--lambda, optional, is the start). docs/SPARSITY.md has the controller and how "
     "reliably it lands.",
     NULL, 0, &a.target_macs, 0},
    {"target-params", CLI_STRING, "X", NULL, "Like --target-macs, for the parameter count.", NULL,
     0, &a.target_params, 0},
    {"target-latency", CLI_STRING, "T", NULL,
     "Like --target-macs, for the batch-1 latency the latency table (see --cost latency) "
     "predicts for the pruned model on this machine: a time (40us, 1.5ms) or a percentage of "
     "the unpruned model's (25%). The table predicts the convs and dense layers; the rest of "
     "the model is a constant measured once (docs/SPARSITY.md, \"Latency cost\").",
     NULL, 0, &a.target_latency, 0},
    {"budget-trim", CLI_FLAG, NULL, "on",
     "With a target, once the controller's plan has landed (70% of the run's summed learning "
     "rate): if the model threshold-0 pruning gives is above the budget, zero the gammas of "
     "the fewest channels with the smallest |gamma| / c_j that bring it within; once within "
     "90-100% of the budget, freeze the structure (a gamma at 0 stays 0) and set lambda to 0, "
     "so that the rest of the run fine-tunes the channels kept; at the end, a model still "
     "above the budget is trimmed the same way. slim prune at threshold 0 then gives a model "
     "within the budget; the summary says what was zeroed. --no-budget-trim leaves lambda to "
     "the controller to the end.",
     NULL, 1, &a.budget_trim, 0},
    {"latency-from", CLI_STRING, "CKPT", NULL,
     "With --cost latency or --target-latency: take the latency table from CKPT (a run of "
     "the same model that had one) instead of measuring it, e.g. to compare runs on one "
     "table.",
     NULL, 0, &a.latency_from, 0},
    {"live-prune", CLI_FLAG, NULL, "auto",
     "Remove, while training, every channel whose gamma (every gamma of its dependency group) "
     "has been exactly 0 for --live-prune-after steps, by slim prune's exact fold: the network "
     "computes the same function, and the steps after it are cheaper. A removed channel cannot "
     "come back. auto = on with --penalty gamma-l1 and lambda > 0, without --cost or "
     "--target; with those it must be asked for (a budget's controller relaxes lambda to let "
     "channels return, which removed ones cannot). docs/SPARSITY.md has the rule.",
     NULL, 1, &a.live_prune, 0},
    {"live-prune-after", CLI_INT, "K", STR(SLIM_LIVE_PRUNE_AFTER),
     "With --live-prune: the steps a gamma must stay exactly 0 before its channel goes "
     "(checked every ceil(K/4) steps).",
     NULL, 0, &a.live_after, 0},
    {"progress", CLI_CHOICE, NULL, "auto",
     "Progress on stderr: bar (redrawn in place), plain (a log line every few seconds), auto = "
     "bar on a terminal, plain otherwise.",
     "auto|bar|plain", 0, &a.progress, 0},
    {"quiet", CLI_FLAG, NULL, NULL, "No progress or per-epoch lines, only the final summary.", NULL,
     0, &a.quiet, 0},
    {"out", CLI_STRING, "RUN.ckpt", NULL,
     "Checkpoint to write (atomically, after every epoch and on Ctrl-C); per-epoch metrics go "
     "beside it as RUN.csv. Required, except with --resume, where it defaults to the resumed "
     "file.",
     NULL, 0, &a.out, 0},
    {"resume", CLI_STRING, "RUN.ckpt", NULL,
     "Continue the run saved in RUN.ckpt exactly where it stopped (mid-epoch after Ctrl-C). "
     "Every setting comes from the checkpoint (model, data, batch, lr, schedule, momentum, "
     "weight decay, limits, augmentation, seed, backend, penalty, lambda) except --epochs "
     "(when given, to extend the run) and --threads; other options given here are ignored "
     "with a warning. The metrics are appended to the CSV beside --out.",
     NULL, 0, &a.resume, 0},
    {"init", CLI_STRING, "CKPT", NULL,
     "Start from the weights (and BN statistics) of CKPT with fresh optimizer state and a new "
     "schedule, e.g. to fine-tune a pruned model; the settings come from this command line, "
     "and the penalty can stay on. Except: the input normalisation is CKPT's (its weights "
     "expect it), and without --data the data is CKPT's, with its split (so fine-tuning never "
     "trains on the pictures CKPT held out), resizing and --skip-bad unless given here.",
     NULL, 0, &a.init, 0},
    {"bn-sync", CLI_CHOICE, NULL, "on",
     "Under mpirun (data-parallel: each global batch of --batch split over the ranks): on = "
     "batch norm's statistics over the whole global batch, so N ranks compute what one process "
     "does; off = each rank's share on its own (PyTorch DDP's default; the checkpoint holds "
     "rank 0's running statistics). Not recorded: a resumed run may choose again.",
     "on|off", 0, &a.bn_sync, 0},
    {"dist-check", CLI_INT, "N", "0",
     "Under mpirun: compare every rank's parameters (a checksum) every N steps, an error "
     "naming the rank that differs; 0 = at epoch ends only (debug builds: every step).",
     NULL, 0, &a.dist_check, 0},
};

static cli_spec spec = {
    "train",
    "slim train --model M.net --out RUN.ckpt [options]\n"
    "       slim train --resume RUN.ckpt [--epochs N] [--out RUN.ckpt]\n"
    "       slim train --init PRUNED.ckpt --out RUN.ckpt [options]",
    "Trains a model with SGD (momentum, coupled weight decay) on the smooth loss, then applies "
    "the penalty's proximal step. Saves a checkpoint after every epoch and on Ctrl-C (then exit "
    "status 130: continue with --resume). Prints one line per epoch and a final summary.",
    opts,
    sizeof opts / sizeof opts[0],
    0,
    0,
    "Exit status: 0 done, 1 failed (e.g. diverged: the last checkpoint stays intact), 2 usage "
    "error, 130 interrupted and saved.",
};

/* Options that --resume takes from the checkpoint, so giving them is a
 * mistake worth a warning. */
static const char *const resume_ignored[] = {
    "model",          "data",
    "batch",          "lr",
    "schedule",       "momentum",
    "weight-decay",   "limit",
    "test-limit",     "augment",
    "flip",           "seed",
    "backend",        "penalty",
    "lambda",         "init",
    "resize",         "crop-scale",
    "val-split",      "val",
    "skip-bad",       "cost",
    "target-macs",    "target-params",
    "live-prune",     "live-prune-after",
    "target-latency", "latency-from",
};

static double target_value;
static int target_fraction;

/* --target-macs / --target-params / --target-latency: which one (0 none),
 * its value parsed. */
static int check_target(const char *cmd, int *which) {
    int r = cli_parse_target(cmd, a.target_macs, a.target_params, a.target_latency, which,
                             &target_value, &target_fraction);
    if (r != CLI_EXIT_OK || !*which) return r;
    if (strcmp(a.penalty, "gamma-l1") != 0)
        return cli_usage_error(cmd, "--target-%s needs --penalty gamma-l1 (got %s)",
                               slim_cost_name((slim_cost)*which), a.penalty);
    return CLI_EXIT_OK;
}

/* slim_train_config.latency_table: --latency-from's table, else one
 * measured now. */
static slim_status latency_table(void *ctx, const slim_model *m, slim_latency_table *out) {
    (void)ctx;
    if (a.latency_from) {
        slim_ckpt *ck = NULL;
        SLIM_TRY(slim_ckpt_read(a.latency_from, &ck));
        slim_status st = slim_latency_table_load(ck, a.latency_from, m, out);
        slim_ckpt_free(ck);
        return st;
    }
    /* Each process would time its own table, and the ranks' penalties
     * would differ. */
    if (slim_dist_size() > 1)
        return slim_error(SLIM_ERR_ARG, "under mpirun, a latency table must come from a "
                                        "checkpoint (--latency-from CKPT)");
    double t0 = slim_clock_s();
    SLIM_TRY(slim_latency_table_measure(m, out));
    if (!a.quiet)
        fprintf(stderr,
                "latency table: %d-point grids timed in %.1f s (%d threads, %s); the model: "
                "%.1f us predicted, of which %.1f us outside the table\n",
                SLIM_LATENCY_POINTS, slim_clock_s() - t0, out->threads, out->isa,
                slim_latency_model_us(out, m), out->rest_us);
    return SLIM_OK;
}

static int validate(void) {
    const char *cmd = spec.command;
    int r;
    if (a.resume && a.init) return cli_usage_error(cmd, "--resume and --init cannot be combined");
    if (!a.out && !a.resume) return cli_usage_error(cmd, "--out RUN.ckpt is required");
    if (!a.resume && !a.init && !a.model)
        return cli_usage_error(cmd, "--model M.net is required (or --resume / --init)");
    if (a.init && a.model)
        return cli_usage_error(cmd, "--model and --init cannot be combined (--init gives the "
                                    "model and its weights)");
    if (a.epochs <= 0 || a.epochs > 1000000)
        return cli_usage_error(cmd, "--epochs must be between 1 and 1000000, got %" PRId64,
                               a.epochs);
    if (a.dist_check < 0 || a.dist_check > INT32_MAX)
        return cli_usage_error(cmd, "--dist-check must be between 0 and 2^31-1, got %" PRId64,
                               a.dist_check);
    if (a.threads < 0 || a.threads > 4096)
        return cli_usage_error(cmd, "--threads must be between 0 and 4096, got %" PRId64,
                               a.threads);
    if (a.cache_mib < 0 || a.cache_mib > (int64_t)1 << 40)
        return cli_usage_error(cmd, "--cache-mib must be between 0 and 2^40, got %" PRId64,
                               a.cache_mib);
    if (a.workers < 1 || a.workers > SLIM_DATA_MAX_WORKERS)
        return cli_usage_error(cmd, "--workers must be between 1 and %d, got %" PRId64,
                               SLIM_DATA_MAX_WORKERS, a.workers);
    if (a.resume) {
        for (size_t i = 0; i < sizeof resume_ignored / sizeof resume_ignored[0]; i++)
            if (cli_given(&spec, resume_ignored[i]))
                cli_warn("--%s is ignored with --resume (the run's settings come from %s)",
                         resume_ignored[i], a.resume);
        return CLI_EXIT_OK;
    }
    if (a.batch <= 0 || a.batch > 1 << 20)
        return cli_usage_error(cmd, "--batch must be between 1 and 1048576, got %" PRId64, a.batch);
    if (!(a.lr > 0)) return cli_usage_error(cmd, "--lr must be > 0, got %g", a.lr);
    if (!(a.momentum >= 0 && a.momentum < 1))
        return cli_usage_error(cmd, "--momentum must be in [0, 1), got %g", a.momentum);
    if (!(a.weight_decay >= 0))
        return cli_usage_error(cmd, "--weight-decay must be >= 0, got %g", a.weight_decay);
    if (a.limit < 0) return cli_usage_error(cmd, "--limit must be >= 0, got %" PRId64, a.limit);
    if (a.test_limit < 0)
        return cli_usage_error(cmd, "--test-limit must be >= 0, got %" PRId64, a.test_limit);
    if (a.seed < 0) return cli_usage_error(cmd, "--seed must be >= 0, got %" PRId64, a.seed);
    if (!(a.lambda >= 0)) return cli_usage_error(cmd, "--lambda must be >= 0, got %g", a.lambda);
    if (!(a.val_split >= 0 && a.val_split < 1))
        return cli_usage_error(cmd, "--val-split must be in [0, 1), got %g", a.val_split);
    if (a.val_split > 0 && a.val)
        return cli_usage_error(cmd, "--val-split and --val cannot be combined (--val names the "
                                    "test split)");
    if (!(a.crop_scale >= 1 && a.crop_scale <= 16))
        return cli_usage_error(cmd, "--crop-scale must be between 1 and 16, got %g", a.crop_scale);
    if (a.lambda > 0 && strcmp(a.penalty, "none") == 0)
        return cli_usage_error(cmd,
                               "--lambda %g does nothing without a penalty: add --penalty "
                               "gamma-l1 (or weight-l1, filter-l1, gamma-l1-subgrad)",
                               a.lambda);
    if (strcmp(a.cost, "uniform") != 0 && strncmp(a.penalty, "gamma-l1", 8) != 0)
        return cli_usage_error(cmd,
                               "--cost %s needs a gamma penalty (--penalty gamma-l1 or "
                               "gamma-l1-subgrad; got %s)",
                               a.cost, a.penalty);
    if (a.lambda == 0 && strcmp(a.penalty, "none") != 0 && !a.target_macs && !a.target_params &&
        !a.target_latency)
        cli_warn("--penalty %s with --lambda 0 does nothing", a.penalty);
    int which;
    if ((r = check_target(cmd, &which)) != CLI_EXIT_OK) return r;
    if (a.latency_from && strcmp(a.cost, "latency") != 0 && which != SLIM_COST_LATENCY)
        return cli_usage_error(cmd, "--latency-from needs --cost latency or --target-latency");
    if (a.flip >= 0 && !a.augment) cli_warn("--flip/--no-flip does nothing without --augment");
    if (cli_given(&spec, "budget-trim") && !which)
        cli_warn("--budget-trim/--no-budget-trim does nothing without --target-macs, "
                 "--target-params or --target-latency");
    if (a.live_after < 1 || a.live_after > 1 << 24)
        return cli_usage_error(
            cmd, "--live-prune-after must be between 1 and 16777216, got %" PRId64, a.live_after);
    if (a.live_prune > 0 && strncmp(a.penalty, "gamma-l1", 8) != 0)
        return cli_usage_error(
            cmd, "--live-prune needs a gamma penalty (--penalty gamma-l1; got %s)", a.penalty);
    return CLI_EXIT_OK;
}

/* slim_train's state (train.h). While its loop runs, Ctrl-C asks it to stop
 * and save; outside the loop (loading data, tearing down) Ctrl-C ends the
 * program as usual. */
static volatile sig_atomic_t train_state = SLIM_TRAIN_IDLE;
static void on_sigint(int sig) {
    if (train_state == SLIM_TRAIN_IDLE) {
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    train_state = SLIM_TRAIN_STOP;
}

int cmd_train(int argc, char **argv) {
    int n_pos, r = cli_parse(&spec, argc, argv, &n_pos);
    if (r != CLI_PARSE_OK) return r == CLI_PARSE_HELP ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    if ((r = validate()) != CLI_EXIT_OK) return r;

    slim_train_config cfg;
    slim_train_config_default(&cfg);
    cfg.resize = SLIM_RESIZE_CROP;
    slim_resize_mode_parse(a.resize, &cfg.resize);
    cfg.crop_scale = a.crop_scale;
    cfg.val_split = a.val_split;
    cfg.val_dir = a.val;
    cfg.skip_bad = a.skip_bad;
    cfg.streaming = 1;
    cfg.cache_mib = (size_t)a.cache_mib;
    cfg.workers = (int)a.workers;

    /* --init: unless --data is given, train on the data the checkpoint was
     * trained on (its class count), with the split, resizing and bad-picture
     * rule it records unless given here: fine-tuning must not train on the
     * pictures the first run held out. */
    slim_ckpt *init_ck = NULL;
    if (a.init && !cli_given(&spec, "data")) {
        slim_model *m = NULL;
        slim_data_options o = {0};
        if (cli_load_model(a.init, 0, &m, &init_ck) != SLIM_OK ||
            slim_train_data_options(init_ck, a.init, m->layers[0].c, 1, &o) != SLIM_OK) {
            slim_model_free(m);
            slim_ckpt_free(init_ck);
            return cli_fail();
        }
        slim_model_free(m);
        const char *d = slim_ckpt_get_meta(init_ck, "data");
        if (d) a.data = d;
        if (!cli_given(&spec, "resize")) cfg.resize = o.resize;
        if (!cli_given(&spec, "crop-scale") && o.crop_scale > 0) cfg.crop_scale = o.crop_scale;
        if (!cli_given(&spec, "val-split") && !cli_given(&spec, "val")) {
            cfg.val_split = o.val_split;
            cfg.split_seed = o.split_seed;
            cfg.split_seed_given = o.val_split > 0;
            cfg.val_dir = o.val_dir;
        }
        if (!cli_given(&spec, "skip-bad")) cfg.skip_bad = o.skip_bad;
    }

    cfg.model = a.model;
    cfg.data = a.data;
    /* 0 tells slim_train to keep the resumed run's total. */
    cfg.epochs = a.resume && !cli_given(&spec, "epochs") ? 0 : (int)a.epochs;
    cfg.batch = (int)a.batch;
    cfg.lr = (float)a.lr;
    slim_schedule_parse(a.schedule, &cfg.schedule);
    cfg.momentum = (float)a.momentum;
    cfg.weight_decay = (float)a.weight_decay;
    cfg.limit = (size_t)a.limit;
    cfg.test_limit = (size_t)a.test_limit;
    cfg.augment = a.augment;
    cfg.flip = a.flip;
    cfg.seed = (uint64_t)a.seed;
    cfg.threads = (int)a.threads;
    cfg.backend = cli_backend(a.backend);
    slim_penalty_parse(a.penalty, &cfg.penalty);
    cfg.lambda = (float)a.lambda;
    slim_cost_parse(a.cost, &cfg.cost);
    if (!a.resume) check_target(spec.command, &cfg.target);
    cfg.target_value = target_value;
    cfg.target_fraction = target_fraction;
    cfg.latency_table = latency_table;
    cfg.out = a.out ? a.out : a.resume;
    cfg.resume = a.resume;
    cfg.init = a.init;
    cfg.progress = strcmp(a.progress, "bar") == 0 ? 1 : strcmp(a.progress, "plain") == 0 ? 0 : -1;
    cfg.quiet = a.quiet;
    cfg.bn_sync = strcmp(a.bn_sync, "off") != 0;
    if (cli_given(&spec, "dist-check")) cfg.dist_check = (int)a.dist_check;
    cfg.live_prune = a.live_prune;
    cfg.budget_trim = a.budget_trim;
    cfg.live_prune_after = (int)a.live_after;

    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART; /* file writes in progress are not cut short */
    sigemptyset(&sa.sa_mask);
    train_state = SLIM_TRAIN_IDLE;
    cfg.stop = &train_state;
    sigaction(SIGINT, &sa, &old);
    slim_train_summary sum;
    slim_status st = slim_train(&cfg, &sum);
    sigaction(SIGINT, &old, NULL);
    slim_ckpt_free(init_ck);
    if (st != SLIM_OK) return cli_fail();
    if (slim_dist_rank() != 0) /* under mpirun, rank 0 reports */
        return sum.interrupted ? CLI_EXIT_INTERRUPTED : CLI_EXIT_OK;
    if (sum.interrupted) {
        fprintf(stderr,
                "slim: interrupted after step %" PRIu64 "; %s is saved. Continue with:\n"
                "  slim train --resume %s\n",
                sum.steps, cfg.out, cfg.out);
        return CLI_EXIT_INTERRUPTED;
    }
    if (sum.epochs_done == 0 && a.resume) {
        printf("nothing to train: %s has completed all its epochs (%" PRIu64
               " steps); extend it with --epochs N\n",
               a.resume, sum.steps);
        return CLI_EXIT_OK;
    }
    char metrics[4096];
    slim_train_metrics_path(cfg.out, metrics, sizeof metrics);
    printf("done at epoch %d, step %" PRIu64 ": train loss %.4f, test accuracy %.2f%%, "
           "gamma zero %d/%d, %.0f img/s; saved %s (metrics %s)\n",
           sum.epochs_done, sum.steps, sum.train_loss, 100.0 * sum.test_accuracy, sum.gamma_zero,
           sum.gamma_total, sum.images_per_s, cfg.out, metrics);
    if (sum.live_prune_after > 0)
        printf("live pruning (after %d steps at 0): %d channels removed while training, %d "
               "left; %.2f s spent removing\n",
               sum.live_prune_after, sum.live_removed, sum.live_channels, sum.live_seconds);
    if (sum.guard_cuts > 0)
        printf("budget landing: above the budget when the plan landed; %d cut%s back to it "
               "zeroed %d channels\n",
               sum.guard_cuts, sum.guard_cuts == 1 ? "" : "s", sum.guard_channels);
    if (sum.trim_channels > 0 || sum.trim_unreachable) {
        const char *unit = sum.target == SLIM_COST_LATENCY  ? " us"
                           : sum.target == SLIM_COST_PARAMS ? " params"
                                                            : " MACs";
        if (sum.trim_unreachable)
            printf("budget trim: the model pruning gives has %.4g%s, %.2f%% of the budget; no "
                   "trim of whole channels meets it, nothing zeroed\n",
                   sum.trim_before, unit, 100 * sum.trim_before / sum.budget);
        else
            printf("budget trim: the model pruning gives had %.4g%s, %.2f%% of the budget; "
                   "zeroed the gammas of %d channel%s (%d gammas, |gamma| / c_j <= %.3g, "
                   "sum |gamma| %.4g) to meet it\n",
                   sum.trim_before, unit, 100 * sum.trim_before / sum.budget, sum.trim_channels,
                   sum.trim_channels == 1 ? "" : "s", sum.trim_gammas, sum.trim_score,
                   sum.trim_mass);
    }
    if (sum.budget > 0 && sum.target == SLIM_COST_LATENCY) {
        double got = sum.pruned.latency_us, full = sum.pruned.full_latency_us;
        printf("budget: pruned at threshold 0 the model has a predicted batch-1 latency of %.1f "
               "us, %.2f%% of the budget %.1f us (%.2f%% of the unpruned %.1f us); lambda %.4g\n",
               got, 100 * got / sum.budget, sum.budget, 100 * got / full, full, sum.lambda);
    } else if (sum.budget > 0) {
        int params = sum.target == SLIM_COST_PARAMS;
        double got = params ? sum.pruned.params : sum.pruned.macs;
        double full = params ? sum.pruned.full_params : sum.pruned.full_macs;
        printf("budget: pruned at threshold 0 the model has %.4g %s, %.2f%% of the budget %.4g "
               "(%.2f%% of the unpruned %.4g); lambda %.4g\n",
               got, params ? "params" : "MACs", 100 * got / sum.budget, sum.budget,
               100 * got / full, full, sum.lambda);
    }
    return CLI_EXIT_OK;
}
