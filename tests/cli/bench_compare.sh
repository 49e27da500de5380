#!/usr/bin/env bash
# tools/bench --bin and --compare on two stand-in build directories whose
# tools/slim_bench prints fixed figures (B's inference 10% slower): the
# medians, the B/A ratios, the ±3% verdicts and the option errors. Nothing is
# timed: real figures come from tools/bench alone, never from tests.
set -euo pipefail
SRC=${SLIM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
BENCH="$SRC/tools/bench"
TMP=$(mktemp -d /tmp/slim_bench_compare.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

fake() { # fake DIR INFER_IMAGES_PER_S
    mkdir -p "$1/tools"
    cat >"$1/tools/slim_bench" <<EOF
#!/bin/sh
echo "\$*" >>"$1/calls.txt"
if [ "\$1" = train ]; then echo '{"train_images_per_s": 500, "peak_rss_mib": 300}'
else echo '{"infer_images_per_s": $2, "latency_ms": 0.4, "pruned_time_ratio": 0.3, "pruned_mac_ratio": 0.24}'; fi
EOF
    chmod +x "$1/tools/slim_bench"
}
fake "$TMP/a" 2000
fake "$TMP/b" 1800

"$BENCH" --compare "$TMP/a" "$TMP/b" --runs 3 --batches 7 >"$TMP/out.txt" 2>"$TMP/err.txt" ||
    fail "compare: $(cat "$TMP/err.txt")"
grep -q "^| training images/s (batch 128) | 500.0 | 500.0 | 1.000 | yes" "$TMP/out.txt" &&
    grep -q "^| inference images/s (batch 256) | 2000.0 | 1800.0 | 0.900 | NO" "$TMP/out.txt" &&
    grep -q "^every figure within ±3%: NO" "$TMP/out.txt" || fail "compare table: $(cat "$TMP/out.txt")"
[[ $(grep -c "^train .* --batches 7 " "$TMP/a/calls.txt") -eq 3 &&
   $(grep -c "^infer " "$TMP/b/calls.txt") -eq 3 ]] || fail "runs: $(cat "$TMP/a/calls.txt")"

"$BENCH" --compare "$TMP/a" "$TMP/a" --runs 1 --json >"$TMP/out.json" 2>/dev/null || fail "compare --json"
python3 - "$TMP/out.json" <<'PY' || fail "compare JSON: $(cat "$TMP/out.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["all_within"] and d["ratio_b_over_a"]["infer"] == 1.0 and d["medians_a"]["rss"] == 300
PY

"$BENCH" --bin "$TMP/b" --no-peer --runs 1 --json >"$TMP/out.json" 2>/dev/null || fail "--bin"
python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); assert d["medians"]["slim_infer"] == 1800' \
    "$TMP/out.json" || fail "--bin JSON: $(cat "$TMP/out.json")"

bench_error() {
    local what=$1 pattern=$2 rc=0
    shift 2
    "$BENCH" "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -eq 2 ]] || fail "$what: exit $rc, want 2: $(cat "$TMP/err.txt")"
    grep -qF -- "$pattern" "$TMP/err.txt" || fail "$what: $(cat "$TMP/err.txt")"
}
bench_error "not built" "$TMP/none/tools/slim_bench does not exist" --compare "$TMP/a" "$TMP/none"
bench_error "--bin not built" "does not exist" --bin "$TMP/none"
bench_error "one directory" "expected 2 arguments" --compare "$TMP/a"
bench_error "both" "drop --bin" --compare "$TMP/a" "$TMP/b" --bin "$TMP/a"
bench_error "no runs" "number >= 1" --compare "$TMP/a" "$TMP/b" --runs 0
bench_error "tolerance" "fraction in [0, 1)" --compare "$TMP/a" "$TMP/b" --tolerance 2
echo "bench_compare: --compare and --bin tables, ratios, verdicts and option errors OK"
