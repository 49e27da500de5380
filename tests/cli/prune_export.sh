#!/usr/bin/env bash
# The sparsity pipeline through the command line: train lenet-bn with the
# gamma-L1 penalty until some gammas are exactly 0, prune at threshold 0 (the
# printed check is within its bound, accuracy and logits unchanged, exactly
# the zero channels gone), fine-tune the pruned model with --init, prune by
# percent, export to slim (BN folded) and ONNX, and classify PNG files with
# slim infer (top-1 equals the argmax of slim eval's logits).
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup prune
MODEL="$SRC/models/lenet-bn.net"
json() { python3 -c "import json, sys; j = json.load(open(sys.argv[1])); print($2)" "$1"; }

# --- train with the penalty -------------------------------------------------------------
# lambda 0.15 with lr 0.1 on 2 x 16 steps zeroes about half of the 24 gammas
# while the model still learns (measured: 12/24 zero, 55% test accuracy).
"$SLIM" train --model "$MODEL" --limit 512 --test-limit 256 --batch 32 --lr 0.1 --epochs 2 \
    --schedule constant --penalty gamma-l1 --lambda 0.15 --quiet --out "$TMP/sparse.ckpt" \
    >/dev/null || fail "penalised training failed"
"$SLIM" info "$TMP/sparse.ckpt" --json >"$TMP/sparse.json" || fail "info sparse"
zeros=$(json "$TMP/sparse.json" 'j["gamma_zero"]')
total=$(json "$TMP/sparse.json" 'j["gamma_total"]')
[[ $zeros -gt 0 && $zeros -lt $total ]] || fail "want some but not all gammas zero, got $zeros/$total"

# --- prune at threshold 0 -------------------------------------------------------------------
"$SLIM" prune "$TMP/sparse.ckpt" --out "$TMP/pruned.ckpt" >"$TMP/prune.out" 2>"$TMP/prune.err" ||
    fail "prune failed: $(cat "$TMP/prune.err")"
line=$(grep '^max |Δlogit| = ' "$TMP/prune.out") || fail "no check line: $(cat "$TMP/prune.out")"
[[ "$line" =~ ^max\ \|Δlogit\|\ =\ ([0-9.e+-]+)\ \(max\ \|logit\|\ =\ ([0-9.e+-]+),\ bound\ 1e-4·max\|logit\|\),\ argmax\ mismatches:\ ([0-9]+)$ ]] ||
    fail "check line format: $line"
python3 -c "import sys; d, m = map(float, sys.argv[1:]); sys.exit(0 if 0 <= d <= 1e-4 * m and m > 0 else 1)" \
    "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" || fail "check outside its bound: $line"
[[ ${BASH_REMATCH[3]} -eq 0 ]] || fail "argmax mismatches: $line"
grep -qE '^conv1 +conv ' "$TMP/prune.out" || fail "no per-layer table: $(cat "$TMP/prune.out")"
grep -qE '^total ' "$TMP/prune.out" || fail "no totals in the table"
"$SLIM" info "$TMP/pruned.ckpt" --json >"$TMP/pruned.json" || fail "info pruned"
[[ $(json "$TMP/pruned.json" 'j["gamma_total"]') -eq $((total - zeros)) ]] ||
    fail "pruned model should keep exactly the $((total - zeros)) nonzero channels"
[[ $(json "$TMP/pruned.json" 'j["gamma_zero"]') -eq 0 ]] || fail "zero gammas survived pruning"
[[ $(json "$TMP/pruned.json" 'j["params"] < 29762 and j["macs"] < 503040') == True ]] ||
    fail "pruning did not shrink the model"
[[ $(json "$TMP/pruned.json" 'j["meta"]["pruned_from"].endswith("sparse.ckpt")') == True ]] ||
    fail "no pruned_from"
[[ $(json "$TMP/pruned.json" 'j["meta"]["class.9"] + j["meta"]["penalty"]') == "Ankle bootgamma-l1" ]] ||
    fail "settings and class names not carried over"

# Same accuracy, logits equal within the bound.
"$SLIM" eval "$TMP/sparse.ckpt" --limit 256 --logits "$TMP/a.f32" >"$TMP/a.out" || fail "eval before"
"$SLIM" eval "$TMP/pruned.ckpt" --limit 256 --logits "$TMP/b.f32" >"$TMP/b.out" || fail "eval after"
[[ "$(grep '^accuracy' "$TMP/a.out")" == "$(grep '^accuracy' "$TMP/b.out")" ]] ||
    fail "accuracy changed: $(grep '^accuracy' "$TMP/a.out" "$TMP/b.out")"
python3 - "$TMP/a.f32" "$TMP/b.f32" <<'EOF' || fail "logits before/after pruning differ"
import struct, sys
a = open(sys.argv[1], "rb").read(); b = open(sys.argv[2], "rb").read()
assert len(a) == len(b) == 256 * 10 * 4
x = struct.unpack("<2560f", a); y = struct.unpack("<2560f", b)
m = max(abs(v) for v in x)
sys.exit(0 if max(abs(u - v) for u, v in zip(x, y)) <= 1e-4 * m else 1)
EOF

# Pruning a pruned model removes nothing and stays exact.
"$SLIM" prune "$TMP/pruned.ckpt" --out "$TMP/again.ckpt" --check 64 >"$TMP/again.out" || fail "re-prune"
grep -qE '^total +([0-9]+) -> \1 ' "$TMP/again.out" || fail "re-pruning changed the channels"

# --- fine-tune the pruned model (penalty still on), prune by percent ----------------------------
"$SLIM" train --init "$TMP/pruned.ckpt" --limit 512 --test-limit 256 --batch 32 --lr 0.05 \
    --penalty gamma-l1 --lambda 0.05 --quiet --out "$TMP/tuned.ckpt" >"$TMP/tune.out" ||
    fail "fine-tuning with --init failed"
grep -q '^done at epoch 1, step 16:' "$TMP/tune.out" || fail "fine-tune summary: $(cat "$TMP/tune.out")"
"$SLIM" info "$TMP/tuned.ckpt" --json >"$TMP/tuned.json" || fail "info tuned"
[[ $(json "$TMP/tuned.json" 'j["params"]') -eq $(json "$TMP/pruned.json" 'j["params"]') ]] ||
    fail "--init did not keep the pruned structure"
[[ $(json "$TMP/tuned.json" 'j["meta"]["data"]') == fashion-mnist ]] || fail "--init data setting"

"$SLIM" prune "$TMP/sparse.ckpt" --percent 75 --out "$TMP/pct.ckpt" --check 64 >"$TMP/pct.out" ||
    fail "prune --percent failed"
grep -q '^max |Δlogit| = ' "$TMP/pct.out" || fail "prune --percent: no check line"
"$SLIM" info "$TMP/pct.ckpt" --json >"$TMP/pct.json" || fail "info pct"
[[ $(json "$TMP/pct.json" 'j["gamma_total"]') -eq 6 ]] || fail "--percent 75 of 24 channels should keep 6"
rc=0
"$SLIM" prune "$TMP/sparse.ckpt" --percent 5 --threshold 0.1 --out "$TMP/x.ckpt" 2>"$TMP/err.txt" || rc=$?
[[ $rc -eq 2 && ! -e "$TMP/x.ckpt" ]] || fail "--percent with --threshold: exit $rc"

# --- export -----------------------------------------------------------------------------------------
"$SLIM" export "$TMP/tuned.ckpt" --out "$TMP/model.slim" >"$TMP/export.out" || fail "export slim"
grep -qE '^parameters: [0-9,]+ -> [0-9,]+' "$TMP/export.out" || fail "export: no parameter line"
grep -qE '^bytes: +[0-9,]+ -> [0-9,]+' "$TMP/export.out" || fail "export: no size line"
"$SLIM" info "$TMP/model.slim" --json >"$TMP/model.json" || fail "info model.slim"
python3 - "$TMP/model.json" "$TMP/tuned.json" <<'EOF' || fail "exported model content"
import json, sys
m = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
assert m["format"] == "export" and m["position"] is None
assert not any(l["kind"] == "bn" for l in m["layers"]), "a BN survived the fold"
assert m["channels_source"] == "conv"
assert m["macs"] == t["macs"] and m["params"] < t["params"]
assert m["meta"]["class.0"] == "T-shirt/top" and m["meta"]["data"] == "fashion-mnist"
assert m["meta"]["data.mean"] == "0.286000013" and m["meta"]["data.std"] == "0.352999985", m["meta"]
assert "momentum" not in m["meta"] and m["meta"]["exported_from"].endswith("tuned.ckpt")
EOF
"$SLIM" eval "$TMP/tuned.ckpt" --limit 256 --logits "$TMP/t.f32" >"$TMP/t.out" || fail "eval tuned"
"$SLIM" eval "$TMP/model.slim" --limit 256 >"$TMP/m.out" || fail "eval model.slim"
[[ "$(grep '^accuracy' "$TMP/t.out")" == "$(grep '^accuracy' "$TMP/m.out")" ]] ||
    fail "export changed the accuracy"

"$SLIM" export "$TMP/tuned.ckpt" --out "$TMP/model.onnx" >"$TMP/onnx.out" || fail "export onnx"
grep -q '(onnx)' "$TMP/onnx.out" || fail "the .onnx suffix did not select ONNX"
[[ -s "$TMP/model.onnx" ]] || fail "no ONNX file"
for s in input logits slim conv1.weight; do
    grep -qaF "$s" "$TMP/model.onnx" || fail "ONNX file lacks '$s'"
done
"$SLIM" export "$TMP/tuned.ckpt" --out "$TMP/model2.bin" --format onnx >/dev/null || fail "--format onnx"
cmp -s "$TMP/model.onnx" "$TMP/model2.bin" || fail "--format onnx differs from the .onnx suffix"

# --- infer on PNG files of the first test images -------------------------------------------
fmnist_pngs "$TMP" 0 4
imgs=("$TMP"/img{0,1,2,3}.png)
"$SLIM" infer "$TMP/model.slim" "${imgs[@]}" >"$TMP/infer.out" 2>"$TMP/infer.err" ||
    fail "infer failed: $(cat "$TMP/infer.err")"
grep -q '^normalisation: mean 0.286, std 0.353 (stored in the model)' "$TMP/infer.out" ||
    fail "infer normalisation: $(cat "$TMP/infer.out")"
[[ $(grep -c '^  [123]\. ' "$TMP/infer.out") -eq 12 ]] || fail "want 3 classes x 4 images: $(cat "$TMP/infer.out")"
"$SLIM" infer "$TMP/tuned.ckpt" "${imgs[@]}" --backend ref --top 10 >"$TMP/infer_ref.out" || fail "infer ref"
# A checkpoint records its data's statistics (data.mean, data.std) since slim train stores them.
grep -q '^normalisation: mean 0.286, std 0.353 (stored in the model)' "$TMP/infer_ref.out" ||
    fail "infer on a checkpoint: recorded normalisation: $(cat "$TMP/infer_ref.out")"
python3 - "$TMP/infer.out" "$TMP/infer_ref.out" "$TMP/t.f32" <<'EOF' || fail "infer disagrees with eval"
import math, re, struct, sys
def parse(path):
    out, cur = {}, None
    for line in open(path):
        m = re.match(r"^  (\d+)\. .*?\s+([0-9.]+)%  \(class (\d+)\)$", line)
        if m:
            out[cur].append((int(m.group(3)), float(m.group(2))))
        elif line.endswith(".png\n"):
            cur = line.strip().rsplit("/", 1)[-1]; out[cur] = []
    return out
fast, ref = parse(sys.argv[1]), parse(sys.argv[2])
logits = struct.unpack("<40f", open(sys.argv[3], "rb").read()[:160])
for i in range(4):
    row = logits[10 * i:10 * i + 10]
    z = sum(math.exp(v - max(row)) for v in row)
    probs = sorted(((100 * math.exp(v - max(row)) / z, k) for k, v in enumerate(row)), reverse=True)
    name = "img%d.png" % i
    assert fast[name][0][0] == probs[0][1], (name, fast[name], probs[:3])
    assert len(ref[name]) == 10 and abs(sum(p for _, p in ref[name]) - 100) < 0.1
    for (k, p), (q, k2) in zip(ref[name][:3], probs[:3]):
        assert abs(p - q) < 0.02, (name, ref[name][:3], probs[:3])
    for (k, p), (k2, p2) in zip(fast[name], ref[name][:3]):
        assert abs(p - p2) < 0.02, (name, fast[name], ref[name][:3])
EOF

echo "prune/export/infer: all checks passed"
