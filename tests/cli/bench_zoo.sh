#!/usr/bin/env bash
# tools/bench --zoo on lenet-bn with tiny settings: the three variants
# (unpruned, Γ-L1 pruned, half-pruned) made, exported to ONNX and timed by
# slim under both ISA settings; --trained taking checkpoints from a
# directory (and a short training run when the model is not in it); the
# PyTorch peer's ONNX evaluator checked against slim's logits when
# python3-torch is installed; option errors. No figure is judged: speed is
# measured by tools/bench, never asserted in tests. Needs neither Node.js
# nor ONNX Runtime.
set -euo pipefail
source "$(dirname "$0")/common.bash"
cli_test_setup bench_zoo
BIN=${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must point to the build directory}
BENCH="$SRC/tools/bench"
TINY=(--models lenet-bn --epochs 1 --limit 256 --runs 1 --images 256 --check-images 8 --bin "$BIN")
mkdir -p "$TMP/none"

# No checkpoints for lenet-bn in --trained: a short run makes them.
"$BENCH" --zoo "${TINY[@]}" --no-peer --trained "$TMP/none" --work "$TMP/w1" --json \
    >"$TMP/out1.json" 2>"$TMP/err1.txt" || fail "zoo: $(cat "$TMP/err1.txt")"
grep -q "lenet-bn: $TMP/none/lenet-bn has no trained.ckpt and pruned.ckpt: a short training run" \
    "$TMP/err1.txt" || fail "no fallback message: $(cat "$TMP/err1.txt")"
for f in trained pruned half; do
    [[ -s "$TMP/w1/lenet-bn/$f.ckpt" && -s "$TMP/w1/lenet-bn/$f.onnx" ]] || fail "no $f.ckpt/.onnx"
done
python3 - "$TMP/out1.json" <<'PY' || fail "JSON: $(cat "$TMP/out1.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["peers"] == [] and d["runs"] == 1 and d["images"] == 256, d
rows = {(r["variant"], r["isa"]): r for r in d["rows"]}
assert sorted(rows) == sorted((v, i) for v in ("unpruned", "Γ-L1", "half") for i in ("full", "avx2"))
for r in rows.values():
    assert r["model"] == "lenet-bn" and r["slim"]["ips"] > 0 and r["slim"]["lat"] > 0, r
    assert len(r["slim"]["ips_runs"]) == 1 and not any(k.startswith("ips_ratio") for k in r), r
assert rows[("half", "full")]["macs"] < 0.6 * rows[("unpruned", "full")]["macs"]
assert rows[("Γ-L1", "full")]["macs"] <= rows[("unpruned", "full")]["macs"]
assert d["models"]["lenet-bn"]["origin"].startswith("short run: 1 epoch(s), 256 images")
PY

# --trained with the model's checkpoints: taken as they are. The PyTorch
# peer (when installed) runs the ONNX files and must match slim's logits.
mkdir -p "$TMP/zoo/lenet-bn"
cp "$TMP/w1/lenet-bn/trained.ckpt" "$TMP/w1/lenet-bn/pruned.ckpt" "$TMP/zoo/lenet-bn/"
if /usr/bin/python3 -c "import torch, onnx, numpy" 2>/dev/null; then
    PEER=(--peers torch)
else
    echo "python3-torch is not installed: the PyTorch peer part is skipped"
    PEER=(--no-peer)
fi
"$BENCH" --zoo "${TINY[@]}" "${PEER[@]}" --isa avx2 --trained "$TMP/zoo" --work "$TMP/w2" \
    >"$TMP/out2.txt" 2>"$TMP/err2.txt" || fail "zoo --trained: $(cat "$TMP/err2.txt" "$TMP/out2.txt")"
cmp -s "$TMP/zoo/lenet-bn/pruned.ckpt" "$TMP/w2/lenet-bn/pruned.ckpt" || fail "pruned.ckpt not taken"
grep -q "^- lenet-bn: trained in $TMP/zoo" "$TMP/out2.txt" || fail "origin: $(cat "$TMP/out2.txt")"
[[ $(grep -c "^| lenet-bn | .* | avx2 | " "$TMP/out2.txt") -eq 3 ]] || fail "table: $(cat "$TMP/out2.txt")"
if [[ ${PEER[0]} == --peers ]]; then
    grep -q "^| lenet-bn | unpruned | .* | avx2 | 1 | [0-9,]* | [0-9,]* | [0-9.]* | " "$TMP/out2.txt" &&
        grep -q "half PyTorch [0-9.]*e-" "$TMP/out2.txt" || fail "peer: $(cat "$TMP/out2.txt")"
fi

# No Node.js on the PATH: ONNX Runtime is skipped with a message, slim is
# still timed.
mkdir -p "$TMP/bin"
ln -s "$(python3 -c "import sys; print(sys.executable)")" "$TMP/bin/python3"
PATH="$TMP/bin" "$BENCH" --zoo "${TINY[@]}" --peers ort --isa full --trained "$TMP/zoo" \
    --work "$TMP/w3" >"$TMP/out3.txt" 2>"$TMP/err3.txt" || fail "no node: $(cat "$TMP/err3.txt")"
grep -q "ONNX Runtime skipped: node or npm is missing" "$TMP/err3.txt" &&
    ! grep -q "ORT" "$TMP/out3.txt" && [[ $(grep -c "^| lenet-bn | .* | full | 1 | [0-9,]* | " \
    "$TMP/out3.txt") -eq 3 ]] || fail "no node: $(cat "$TMP/err3.txt" "$TMP/out3.txt")"

bench_error() {
    local what=$1 pattern=$2 rc=0
    shift 2
    "$BENCH" --zoo "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -eq 2 ]] || fail "$what: exit $rc, want 2: $(cat "$TMP/err.txt")"
    grep -qF -- "$pattern" "$TMP/err.txt" || fail "$what: $(cat "$TMP/err.txt")"
}
bench_error "unknown model" "unknown model nope" --models nope --bin "$BIN"
bench_error "bad isa" "--isa takes a list of: full, avx2" --isa avx512 --bin "$BIN"
bench_error "bad peer" "--peers takes a list of: torch, ort" --peers tf --bin "$BIN"
bench_error "no trained dir" "--trained $TMP/missing is not a directory" --trained "$TMP/missing"
bench_error "no runs" "take a number >= 1" --runs 0 --bin "$BIN"
bench_error "bad lambda" "--lambda takes MODEL=X" --lambda 1e-3 --bin "$BIN"
bench_error "not built" "$TMP/none/tools/slim_bench does not exist" --bin "$TMP/none"
echo "bench_zoo: variants, --trained, the ONNX evaluator and option errors OK"
