#!/usr/bin/env bash
# build/tools/slim_bench (tools/bench's measuring side) on a small model:
# its JSON carries every figure tools/bench reads, and bad options are
# refused with a message and exit status 2. No figure is judged: speed is
# measured by tools/bench, never asserted in tests.
set -euo pipefail
source "$(dirname "$0")/common.bash"
cli_test_setup slim_bench
BENCH="${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must point to the build directory}/tools/slim_bench"
[[ -x "$BENCH" ]] || fail "$BENCH not built"
MODEL="$SRC/models/lenet-bn.net"

"$BENCH" infer "$MODEL" --images 64 --passes 1 --prune-fraction 0.5 >"$TMP/infer.json" \
    2>"$TMP/err.txt" || fail "infer: $(cat "$TMP/err.txt")"
# --plan and --profile: each model's plan and per-step times on stderr.
"$BENCH" infer "$MODEL" --images 64 --passes 1 --plan --profile >/dev/null 2>"$TMP/prof.txt" ||
    fail "profile: $(cat "$TMP/prof.txt")"
grep -q "each step alone" "$TMP/prof.txt" && grep -q "all steps" "$TMP/prof.txt" &&
    grep -q "^plan for batch .* steps (.* reorders)" "$TMP/prof.txt" || fail "profile output: $(cat "$TMP/prof.txt")"
"$BENCH" train "$MODEL" --batches 1 >"$TMP/train.json" 2>"$TMP/err.txt" ||
    fail "train: $(cat "$TMP/err.txt")"
# prune: the synthetic pruned copy as a checkpoint slim reads, with the
# source checkpoint's metadata.
"$SLIM" train --model "$MODEL" --epochs 1 --limit 128 --test-limit 64 --out "$TMP/m.ckpt" \
    >/dev/null 2>"$TMP/err.txt" || fail "train: $(cat "$TMP/err.txt")"
"$BENCH" prune "$TMP/m.ckpt" --prune-fraction 0.5 --out "$TMP/half.ckpt" >"$TMP/prune.json" \
    2>"$TMP/err.txt" || fail "prune: $(cat "$TMP/err.txt")"
"$SLIM" info "$TMP/m.ckpt" --json >"$TMP/m.json" && "$SLIM" info "$TMP/half.ckpt" --json \
    >"$TMP/half.json" || fail "info of the pruned copy"
python3 - "$TMP" <<'PY' || fail "prune: $(cat "$TMP/prune.json" "$TMP/half.json")"
import json, sys
p = json.load(open(sys.argv[1] + "/prune.json"))
m, h = (json.load(open(sys.argv[1] + f)) for f in ("/m.json", "/half.json"))
assert abs(h["macs"] / m["macs"] - p["pruned_mac_ratio"]) < 1e-3 and p["pruned_mac_ratio"] < 0.6, p
assert h["meta"]["data"] == m["meta"]["data"] == "fashion-mnist", h["meta"]
PY

python3 - "$TMP" <<'PY' || fail "JSON: $(cat "$TMP/infer.json" "$TMP/train.json")"
import json, sys
d = json.load(open(sys.argv[1] + "/infer.json"))
for k in ("infer_images_per_s", "latency_ms", "macs", "pruned_infer_images_per_s",
          "pruned_latency_ms", "pruned_macs", "pruned_mac_ratio", "pruned_time_ratio", "peak_rss_mib"):
    assert d[k] > 0, k
assert d["latency_worst_ms"] >= d["latency_ms"] and d["pruned_latency_worst_ms"] >= d["pruned_latency_ms"]
assert d["pruned_macs"] < d["macs"] and abs(d["pruned_mac_ratio"] - d["pruned_macs"] / d["macs"]) < 1e-3
t = json.load(open(sys.argv[1] + "/train.json"))
assert t["train_images_per_s"] > 0 and t["peak_rss_mib"] > 0 and t["batches"] == 1
PY

bench_error() {
    local what=$1 pattern=$2
    shift 2
    local rc=0
    "$BENCH" "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -eq 2 ]] || fail "$what: exit $rc, want 2: $(cat "$TMP/err.txt")"
    [[ ! -s "$TMP/out.txt" ]] || fail "$what: printed $(cat "$TMP/out.txt")"
    grep -qF -- "$pattern" "$TMP/err.txt" || fail "$what: $(cat "$TMP/err.txt")"
}
bench_error "no mode" "usage" "$MODEL"
bench_error "not a number" "--images takes a number, not 'x'" infer "$MODEL" --images x
bench_error "trailing junk" "--threads takes a number, not '2x'" infer "$MODEL" --threads 2x
bench_error "NaN fraction" "a fraction in [0, 1)" infer "$MODEL" --prune-fraction nan
bench_error "negative images" "--images a count" infer "$MODEL" --images -1
bench_error "pruned-only alone" "--pruned-only needs" infer "$MODEL" --pruned-only
bench_error "missing value" "--passes needs a value" infer "$MODEL" --passes
bench_error "unknown option" "unknown option --fast" infer "$MODEL" --fast 1
bench_error "prune without --out" "prune needs --prune-fraction and --out" prune "$MODEL" \
    --prune-fraction 0.5
bench_error "prune without a fraction" "prune needs" prune "$MODEL" --out "$TMP/x.ckpt"
bench_error "--out for infer" "--out is for prune only" infer "$MODEL" --out "$TMP/x.ckpt"
bench_error "empty --out" "--out takes a file name, not ''" prune "$MODEL" --prune-fraction 0.5 --out ""
echo "slim_bench: JSON and option errors OK"
