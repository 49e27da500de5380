#!/usr/bin/python3
"""Check an ONNX file written by slim (slim_onnx_write) with the `onnx` package.

usage: onnx_check.py MODEL.onnx [INPUTS.bin LOGITS.bin]

1. onnx.checker.check_model(full_check=True): the protobuf is well formed,
   every node is valid for its opset, and strict shape inference succeeds.
2. The slim contract: default-domain opset 13, one input "input" float
   [N, C, H, W] and one output "logits" float [N, classes], N symbolic.
3. With INPUTS.bin and LOGITS.bin (raw little-endian float32: the inputs as
   (batch, C, H, W) and slim's logits as (batch, classes)), runs the model
   with onnx.reference.ReferenceEvaluator (onnx >= 1.13) or, on older onnx
   such as Debian 12's 1.12, with the small numpy evaluator below, and
   requires max |delta| <= 1e-4 * max |logit|.

Prints one verdict line; exits 0 when every check passes, 1 when one fails,
2 on a usage or I/O error. Needs python3-onnx and python3-numpy (Debian).
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

TOL = 1e-4  # relative to max |logit|; float32 summation-order noise is ~1e-6


class CheckFailed(Exception):
    pass


def attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def windows(x, kh, kw, sh, sw, oh, ow):
    """Yields (ky, kx, view) with view[n, c, oy, ox] = x[n, c, oy*sh+ky, ox*sw+kx]."""
    for ky in range(kh):
        for kx in range(kw):
            yield ky, kx, x[:, :, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw]


def window_geometry(x, a, kernel):
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise CheckFailed("auto_pad is not supported by the numpy evaluator")
    if a.get("ceil_mode", 0) != 0:
        raise CheckFailed("ceil_mode is not supported by the numpy evaluator")
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise CheckFailed("dilations are not supported by the numpy evaluator")
    kh, kw = a.get("kernel_shape", kernel)
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    h, w = x.shape[2], x.shape[3]
    oh = (h + pt + pb - kh) // sh + 1
    ow = (w + pl + pr - kw) // sw + 1
    return kh, kw, sh, sw, ((0, 0), (0, 0), (pt, pb), (pl, pr)), oh, ow


def op_conv(a, x, w, b=None):
    g = a.get("group", 1)
    m, cg = w.shape[0], w.shape[1]
    if g < 1 or x.shape[1] != cg * g or m % g:
        raise CheckFailed("Conv: group %d does not fit input channels %d and weight %s"
                          % (g, x.shape[1], list(w.shape)))
    kh, kw, sh, sw, pads, oh, ow = window_geometry(x, a, w.shape[2:])
    xp = np.pad(x, pads)
    y = np.zeros((x.shape[0], m, oh, ow))
    for ky, kx, v in windows(xp, kh, kw, sh, sw, oh, ow):
        # group j: outputs [j*m/g, (j+1)*m/g) read inputs [j*cg, (j+1)*cg)
        vg = v.reshape(v.shape[0], g, cg, oh, ow)
        wg = w[:, :, ky, kx].reshape(g, m // g, cg)
        y += np.einsum("ngchw,gmc->ngmhw", vg, wg).reshape(y.shape)
    if b is not None:
        y += b[None, :, None, None]
    return y


def op_pool(a, x, mode):
    kh, kw, sh, sw, pads, oh, ow = window_geometry(x, a, None)
    if mode == "max":
        xp = np.pad(x, pads, constant_values=-np.inf)
        y = np.full((x.shape[0], x.shape[1], oh, ow), -np.inf)
        for _, _, v in windows(xp, kh, kw, sh, sw, oh, ow):
            y = np.maximum(y, v)
        return y
    xp = np.pad(x, pads)
    ones = np.pad(np.ones((1, 1) + x.shape[2:]), pads)
    y = np.zeros((x.shape[0], x.shape[1], oh, ow))
    count = np.zeros((1, 1, oh, ow))
    for _, _, v in windows(xp, kh, kw, sh, sw, oh, ow):
        y += v
    for _, _, v in windows(ones, kh, kw, sh, sw, oh, ow):
        count += v
    if a.get("count_include_pad", 0):
        count[:] = kh * kw
    return y / count


def op_gemm(a, x, w, c=None):
    if a.get("transA", 0):
        x = x.T
    if a.get("transB", 0):
        w = w.T
    y = a.get("alpha", 1.0) * (x @ w)
    if c is not None:
        y = y + a.get("beta", 1.0) * c
    return y


def op_bn(a, x, scale, bias, mean, var):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
    return (x - mean.reshape(shape)) * s.reshape(shape) + bias.reshape(shape)


def numpy_run(model, x):
    """The ops slim exports, in float64, following the ONNX operator specs."""
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    for node in model.graph.node:
        a = attrs(node)
        ins = [env[n] for n in node.input if n]
        op = node.op_type
        if op == "Conv":
            y = op_conv(a, *ins)
        elif op == "MaxPool":
            y = op_pool(a, ins[0], "max")
        elif op == "AveragePool":
            y = op_pool(a, ins[0], "avg")
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            axis = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
        elif op == "Gemm":
            y = op_gemm(a, *ins)
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "Sub":
            y = ins[0] - ins[1]
        elif op == "Concat":
            y = np.concatenate(ins, axis=a["axis"])
        elif op == "BatchNormalization":
            y = op_bn(a, *ins)
        else:
            raise CheckFailed("the numpy evaluator does not know op %s" % op)
        env[node.output[0]] = y
    return env[model.graph.output[0].name]


def run(model, x):
    try:
        from onnx.reference import ReferenceEvaluator  # onnx >= 1.13
    except ImportError:
        return numpy_run(model, x), "numpy evaluator (onnx %s)" % onnx.__version__
    sess = ReferenceEvaluator(model)
    return sess.run(None, {"input": x})[0], "onnx.reference.ReferenceEvaluator"


def tensor_dims(value):
    dims = value.type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]


def check_contract(model):
    opsets = {o.domain: o.version for o in model.opset_import}
    if opsets.get("") != 13:
        raise CheckFailed("default-domain opset is %s, expected 13" % opsets.get(""))
    g = model.graph
    if [i.name for i in g.input] != ["input"] or [o.name for o in g.output] != ["logits"]:
        raise CheckFailed("graph input/output are %s/%s, expected input/logits"
                          % ([i.name for i in g.input], [o.name for o in g.output]))
    for v, rank in ((g.input[0], 4), (g.output[0], 2)):
        dims = tensor_dims(v)
        if v.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            raise CheckFailed("%s is not float" % v.name)
        if len(dims) != rank or dims[0] != "N" or not all(isinstance(d, int) and d > 0
                                                           for d in dims[1:]):
            raise CheckFailed("%s has shape %s, expected [N, ...] of rank %d"
                              % (v.name, dims, rank))
    return tensor_dims(g.input[0])[1:], tensor_dims(g.output[0])[1]


def read_floats(path):
    return np.fromfile(path, dtype="<f4").astype(np.float32)


def main(argv):
    if len(argv) not in (2, 4):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path = argv[1]
    try:
        model = onnx.load(path)
        inputs = read_floats(argv[2]) if len(argv) == 4 else None
        logits = read_floats(argv[3]) if len(argv) == 4 else None
    except OSError as e:
        print("onnx_check: %s: cannot read: %s" % (path, e), file=sys.stderr)
        return 2
    except Exception as e:  # a malformed protobuf raises DecodeError
        print("onnx_check: %s: FAIL: cannot parse: %s" % (path, e))
        return 1
    try:
        onnx.checker.check_model(model, full_check=True)
        (c, h, w), classes = check_contract(model)
        if inputs is None:
            print("onnx_check: %s: OK (checker, opset 13, input [N,%d,%d,%d], logits [N,%d])"
                  % (path, c, h, w, classes))
            return 0
        if inputs.size == 0 or inputs.size % (c * h * w):
            raise CheckFailed("%s holds %d floats, not a whole number of %dx%dx%d inputs"
                              % (argv[2], inputs.size, c, h, w))
        x = inputs.reshape(-1, c, h, w)
        if logits.size != x.shape[0] * classes:
            raise CheckFailed("%s holds %d floats, expected %d x %d logits"
                              % (argv[3], logits.size, x.shape[0], classes))
        want = logits.reshape(x.shape[0], classes)
        got, how = run(model, x)
        if got.shape != want.shape:
            raise CheckFailed("output shape %s, expected %s" % (got.shape, want.shape))
        diff = float(np.max(np.abs(got - want)))
        scale = float(np.max(np.abs(want)))
        if not np.isfinite(diff) or diff > TOL * scale:
            raise CheckFailed("logits differ from slim's by %.3g (max |logit| %.3g, tolerance "
                              "%.3g) [%s]" % (diff, scale, TOL * scale, how))
    except (CheckFailed, onnx.checker.ValidationError,
            onnx.shape_inference.InferenceError) as e:
        print("onnx_check: %s: FAIL: %s" % (path, e))
        return 1
    print("onnx_check: %s: OK (checker; %d inputs, max |delta| %.3g <= %.3g; %s)"
          % (path, x.shape[0], diff, TOL * scale, how))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
