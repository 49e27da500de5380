#!/usr/bin/env bash
# ONNX files written by slim pass onnx.checker.check_model(full_check=True)
# and compute slim's logits, as judged by the `onnx` package
# (tools/onnx_check.py). The models, inputs and slim's logits come from
# tests/test_onnx run with SLIM_ONNX_OUT set. Skipped (exit 0) when
# /usr/bin/python3 cannot import onnx and numpy (Debian: python3-onnx,
# python3-numpy).
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
onnx_test_setup onnx_check onnx,numpy
check="$SLIM_SOURCE_DIR/tools/onnx_check.py"

if ! SLIM_ONNX_OUT="$tmp" "$SLIM_BINARY_DIR/tests/test_onnx" >"$tmp/test_onnx.log" 2>&1; then
    cat "$tmp/test_onnx.log"
    echo "FAIL: tests/test_onnx failed"
    exit 1
fi

n=0
for model in "$tmp"/*.onnx; do
    [ -e "$model" ] || break
    base=${model%.onnx}
    "$PY" "$check" "$model" "$base.input.bin" "$base.logits.bin"
    n=$((n + 1))
done
if [ "$n" -lt 4 ]; then
    echo "FAIL: expected at least 4 models from test_onnx, found $n"
    exit 1
fi
# Grouped and depthwise Conv, Clip (relu6) and Concat are among them.
for tag in groups mobilenet-fm densenet-fm; do
    if [ ! -e "$tmp/$tag.onnx" ]; then
        echo "FAIL: test_onnx wrote no $tag.onnx"
        exit 1
    fi
done

# The comparison is not vacuous: logits that are not the model's must fail.
model=$(ls "$tmp"/*.onnx | head -n 1)
base=${model%.onnx}
head -c "$(stat -c %s "$base.logits.bin")" "$base.input.bin" >"$tmp/wrong.logits.bin"
rc=0
"$PY" "$check" "$model" "$base.input.bin" "$tmp/wrong.logits.bin" >"$tmp/wrong.log" || rc=$?
if [ "$rc" -ne 1 ]; then
    cat "$tmp/wrong.log"
    echo "FAIL: onnx_check.py accepted wrong logits (exit $rc)"
    exit 1
fi
echo "ok: $n ONNX models checked"
