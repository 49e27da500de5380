#!/usr/bin/env bash
# Live pruning through the command line (lenet-bn, one thread, same seed):
#  1. with a strong gamma-l1 the run removes channels while training: the
#     summary and `slim info` say how many and in which epochs, the CSV
#     rows carry the live channel count, and `slim prune` afterwards is
#     exact and removes nothing that had been 0 for K steps;
#  2. resume across a removal is exact: a 3-epoch run equals a 1-epoch run
#     (which already removed some) extended by --resume (equal digests);
#  3. --no-live-prune removes nothing; bad flag combinations are usage errors;
#  4. with a budget and the latency cost: removals, the budget against the
#     unpruned model, resume across removals exact, prune after exact.
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup live_prune
MODEL="$SRC/models/lenet-bn.net"
COMMON=(--model "$MODEL" --limit 2048 --test-limit 256 --threads 1 --seed 7 --schedule constant
    --lr 0.1 --penalty gamma-l1 --lambda 0.5 --quiet)
digest() { "$SLIM" info "$1" | sed -n 's/^weights digest: //p'; }
meta() { "$SLIM" info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['meta'].get('$2',''))"; }

# --- 1. channels go while training ----------------------------------------------------
"$SLIM" train "${COMMON[@]}" --live-prune-after 4 --epochs 3 --out "$TMP/full.ckpt" \
    >"$TMP/full.out" || fail "3-epoch run"
removed=$(sed -n 's/^live pruning (after 4 steps at 0): \([0-9]*\) channels removed.*/\1/p' "$TMP/full.out")
[[ -n $removed && $removed -gt 0 ]] || fail "no channel removed: $(cat "$TMP/full.out")"
[[ $(meta "$TMP/full.ckpt" live_prune.removed) == "$removed" ]] || fail "info: live_prune.removed"
"$SLIM" info "$TMP/full.ckpt" >"$TMP/info.txt"
grep -q "^channels removed while training: $removed " "$TMP/info.txt" ||
    fail "slim info: no live-pruning line: $(cat "$TMP/info.txt")"
python3 - "$TMP/full.csv" "$removed" <<'PYEOF' || fail "CSV live columns"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert len(rows) == 3, rows
assert int(rows[-1]["removed_live"]) == int(sys.argv[2]), rows[-1]
assert int(rows[-1]["live_channels"]) == 24 - int(sys.argv[2]), rows[-1]
assert all(float(r["peak_rss_mib"]) > 0 for r in rows)
PYEOF
"$SLIM" prune "$TMP/full.ckpt" --out "$TMP/pruned.ckpt" >"$TMP/prune.out" || fail "prune"
grep -q 'argmax mismatches: 0' "$TMP/prune.out" || fail "prune not exact: $(cat "$TMP/prune.out")"

# --- 2. resume across a removal ---------------------------------------------------------
"$SLIM" train "${COMMON[@]}" --live-prune-after 4 --epochs 1 --out "$TMP/part.ckpt" >/dev/null ||
    fail "1-epoch run"
part=$(meta "$TMP/part.ckpt" live_prune.removed)
[[ $part -gt 0 && $part -lt $removed ]] || fail "want a removal before and after the resume: $part of $removed"
"$SLIM" train --resume "$TMP/part.ckpt" --epochs 3 --threads 1 --quiet >/dev/null || fail "resume"
d_full=$(digest "$TMP/full.ckpt")
[[ -n $d_full && $d_full == "$(digest "$TMP/part.ckpt")" ]] || fail "resumed digest differs"
[[ $(meta "$TMP/part.ckpt" live_prune.history) == "$(meta "$TMP/full.ckpt" live_prune.history)" ]] ||
    fail "history differs"

# --- 3. off, and usage errors ---------------------------------------------------------------
"$SLIM" train "${COMMON[@]}" --no-live-prune --epochs 1 --out "$TMP/off.ckpt" >"$TMP/off.out" ||
    fail "run without live pruning"
! grep -q '^live pruning' "$TMP/off.out" || fail "--no-live-prune printed a live-pruning line"
[[ $(meta "$TMP/off.ckpt" live_prune.remove) == 0 ]] || fail "off: live_prune.remove"
OUT="$TMP/err"
mkdir -p "$OUT"
EXPECT_STATUS=2 expect_error "live-prune without a gamma penalty" "needs a gamma penalty" \
    train --model "$MODEL" --live-prune --out "$OUT/x.ckpt"
EXPECT_STATUS=2 expect_error "live-prune-after 0" "--live-prune-after" \
    train --model "$MODEL" --penalty gamma-l1 --lambda 1e-3 --live-prune-after 0 --out "$OUT/x.ckpt"

# --- 4. with a budget and the latency cost, asked for ---------------------------------------
# The per-gamma state (penalty weights, the controller's) and the latency
# table follow the narrower model: the budget is still a share of the
# model the run began with, and a run stopped after removals and resumed
# equals the uninterrupted one (the table measured once, by the reference).
BUD=(--model "$MODEL" --limit 2048 --test-limit 256 --threads 1 --seed 7 --schedule constant
    --lr 0.1 --batch 16 --epochs 3 --penalty gamma-l1 --target-macs 30% --cost latency
    --live-prune --live-prune-after 4)
"$SLIM" train "${BUD[@]}" --quiet --out "$TMP/bref.ckpt" >"$TMP/bref.out" || fail "budget run"
bremoved=$(meta "$TMP/bref.ckpt" live_prune.removed)
[[ $bremoved -gt 0 ]] || fail "budget run: no channel removed live: $(cat "$TMP/bref.out")"
grep -q "^budget: .*% of the unpruned 5.03e+05)" "$TMP/bref.out" ||
    fail "budget line not against the unpruned model: $(cat "$TMP/bref.out")"
interrupt_run 'epoch 2/3' 0.2 "$TMP/bint" train "${BUD[@]}" --latency-from "$TMP/bref.ckpt" \
    --progress plain --out "$TMP/bint.ckpt"
if [[ $RC -eq 130 ]]; then
    [[ $(meta "$TMP/bint.ckpt" live_prune.removed) -gt 0 ]] ||
        fail "want the stop after a removal: $(meta "$TMP/bint.ckpt" live_prune.history)"
    "$SLIM" train --resume "$TMP/bint.ckpt" --threads 1 --quiet >/dev/null || fail "budget resume"
    [[ $(digest "$TMP/bint.ckpt") == "$(digest "$TMP/bref.ckpt")" ]] ||
        fail "budget run resumed across removals differs from the uninterrupted one"
else
    [[ $RC -eq 0 ]] || fail "interrupted budget run: exit $RC: $(cat "$TMP/bint.err")"
    echo "note: the budget run finished before SIGINT arrived; resume not exercised"
fi
"$SLIM" prune "$TMP/bref.ckpt" --out "$TMP/bpruned.ckpt" >"$TMP/bprune.out" || fail "budget prune"
grep -q 'argmax mismatches: 0' "$TMP/bprune.out" || fail "budget prune: $(cat "$TMP/bprune.out")"
echo "live_prune: ok ($removed channels removed live; $bremoved with a budget)"
