#!/usr/bin/env bash
# Divergence through the command line. A good one-epoch run saves A.ckpt;
# then a NEW run with an absurd learning rate and the same --out must
#   - stop before its first epoch ends, with exit status 1 and a
#     `slim: error:` line that says it diverged and names the step (--lr 1e6:
#     the loss becomes NaN/Inf within a few steps);
#   - leave A.ckpt and its metrics A.csv byte-identical (cmp), A.ckpt still
#     loadable, and no temporary file (A.ckpt.tmp.*, A.csv.tmp.*) behind.
# A milder --lr 1e2, whose BN statistics overflow while the loss and the
# weights stay finite, must also fail, named as diverged, without touching
# A.ckpt.
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup diverge
MODEL="$SRC/models/lenet-bn.net"
COMMON=(--model "$MODEL" --limit 2048 --test-limit 256 --batch 128 --epochs 1 --seed 1)

"$SLIM" train "${COMMON[@]}" --quiet --out "$TMP/A.ckpt" >/dev/null || fail "the sane run failed"
cp "$TMP/A.ckpt" "$TMP/A.orig"
cp "$TMP/A.csv" "$TMP/A.csv.orig"
"$SLIM" info "$TMP/A.ckpt" >/dev/null || fail "A.ckpt does not load"

# diverge LR: runs a new training with --lr LR and --out A.ckpt; it must fail.
diverge() {
    local lr=$1 rc=0
    "$SLIM" train "${COMMON[@]}" --lr "$lr" --progress plain --out "$TMP/A.ckpt" \
        >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -eq 1 ]] || fail "--lr $lr: exit $rc, want 1: $(cat "$TMP/err.txt")"
    grep -q '^slim: error: ' "$TMP/err.txt" || fail "--lr $lr: no 'slim: error:': $(cat "$TMP/err.txt")"
    cmp -s "$TMP/A.ckpt" "$TMP/A.orig" || fail "--lr $lr: A.ckpt changed"
    cmp -s "$TMP/A.csv" "$TMP/A.csv.orig" || fail "--lr $lr: A's metrics changed: $(cat "$TMP/A.csv")"
    "$SLIM" info "$TMP/A.ckpt" >/dev/null || fail "--lr $lr: A.ckpt no longer loads"
    local left
    left=$(find "$TMP" -name '*.tmp.*')
    [[ -z $left ]] || fail "--lr $lr: temporary files left: $left"
}

diverge 1e6
msg=$(grep '^slim: error: ' "$TMP/err.txt")
[[ $msg =~ diverged\ at\ step\ ([0-9]+) ]] || fail "--lr 1e6: message does not name the step: $msg"
step=${BASH_REMATCH[1]}
# 2048 images in batches of 128: an epoch is 16 steps.
[[ $step -ge 1 && $step -le 16 ]] || fail "--lr 1e6: diverged at step $step, not in the first epoch"
grep -q 'A.ckpt' <<<"$msg" || fail "--lr 1e6: message does not name the kept checkpoint: $msg"
grep -q 'epoch 1/1:' "$TMP/err.txt" && fail "--lr 1e6: an epoch finished: $(cat "$TMP/err.txt")"

diverge 1e2
# Its BN running variance overflows while the weights stay finite: the run
# must still be named as diverged (with the step) before it evaluates.
msg=$(grep '^slim: error: ' "$TMP/err.txt")
[[ $msg =~ diverged\ in\ epoch\ 1:\ after\ step\ [0-9]+ ]] ||
    fail "--lr 1e2: message does not say it diverged and name the step: $msg"
grep -q 'epoch 1/1:' "$TMP/err.txt" && fail "--lr 1e2: the broken model was evaluated: $(cat "$TMP/err.txt")"

echo "divergence: all checks passed (lr 1e6 diverged at step $step)"
