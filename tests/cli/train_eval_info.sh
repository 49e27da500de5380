#!/usr/bin/env bash
# slim train -> eval -> info on a small Fashion-MNIST run: the checkpoint and
# its metrics CSV exist, eval prints the accuracy train reported and writes
# exactly N x 10 float32 logits with --logits, info prints the layer table
# and --json is valid JSON with the documented keys and consistent totals.
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup tei
MODEL="$SRC/models/lenet-bn.net"

# --- train ------------------------------------------------------------------------
"$SLIM" train --model "$MODEL" --limit 512 --test-limit 256 --epochs 1 --threads 2 \
    --progress plain --out "$TMP/run.ckpt" >"$TMP/train.out" 2>"$TMP/train.err" ||
    fail "train failed: $(cat "$TMP/train.err")"
[[ -s "$TMP/run.ckpt" ]] || fail "no checkpoint"
[[ "$(head -c 8 "$TMP/run.ckpt")" == SLIMCKPT ]] || fail "checkpoint lacks the magic"
[[ -s "$TMP/run.csv" ]] || fail "no metrics CSV beside the checkpoint"
[[ $(wc -l <"$TMP/run.csv") -eq 2 ]] || fail "CSV: want a header and 1 row, got: $(cat "$TMP/run.csv")"
head -1 "$TMP/run.csv" | grep -q '^epoch,step,lr,train_loss' || fail "CSV header"
# No temporary files left beside the outputs.
[[ $(ls "$TMP" | wc -l) -eq 4 ]] || fail "unexpected files: $(ls "$TMP")"
grep -qE '^done at epoch 1, step 4: train loss [0-9.]+, test accuracy [0-9.]+%' "$TMP/train.out" ||
    fail "no final summary line: $(cat "$TMP/train.out")"
train_acc=$(sed -nE 's/.*test accuracy ([0-9.]+)%.*/\1/p' "$TMP/train.out")
grep -q '^epoch 1/1: train loss' "$TMP/train.err" || fail "no per-epoch line on stderr"

# --- eval -------------------------------------------------------------------------
"$SLIM" eval "$TMP/run.ckpt" --limit 256 --logits "$TMP/logits.f32" >"$TMP/eval.out" 2>"$TMP/eval.err" ||
    fail "eval failed: $(cat "$TMP/eval.err")"
grep -qE '^accuracy: [0-9.]+% \([0-9]+/256\)$' "$TMP/eval.out" || fail "eval accuracy line: $(cat "$TMP/eval.out")"
eval_acc=$(sed -nE 's/^accuracy: ([0-9.]+)%.*/\1/p' "$TMP/eval.out")
# train's test accuracy was measured on the same 256 images with the same model.
[[ "$eval_acc" == "$train_acc" ]] || fail "eval accuracy $eval_acc != train's $train_acc"
grep -qE '^loss: [0-9.]+' "$TMP/eval.out" || fail "eval loss line"
grep -qE '^  1  Trouser ' "$TMP/eval.out" || fail "per-class rows lack the class names"
grep -q '^confusion matrix' "$TMP/eval.out" || fail "no confusion matrix"
# The confusion matrix rows sum to 256.
sum=$(awk '/^confusion matrix/ { on = 1; getline; next } on && NF >= 12 { for (i = NF - 9; i <= NF; i++) s += $i } END { print s }' "$TMP/eval.out")
[[ "$sum" == 256 ]] || fail "confusion matrix sums to $sum, want 256"
size=$(stat -c %s "$TMP/logits.f32")
[[ $size -eq $((256 * 10 * 4)) ]] || fail "logits file has $size bytes, want $((256 * 10 * 4))"
# The logits' argmax reproduces the accuracy (labels from the IDX file).
python3 - "$TMP/logits.f32" "$eval_acc" <<'EOF' || fail "logits do not match the printed accuracy"
import gzip, struct, sys
raw = open(sys.argv[1], "rb").read()
n = len(raw) // 40
logits = struct.unpack("<%df" % (n * 10), raw)
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz") as f:
    labels = f.read()[8:8 + n]
hits = sum(1 for i in range(n)
           if max(range(10), key=lambda j: logits[i * 10 + j]) == labels[i])
acc = "%.2f" % (100.0 * hits / n)
sys.exit(0 if acc == sys.argv[2] else 1)
EOF
# Batch size does not change the logits beyond rounding; --backend ref agrees.
"$SLIM" eval "$TMP/run.ckpt" --limit 256 --batch 7 --backend ref --logits "$TMP/ref.f32" >/dev/null ||
    fail "eval --backend ref failed"
python3 - "$TMP/logits.f32" "$TMP/ref.f32" <<'EOF' || fail "ref and fast logits differ"
import struct, sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
assert len(a) == len(b)
x = struct.unpack("<%df" % (len(a) // 4), a); y = struct.unpack("<%df" % (len(b) // 4), b)
m = max(abs(v) for v in x)
d = max(abs(u - v) for u, v in zip(x, y))
sys.exit(0 if d <= 1e-4 * max(m, 1.0) else 1)
EOF

# --- info -------------------------------------------------------------------------
"$SLIM" info "$TMP/run.ckpt" >"$TMP/info.out" || fail "info failed"
grep -qE '^ +1  conv1 +conv +8x28x28 +8 +200 ' "$TMP/info.out" || fail "info: conv1 row: $(cat "$TMP/info.out")"
grep -qE '^ +2  bn1 +bn .*gamma 0: 0/8, \|gamma\| min' "$TMP/info.out" || fail "info: bn1 row"
grep -q '^parameters: 29,762$' "$TMP/info.out" || fail "info: parameter total"
grep -q '^MACs per image: 503,040' "$TMP/info.out" || fail "info: MAC total"
grep -q '^position: epoch 1, step 4' "$TMP/info.out" || fail "info: position"
grep -qE '^  penalty +none$' "$TMP/info.out" || fail "info: settings"
grep -qE '^  classes +T-shirt/top, Trouser' "$TMP/info.out" || fail "info: class names"

"$SLIM" info "$TMP/run.ckpt" --json >"$TMP/info.json" || fail "info --json failed"
python3 -m json.tool "$TMP/info.json" >/dev/null || fail "info --json is not valid JSON"
python3 - "$TMP/info.json" <<'EOF' || fail "info --json content"
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("params", "macs", "channels", "gamma_zero", "gamma_total", "weights_zero",
          "weights_total", "layers", "meta", "digest", "position", "format"):
    assert k in j, k
assert j["format"] == "train"
assert j["params"] == 29762 and j["macs"] == 503040, (j["params"], j["macs"])
assert j["channels"] == 24 and j["gamma_total"] == 24 and j["channels_source"] == "bn"
assert j["gamma_zero"] == 0
assert j["weights_total"] == 200 + 3200 + 25600 + 640, j["weights_total"]
assert j["position"] == {"epoch": 1, "step": 4}
L = j["layers"]
assert len(L) == 13
for l in L:
    for k in ("name", "kind", "shape", "channels", "params", "macs", "gamma_zero",
              "gamma_total", "weights_zero", "weights_total"):
        assert k in l, (l["name"], k)
assert sum(l["params"] for l in L) == j["params"]
assert sum(l["macs"] for l in L) == j["macs"]
assert sum(l["gamma_total"] for l in L) == j["gamma_total"]
assert sum(l["weights_total"] for l in L) == j["weights_total"]
bn1 = L[2]
assert bn1["kind"] == "bn" and bn1["shape"] == [8, 28, 28] and bn1["inputs"] == ["conv1"]
assert 0 < bn1["gamma_min"] <= bn1["gamma_median"] <= bn1["gamma_max"]
assert j["meta"]["data"] == "fashion-mnist" and j["meta"]["class.0"] == "T-shirt/top"
assert j["meta"]["limit"] == "512"
EOF

# A .net file: structure only; weight figures are null.
"$SLIM" info "$MODEL" --json >"$TMP/net.json" || fail "info --json on a .net failed"
python3 - "$TMP/net.json" <<'EOF' || fail "info --json on a .net file"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["format"] == "net" and j["params"] == 29762 and j["macs"] == 503040
assert j["gamma_zero"] is None and j["weights_zero"] is None and j["digest"] is None
assert j["meta"] == {} and j["position"] is None
EOF
"$SLIM" info "$MODEL" | grep -q '^parameters: 29,762$' || fail "info on a .net file"

echo "train/eval/info: all checks passed"
