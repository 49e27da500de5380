#!/usr/bin/env bash
# Every model of models/ but vgg11-cifar, pruned so that bias maps appear
# (tests/make_pruned: random parameters from a seed, 40% of every BN's
# gammas zeroed, slim_prune at threshold 0) and unpruned, exported with
# `slim export --format onnx`, runs in OpenCV's dnn module (Debian's
# python3-opencv 4.6) at batch 1 and 64 with logits within 1e-4 x max |logit|
# of slim's (make_pruned's dump of the reference forward on the same 64
# random inputs), and carries class names, the preprocessing and slim's
# version as metadata_props (tests/cli/onnx_opencv.py). Skipped (exit 0) only
# when /usr/bin/python3 cannot import cv2 (tools/install-deps installs it).
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
onnx_test_setup onnx_opencv cv2,onnx,numpy
: "${SLIM:?SLIM must be set (ctest sets it)}"
check="$SLIM_SOURCE_DIR/tests/cli/onnx_opencv.py"
make_pruned="$SLIM_BINARY_DIR/tests/make_pruned"

version=$("$SLIM" --version | head -n 1 | cut -d' ' -f2)
[ -n "$version" ] || fail "slim --version printed no version"
n=0
for net in "$SLIM_SOURCE_DIR"/models/*.net; do
    name=$(basename "$net" .net)
    [ "$name" = vgg11-cifar ] && continue # too large for the suite
    t="$tmp/$name"
    "$make_pruned" "$net" 25 "$t.pruned.ckpt" "$t.unpruned.ckpt" "$t" >"$t.log" ||
        { cat "$t.log"; fail "make_pruned $name"; }
    maps=$(sed -n 's/^biasmaps: //p' "$t.log")
    # lenet-bn's only conv after a BN is unpadded: its constants fold into
    # plain biases, never a map.
    if [ "$name" != lenet-bn ] && ! [ "${maps:-0}" -gt 0 ]; then
        fail "$name: the pruned model has no bias map (make_pruned: '$maps')"
    fi
    # The metadata make_pruned stores, as slim export writes it.
    channels=$(sed -n 's/^input shape=\([0-9]*\)x.*/\1/p' "$net")
    mean=$(awk -v c="$channels" 'BEGIN { for (i = 0; i < c; i++) printf "%s%g", i ? "," : "", 0.25 + 0.125 * i }')
    std=$(awk -v c="$channels" 'BEGIN { for (i = 0; i < c; i++) printf "%s%g", i ? "," : "", 0.5 + 0.0625 * i }')
    meta=("slim.version=$version" "data.resize=none" "data.mean=$mean" "data.std=$std"
        "class.0=class 0" "class.9=class 9")
    for kind in pruned unpruned; do
        "$SLIM" export "$t.$kind.ckpt" --out "$t.$kind.onnx" >"$t.export.log" ||
            { cat "$t.export.log"; fail "slim export $name ($kind)"; }
        "$PY" "$check" "$t.$kind.onnx" "$t.input.bin" "$t.$kind.logits.bin" "${meta[@]}" ||
            fail "$name ($kind) in OpenCV"
        n=$((n + 1))
    done
    echo "$name: $maps bias maps in the pruned model"
done
[ "$n" -eq 10 ] || fail "expected 10 exports (5 models, pruned and not), checked $n"

t="$tmp/vgg-fm"
# Pruning at threshold 0 is exact: the pruned export computes the unpruned
# model's logits too.
"$PY" "$check" "$t.pruned.onnx" "$t.input.bin" "$t.unpruned.logits.bin" >"$tmp/cross.log" ||
    { cat "$tmp/cross.log"; fail "the pruned export does not compute the unpruned model's logits"; }
# The check is not vacuous: other logits, or wrong metadata, must fail.
head -c "$(stat -c %s "$t.pruned.logits.bin")" "$t.input.bin" >"$tmp/wrong.bin"
rc=0
"$PY" "$check" "$t.pruned.onnx" "$t.input.bin" "$tmp/wrong.bin" >"$tmp/wrong.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { cat "$tmp/wrong.log"; fail "wrong logits accepted (exit $rc)"; }
rc=0
"$PY" "$check" "$t.pruned.onnx" "$t.input.bin" "$t.pruned.logits.bin" "slim.version=0.0.0-wrong" \
    >"$tmp/wrong.log" 2>&1 || rc=$?
[ "$rc" -eq 1 ] || { cat "$tmp/wrong.log"; fail "wrong metadata accepted (exit $rc)"; }
echo "ok: $n ONNX exports run in OpenCV at batch 1 and 64"
