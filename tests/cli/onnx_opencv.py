#!/usr/bin/python3
"""Runs an ONNX file written by slim in OpenCV's dnn module and compares its
logits with slim's; checks the metadata_props too.

usage: onnx_opencv.py MODEL.onnx INPUTS.bin LOGITS.bin [KEY=VALUE ...]

INPUTS.bin and LOGITS.bin are raw little-endian float32: the inputs
(batch, C, H, W) and slim's logits (batch, classes). The model runs at batch
1 on each of the first BATCH1_IMAGES inputs and at the whole batch at once
(tests/make_pruned writes 64); every logit must be within 1e-4 * max |logit|
of slim's. Each KEY=VALUE must be a metadata_props entry of the file.

Prints one verdict line; exits 0 when every check passes, 1 when one fails,
2 on a usage or I/O error. Needs python3-opencv and python3-onnx (Debian).
"""
import sys

import cv2
import numpy as np
import onnx

TOL = 1e-4  # relative to max |logit|
BATCH1_IMAGES = 8


class CheckFailed(Exception):
    pass


def compare(got, want, what):
    if got.shape != want.shape:
        raise CheckFailed("%s: output shape %s, expected %s" % (what, got.shape, want.shape))
    diff = float(np.max(np.abs(got.astype(np.float64) - want)))
    scale = float(np.max(np.abs(want)))
    if not scale > 0:
        raise CheckFailed("%s: slim's logits are all zero: no comparison" % what)
    if not np.isfinite(diff) or diff > TOL * scale:
        raise CheckFailed("%s: logits differ from slim's by %.3g (max |logit| %.3g, "
                          "tolerance %.3g)" % (what, diff, scale, TOL * scale))
    return diff, scale


def main(argv):
    if len(argv) < 4 or any("=" not in a for a in argv[4:]):
        print(__doc__.strip().splitlines()[3], file=sys.stderr)
        return 2
    path = argv[1]
    try:
        model = onnx.load(path)
        inputs = np.fromfile(argv[2], dtype="<f4")
        logits = np.fromfile(argv[3], dtype="<f4").astype(np.float64)
    except OSError as e:
        print("onnx_opencv: cannot read: %s" % e, file=sys.stderr)
        return 2
    try:
        dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
        x = inputs.reshape(-1, *dims)
        want = logits.reshape(x.shape[0], -1)
        props = {p.key: p.value for p in model.metadata_props}
        for kv in argv[4:]:
            k, v = kv.split("=", 1)
            if props.get(k) != v:
                raise CheckFailed("metadata %s is %r, expected %r" % (k, props.get(k), v))
        net = cv2.dnn.readNetFromONNX(path)
        worst = 0.0
        for i in range(min(BATCH1_IMAGES, x.shape[0])):
            net.setInput(x[i:i + 1])
            d, scale = compare(net.forward(), want[i:i + 1], "batch 1, image %d" % i)
            worst = max(worst, d / scale)
        net.setInput(x)
        d, scale = compare(net.forward(), want, "batch %d" % x.shape[0])
        worst = max(worst, d / scale)
    except (CheckFailed, cv2.error, ValueError) as e:
        print("onnx_opencv: %s: FAIL: %s" % (path, str(e).strip().splitlines()[-1]))
        return 1
    print("onnx_opencv: %s: OK (OpenCV %s, batch 1 and %d, max |delta| / max |logit| %.2g, "
          "%d metadata entries checked)" % (path, cv2.__version__, x.shape[0], worst,
                                            len(argv) - 4))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
