/* slim nn: the model graph.
 *
 * A model is a list of layers in topological order (each layer's inputs come
 * before it). Layer 0 is always the input layer. Each layer refers to its
 * inputs by index; the last layer's output is the logits. Parameters
 * (trainable) live in one allocation with their gradients and momentum in two
 * more, so that zero-grad is one memset and a penalty's prox is a flat loop
 * over a group. BN running statistics live in a separate buffer block.
 *
 * Shapes are per image: (c, h, w); dense and flatten outputs have h = w = 1.
 * Flatten orders features channel-major: feature = ch*H*W + y*W + x.
 *
 * The model text (the models/ folder, docs/MODEL_FORMAT.md) is parsed by
 * slim_model_parse (src/io/model_text.c) and written back by
 * slim_model_to_text, which pruning uses to describe the smaller network.
 */
#ifndef SLIM_NN_H
#define SLIM_NN_H

#include "slim/autograd.h"
#include "slim/core.h"
#include "slim/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum slim_layer_kind {
    SLIM_LAYER_INPUT = 0,
    SLIM_LAYER_CONV,
    SLIM_LAYER_BN,
    SLIM_LAYER_RELU,
    SLIM_LAYER_MAXPOOL,
    SLIM_LAYER_AVGPOOL,
    SLIM_LAYER_GAP,
    SLIM_LAYER_FLATTEN,
    SLIM_LAYER_DENSE,
    SLIM_LAYER_ADD,
    SLIM_LAYER_CONCAT, /* channel concatenation of 2..SLIM_LAYER_MAX_INPUTS inputs of equal h, w */
    SLIM_LAYER_RELU6,  /* min(max(x, 0), 6) */
    SLIM_LAYER_KIND_COUNT
} slim_layer_kind;

/* "conv", "bn", ... as in model files. */
const char *slim_layer_kind_name(slim_layer_kind kind);

typedef enum slim_param_role {
    SLIM_PARAM_WEIGHT = 0, /* conv (cout,cin,kh,kw) or dense (out,in) weight */
    SLIM_PARAM_BIAS,       /* conv or dense bias (cout) */
    SLIM_PARAM_BIASMAP,    /* conv per-position bias (cout, oh, ow), from exact folds */
    SLIM_PARAM_GAMMA,      /* BN scale (c) */
    SLIM_PARAM_BETA,       /* BN shift (c) */
} slim_param_role;

#define SLIM_NAME_MAX 32
/* Most inputs of one layer (a concat's from= list). */
#define SLIM_LAYER_MAX_INPUTS 16

/* Whether `name` is a valid layer name: [A-Za-z_][A-Za-z0-9_-]*, at most
 * SLIM_NAME_MAX - 1 characters (model files and slim_model_finish). */
int slim_layer_name_valid(const char *name);

typedef struct slim_param {
    char name[SLIM_NAME_MAX + 16]; /* "<layer>.weight", ".bias", ".biasmap", ".gamma", ".beta" */
    slim_param_role role;
    int layer; /* index of the owning layer */
    int ndim;
    int shape[SLIM_MAX_DIMS];
    size_t numel;
    size_t offset;   /* in floats, into the param/grad/momentum blocks */
    float *data;     /* model->param_block + offset */
    float *grad;     /* model->grad_block + offset */
    float *momentum; /* model->momentum_block + offset */
    int trainable;   /* 0 for a biasmap (a fixed constant from folding) */
} slim_param;

typedef struct slim_layer {
    slim_layer_kind kind;
    char name[SLIM_NAME_MAX];
    int line; /* line in the model file, for messages (0 if unknown) */
    int inputs[SLIM_LAYER_MAX_INPUTS];
    int n_inputs; /* 0 for input, 2 for add, 2..SLIM_LAYER_MAX_INPUTS for concat, else 1 */

    /* Hyper-parameters (as given in the model file, after defaults). These,
     * with kind, name and inputs, are the layer's whole description: shape
     * inference and slim_model_to_text read nothing else (the input layer's
     * declared shape is its c, h, w below). */
    int out_channels;    /* conv: filters; dense: output features */
    int k, stride, pad;  /* conv and pooling; stride 0 in code: conv 1, pool k */
    int groups;          /* conv: input and output channels split into this many groups, each
                            convolved on its own (0 in code = 1; depthwise when it equals both
                            channel counts); the weight is (cout, cin / groups, k, k) */
    int has_bias;        /* conv/dense: bias vector present */
    int has_biasmap;     /* conv: per-(channel, position) bias map present */
    float eps, momentum; /* bn: 1e-5 and 0.1 by default (0 in code: default) */
    int declared_in;     /* dense: the file's in= (0 if absent), checked against in_c */

    /* Per-image shapes, filled by shape inference (for the input layer, c, h,
     * w are set by the builder and in_* copy them). */
    int in_c, in_h, in_w; /* of the (first) input; a concat's in_c is the sum over its inputs */
    int c, h, w;          /* of the output */

    /* Parameter indices into model->params, -1 when absent. */
    int p_weight, p_bias, p_biasmap, p_gamma, p_beta;
    /* BN running statistics (c each), into model->buffer_block. */
    float *running_mean, *running_var;

    /* Fast-kernel caches owned by the layer (NULL until first use). */
    slim_dnnl_cache *cache;
} slim_layer;

typedef struct slim_model {
    slim_layer *layers;
    int n_layers;
    slim_param *params;
    int n_params;
    size_t param_floats;
    float *param_block, *grad_block, *momentum_block;
    size_t buffer_floats;
    float *buffer_block;     /* BN running mean/var */
    char *text;              /* the model file's text as given (or as written by to_text) */
    char source[256];        /* file name for messages */
    int n_classes;           /* c of the last layer */
    size_t max_param_floats; /* 0, or the cap of slim_model_parse_capped */
} slim_model;

/* ---- building (src/io/model_text.c, src/nn/model.c) ------------------- */

/* Limits that keep a hostile or mistyped model file from asking for absurd
 * memory; each is an error naming the line when exceeded. */
#define SLIM_MODEL_FILE_MAX (1 << 20) /* bytes of model text */
#define SLIM_MODEL_MAX_LAYERS 4096
#define SLIM_MODEL_MAX_CHANNELS 65536       /* conv/dense out= */
#define SLIM_MODEL_MAX_DIM 4096             /* input C, H and W; k, stride */
#define SLIM_MODEL_MAX_ACTIVATION (1 << 28) /* c*h*w of any layer's output */
#define SLIM_MODEL_MAX_PARAM_FLOATS (1 << 28)

/* Parses model text, checks it (names, references, cycles, shapes) and
 * builds a model with all parameters allocated (zero; see
 * slim_model_init_params). Errors read "<source>:<line>: <what>" and are
 * SLIM_ERR_FORMAT (syntax, keys, values, names, references) or
 * SLIM_ERR_SHAPE (shape inference). model->text keeps a copy of `text`;
 * source may be NULL ("<text>"). */
slim_status slim_model_parse(const char *text, const char *source, slim_model **out);
/* Reads a file of at most SLIM_MODEL_FILE_MAX bytes and parses it with the
 * path as source. */
slim_status slim_model_load_file(const char *path, slim_model **out);
/* slim_model_parse, refusing (SLIM_ERR_FORMAT, before any allocation) a
 * model whose parameters need more than max_param_floats values: a loader
 * passes the number of values its file actually holds, so that a tiny file
 * cannot make it allocate gigabytes. 0 = only the global limit. */
slim_status slim_model_parse_capped(const char *text, const char *source, size_t max_param_floats,
                                    slim_model **out);
/* The model's current structure as model text (malloc'd, caller frees):
 * explicit names and every non-default key, read from the hyper-parameter
 * fields only (not from inferred shapes), so pruning can set out_channels
 * and write the narrower network. parse(to_text(m)) rebuilds the same
 * structure. */
slim_status slim_model_to_text(const slim_model *model, char **out);

/* After the parser has filled layers (kinds, names, inputs, hyper-parameters):
 * infers shapes (errors name the layer) and allocates parameters and
 * buffers. Called by slim_model_parse.
 *
 * A model built in code: slim_model_alloc(n), then per layer set kind, name
 * ("" = auto name "<kind><k>", "input" for layer 0), inputs/n_inputs
 * (n_inputs 0 on a non-input, non-add layer = the previous layer) and the
 * hyper-parameters (input: c, h, w), then slim_model_finish. Layer 0 must be
 * the only input layer; inputs must refer to earlier layers. Unlike the
 * parser it applies no bias default: has_bias is taken as given.
 * Calling it again (after changing hyper-parameters) frees and reallocates
 * the parameter and buffer blocks, all zero. On failure the model stays
 * valid for slim_model_free. */
slim_status slim_model_finish(slim_model *model);
/* A zeroed model with n_layers zeroed layers (source "<code>"), for building
 * in code; free with slim_model_free. */
slim_status slim_model_alloc(int n_layers, slim_model **out);

/* PyTorch's default initialisation (kaiming-uniform a=sqrt(5) for weights,
 * uniform(+-1/sqrt(fan_in)) for biases, gamma 1, beta 0, running mean 0,
 * running var 1), from `rng`. */
void slim_model_init_params(slim_model *model, slim_rng *rng);
/* Frees everything the model owns, layer caches included; NULL is fine. */
void slim_model_free(slim_model *model);
/* Index by name, -1 if absent. */
int slim_model_find_layer(const slim_model *model, const char *name);
int slim_model_find_param(const slim_model *model, const char *name);
/* One memset of the gradient block. */
void slim_model_zero_grad(slim_model *model);

/* Forward multiply-accumulates per image (conv: cout*(cin/groups)*k*k*oh*ow; dense:
 * in*out; 0 for every other layer: bias adds, BN, pooling are not counted)
 * and parameter count (weights + biases + BN gamma and beta; not the fixed
 * biasmap, not running statistics) of one layer and of the whole model. */
double slim_layer_macs(const slim_model *model, int layer);
size_t slim_layer_params(const slim_model *model, int layer);
double slim_model_macs(const slim_model *model);
size_t slim_model_param_count(const slim_model *model);

/* ---- running (src/nn/forward.c) --------------------------------------- */

/* Runs the model on x (n, c, h, w) and returns the logits (n, classes) in
 * the tape's arena. training: BN uses batch statistics and updates running
 * ones, and every op is recorded for backward; otherwise BN uses the running
 * statistics and nothing is recorded. */
slim_status slim_model_forward(slim_model *model, slim_tape *tape, slim_tensor *x, int training,
                               slim_tensor **logits);

#ifdef __cplusplus
}
#endif
#endif
