"""An ONNX graph run with PyTorch ops: the PyTorch peer of tools/bench runs the
very ONNX files slim exported, so that every peer times the same model.

  from onnx_torch import load
  run = load("model.onnx")      # a function: float32 tensor (N, C, H, W) -> logits
  logits = run(x)

Covers the ops slim's ONNX export writes (src/io/onnx.c) and a few more:
Conv (group, pads, strides, dilations), BatchNormalization (inference),
Relu, Clip, MaxPool, AveragePool, GlobalAveragePool, Add, Sub, Mul, Concat,
Gemm, MatMul, Flatten, Reshape. Any other op, or an attribute it does not
handle, raises OnnxTorchError naming the node, never a silent wrong result.
Needs python3-onnx and python3-torch (Debian).
"""
import math

import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper


class OnnxTorchError(Exception):
    pass


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _where(node):
    return "node '%s' (%s)" % (node.name or node.output[0], node.op_type)


def _window(node, a):
    """(kernel, strides, dilations, pads as (top, left, bottom, right)) of a
    2-D window op."""
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise OnnxTorchError("%s: auto_pad is not supported" % _where(node))
    k = list(a.get("kernel_shape", []))
    s = list(a.get("strides", [1, 1]))
    d = list(a.get("dilations", [1, 1]))
    p = list(a.get("pads", [0, 0, 0, 0]))
    if len(s) != 2 or len(d) != 2 or len(p) != 4 or (k and len(k) != 2):
        raise OnnxTorchError("%s: only 2-D windows are supported" % _where(node))
    return k, s, d, p


def _pad_split(p):
    """torch takes symmetric padding: (ph, pw) and, for asymmetric pads, the
    F.pad list of the extra rows and columns (left, right, top, bottom)."""
    pt, pl, pb, pr = p
    ph, pw = min(pt, pb), min(pl, pr)
    extra = (pl - pw, pr - pw, pt - ph, pb - ph)
    return (ph, pw), extra if any(extra) else None


def _conv(node, a, consts):
    k, s, d, p = _window(node, a)
    g = a.get("group", 1)
    pad, extra = _pad_split(p)
    w = consts.get(node.input[1])
    b = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if w is None:
        raise OnnxTorchError("%s: the weight must be an initializer" % _where(node))
    if k and list(w.shape[2:]) != k:
        raise OnnxTorchError("%s: kernel_shape %s does not match the weight %s" %
                             (_where(node), k, list(w.shape)))

    def conv(x, *_):
        if extra:
            x = F.pad(x, extra)
        return F.conv2d(x, w, b, tuple(s), pad, tuple(d), g)
    return conv, 1


def _pool(node, a, kind):
    k, s, d, p = _window(node, a)
    if any(v != 1 for v in d):
        raise OnnxTorchError("%s: dilations are not supported" % _where(node))
    ceil = bool(a.get("ceil_mode", 0))
    pad, extra = _pad_split(p)
    if extra:
        raise OnnxTorchError("%s: asymmetric pads are not supported" % _where(node))
    if kind == "max":
        return (lambda x: F.max_pool2d(x, tuple(k), tuple(s), pad, 1, ceil)), 1
    include = bool(a.get("count_include_pad", 0))
    return (lambda x: F.avg_pool2d(x, tuple(k), tuple(s), pad, ceil, include)), 1


def _bn(node, a, consts):
    try:
        scale, bias, mean, var = (consts[n] for n in node.input[1:5])
    except KeyError:
        raise OnnxTorchError("%s: scale, bias, mean and var must be initializers" % _where(node))
    eps = a.get("epsilon", 1e-5)
    return (lambda x: F.batch_norm(x, mean, var, scale, bias, False, 0.0, eps)), 1


def _gemm(node, a):
    ta, tb = a.get("transA", 0), a.get("transB", 0)
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)

    def gemm(x, w, c=None):
        x = x.t() if ta else x
        w = w.t() if tb else w
        if c is None:
            return alpha * (x @ w) if alpha != 1.0 else x @ w
        if alpha == 1.0 and beta == 1.0:
            return torch.addmm(c, x, w)
        return torch.addmm(c, x, w, beta=beta, alpha=alpha)
    return gemm, None


def _clip(node, a):
    lo, hi = a.get("min"), a.get("max")  # opset < 11: attributes; later: inputs

    def clip(x, mn=None, mx=None):
        mn = lo if mn is None else float(mn)
        mx = hi if mx is None else float(mx)
        return torch.clamp(x, mn, mx)
    return clip, None


def _reshape(node, a):
    allow_zero = a.get("allowzero", 0)

    def reshape(x, shape):
        dims = [int(v) for v in shape.tolist()]
        if not allow_zero:
            dims = [x.shape[i] if v == 0 else v for i, v in enumerate(dims)]
        return x.reshape(dims)
    return reshape, None


def _flatten(node, a):
    axis = a.get("axis", 1)
    return (lambda x: x.reshape(math.prod(x.shape[:axis]), -1)), 1


def load(path):
    """The ONNX model at path as a function of its one input (batch first)."""
    model = onnx.load(path)
    g = model.graph
    consts = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in g.initializer}
    for t, v in consts.items():
        if v.dtype == torch.float64:
            consts[t] = v.float()
    inputs = [i.name for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise OnnxTorchError("%s: one graph input and one output expected, got %s and %d" %
                             (path, inputs, len(g.output)))
    simple = {"Relu": torch.relu, "Add": torch.add, "Sub": torch.sub, "Mul": torch.mul,
              "MatMul": torch.matmul,
              "GlobalAveragePool": lambda x: x.mean(dim=(2, 3), keepdim=True)}
    steps = []  # (function, input names, output name, how many inputs it reads)
    for node in g.node:
        a, op = _attrs(node), node.op_type
        if len(node.output) != 1:
            raise OnnxTorchError("%s: %d outputs, one expected" % (_where(node), len(node.output)))
        if op in simple:
            fn, n_in = simple[op], None
        elif op == "Conv":
            fn, n_in = _conv(node, a, consts)
        elif op == "BatchNormalization":
            fn, n_in = _bn(node, a, consts)
        elif op == "MaxPool":
            fn, n_in = _pool(node, a, "max")
        elif op == "AveragePool":
            fn, n_in = _pool(node, a, "avg")
        elif op == "Gemm":
            fn, n_in = _gemm(node, a)
        elif op == "Clip":
            fn, n_in = _clip(node, a)
        elif op == "Flatten":
            fn, n_in = _flatten(node, a)
        elif op == "Reshape":
            fn, n_in = _reshape(node, a)
        elif op == "Concat":
            axis = a.get("axis")
            if axis is None:
                raise OnnxTorchError("%s: Concat needs an axis" % _where(node))
            fn, n_in = (lambda *xs, axis=axis: torch.cat(xs, axis)), None
        else:
            raise OnnxTorchError("%s: op %s is not supported" % (_where(node), op))
        names = [n for n in node.input if n]
        steps.append((fn, names if n_in is None else names[:n_in], node.output[0]))
    x_name, y_name = inputs[0], g.output[0].name

    # The last step that reads each tensor, so that it is freed after it.
    last = {}
    for i, (_, names, _) in enumerate(steps):
        for n in names:
            last[n] = i
    frees = [[n for n in names if last.get(n) == i and n not in consts]
             for i, (_, names, _) in enumerate(steps)]

    def run(x):
        env = dict(consts)
        env[x_name] = x
        try:
            for (fn, names, out), dead in zip(steps, frees):
                env[out] = fn(*(env[n] for n in names))
                for n in dead:
                    if n != out:
                        del env[n]
        except KeyError as e:
            raise OnnxTorchError("%s: tensor %s is used before it is made" % (path, e))
        return env[y_name]
    return run
