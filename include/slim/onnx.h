/* slim onnx: export a model to a standard ONNX file for other runtimes.
 *
 * The file is a ModelProto (IR version 7, default-domain opset 13, producer
 * "slim") encoded by slim's own protobuf writer (src/io/pb.c); no protobuf
 * library is needed. The graph has one input "input", float [N, C, H, W]
 * with a symbolic batch dimension "N", and one output "logits", float
 * [N, classes]. Every weight is an initializer (TensorProto, FLOAT,
 * little-endian raw_data) named after the slim parameter it comes from.
 * The graph's doc_string holds the model text, for provenance.
 *
 * The export describes inference mode (BN with running statistics):
 *   conv      -> Conv (kernel_shape, strides, pads [p,p,p,p], and group when
 *                groups > 1; initializers "<conv>.weight" (cout, cin/groups,
 *                k, k) and, when present, "<conv>.bias");
 *                a conv with a biasmap (cout, oh, ow) is followed by an Add
 *                of the map batched: "<conv>.biasmap_out" = Conv of
 *                "input.ones" (N, 1, 1, 1) with the initializer
 *                "<conv>.biasmap", the map flipped in both spatial axes,
 *                shaped (cout, 1, oh, ow), pads oh-1, ow-1; "input.ones" =
 *                Conv(input) with zero weights "input.ones.weight"
 *                (1, C, H, W) and bias "input.ones.bias" = 1, emitted once.
 *                (Runtimes such as OpenCV's dnn refuse an Add that
 *                broadcasts a (1, ...) constant over a batch > 1.)
 *   bn        -> folded into its conv when the bn's input is a conv whose
 *                only consumer is that bn: with s = gamma / sqrt(var + eps),
 *                W' = W s, b' = (b - mean) s + beta, biasmap' = biasmap s
 *                (per output channel, grouped convs alike; computed in
 *                double, stored as float).
 *                The conv then always has a bias. Any other bn becomes
 *                BatchNormalization with initializers "<bn>.gamma",
 *                "<bn>.beta", "<bn>.running_mean", "<bn>.running_var" and
 *                its epsilon.
 *   relu      -> Relu
 *   relu6     -> 6 - Relu(6 - Relu(x)): Relu, Sub, Relu, Sub with the
 *                scalar initializer "<relu6>.six" = 6 (OpenCV's dnn takes
 *                neither Clip with input bounds nor Min)
 *   maxpool   -> MaxPool (kernel_shape, strides, pads)
 *   avgpool   -> AveragePool (same, count_include_pad = 0)
 *   gap       -> GlobalAveragePool then Flatten(axis 1), since slim's gap
 *                outputs (N, C)
 *   flatten   -> Flatten(axis 1)
 *   dense     -> Gemm (transB = 1; "<dense>.weight" (out, in), bias as C);
 *                a Flatten first when its input is still 4-D (c, 1, 1)
 *   add       -> Add (its inputs of equal rank)
 *   concat    -> Concat(axis 1) of its inputs in list order (repeats kept),
 *                all (N, C, H, W) or all (N, F); mixed ranks are refused
 * A last layer that is still 4-D (c, 1, 1) gets a Flatten to "logits".
 *
 * Tensor names are the layer names, except that the input layer's output is
 * "input", the layer feeding the graph output is "logits", and any other
 * layer named "input" or "logits" becomes "<name>.out"; helper tensors and
 * initializers carry a '.' suffix, which layer names cannot contain, so
 * names never clash. Node names are the layer names, helpers
 * "<layer>/<op>". The graph is named after the model file (base name
 * without extension; "slim" for a model without a file). String fields are
 * written as UTF-8, stray bytes (e.g. Latin-1 in a comment) as '?'.
 *
 * slim_onnx_write_ex also writes ModelProto.metadata_props, key/value
 * string pairs in the given order; slim export stores the preprocessing
 * there (data.resize, data.crop_scale, data.mean, data.std, class.<k>, ...:
 * the conventional keys of docs/CHECKPOINT_FORMAT.md) and slim.version.
 *
 * Every export runs in OpenCV's dnn module (4.6) at any batch size
 * (tests/cli/onnx_opencv.sh).
 */
#ifndef SLIM_ONNX_H
#define SLIM_ONNX_H

#include "slim/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SLIM_ONNX_IR_VERSION 7
#define SLIM_ONNX_OPSET 13

/* Writes `model` as ONNX to `path`, atomically (a temporary file next to
 * it, fsync, rename): on failure an existing file at `path` is untouched.
 * producer_version may be NULL (omitted). Errors name the path:
 * SLIM_ERR_ARG for a NULL argument or a layer that cannot be exported (the
 * message names the layer), SLIM_ERR_NUMERIC for a BN whose var + eps is
 * not a positive finite number, SLIM_ERR_NOMEM, SLIM_ERR_IO. */
slim_status slim_onnx_write(const slim_model *model, const char *path,
                            const char *producer_version);
/* The same, with n_props metadata_props entries keys[i] = values[i] (keys
 * non-empty; values may be empty; both NULL when n_props is 0). Duplicate
 * keys are the caller's business. */
slim_status slim_onnx_write_ex(const slim_model *model, const char *path,
                               const char *producer_version, const char *const *keys,
                               const char *const *values, int n_props);

#ifdef __cplusplus
}
#endif
#endif
