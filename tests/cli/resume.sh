#!/usr/bin/env bash
# Exact resume through the command line (same seed, one thread):
#  1. a 2-epoch run vs. a 1-epoch run extended with --resume --epochs 2: the
#     weights are bit-identical (equal `slim info` digests, which hash every
#     parameter and BN statistic, and bit-equal `slim eval --logits`), and the
#     metrics CSV continues (header + 2 rows);
#  2. a run stopped by SIGINT in the middle of an epoch exits 130 with a
#     message saying how to resume, and `--resume` finishes it with the same
#     weights as an uninterrupted run.
# The schedule is constant: with cosine, a 1-epoch run anneals over 1 epoch
# and its extension cannot match a 2-epoch run.
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup resume
MODEL="$SRC/models/lenet-bn.net"
COMMON=(--model "$MODEL" --limit 512 --test-limit 256 --threads 1 --seed 7 --schedule constant
    --augment --quiet)

digest() { "$SLIM" info "$1" | sed -n 's/^weights digest: //p'; }

# --- 1. extend a finished run -----------------------------------------------------
"$SLIM" train "${COMMON[@]}" --epochs 2 --out "$TMP/full.ckpt" >/dev/null || fail "2-epoch run"
"$SLIM" train "${COMMON[@]}" --epochs 1 --out "$TMP/part.ckpt" >/dev/null || fail "1-epoch run"
d_part=$(digest "$TMP/part.ckpt")
# A row past the checkpoint's epoch, as a kill between an epoch's metrics row
# and its checkpoint leaves: --resume drops it (the CSV checks below).
tail -n 1 "$TMP/part.csv" | sed 's/^1,/2,/' >>"$TMP/part.csv"
# Resume in place (--out defaults to the resumed file).
"$SLIM" train --resume "$TMP/part.ckpt" --epochs 2 --threads 1 --quiet >"$TMP/resume.out" ||
    fail "resume failed"
grep -q '^done at epoch 2, step 8:' "$TMP/resume.out" || fail "resume summary: $(cat "$TMP/resume.out")"
d_full=$(digest "$TMP/full.ckpt")
d_res=$(digest "$TMP/part.ckpt")
[[ -n "$d_full" && "$d_full" == "$d_res" ]] || fail "digests differ: full $d_full, resumed $d_res"
[[ "$d_part" != "$d_full" ]] || fail "the digest did not change with training"
"$SLIM" eval "$TMP/full.ckpt" --limit 256 --logits "$TMP/full.f32" >/dev/null || fail "eval full"
"$SLIM" eval "$TMP/part.ckpt" --limit 256 --logits "$TMP/res.f32" >/dev/null || fail "eval resumed"
cmp -s "$TMP/full.f32" "$TMP/res.f32" || fail "logits of the resumed run differ"
[[ $(wc -l <"$TMP/part.csv") -eq 3 ]] || fail "resumed CSV: want header + 2 rows: $(cat "$TMP/part.csv")"
# Same rows apart from the throughput and peak RSS columns.
cut -d, -f1-7,9-18,20- "$TMP/full.csv" >"$TMP/a.csv"
cut -d, -f1-7,9-18,20- "$TMP/part.csv" >"$TMP/b.csv"
cmp -s "$TMP/a.csv" "$TMP/b.csv" || fail "metrics differ: $(cat "$TMP/a.csv" "$TMP/b.csv")"
# Resuming a finished run without --epochs trains nothing and says so.
"$SLIM" train --resume "$TMP/full.ckpt" --quiet >"$TMP/noop.out" || fail "no-op resume failed"
grep -q 'nothing to train' "$TMP/noop.out" || fail "no-op resume: $(cat "$TMP/noop.out")"
[[ "$(digest "$TMP/full.ckpt")" == "$d_full" ]] || fail "no-op resume changed the weights"
# Options that the checkpoint fixes are ignored with a warning.
"$SLIM" train --resume "$TMP/full.ckpt" --lr 9 --quiet >/dev/null 2>"$TMP/warn.txt" || fail "resume --lr"
grep -q '^slim: warning: --lr is ignored with --resume' "$TMP/warn.txt" || fail "no warning for --lr"

# --- 2. SIGINT in the middle of an epoch ------------------------------------------
LONG=(--model "$MODEL" --limit 6144 --test-limit 64 --batch 16 --threads 1 --seed 3 --epochs 1)
# Stopped at the first training step (plain progress logs batch 1 at once).
interrupt_run 'batch 1/384' 0 "$TMP/int" train "${LONG[@]}" --progress plain --out "$TMP/int.ckpt"
if [[ $RC -eq 0 ]]; then
    echo "note: the run finished before SIGINT arrived; mid-epoch resume not exercised"
else
    [[ $RC -eq 130 ]] || fail "interrupted run: exit $RC, want 130: $(cat "$TMP/int.err")"
    grep -qF "slim train --resume $TMP/int.ckpt" "$TMP/int.err" || fail "no resume hint: $(cat "$TMP/int.err")"
    step=$("$SLIM" info "$TMP/int.ckpt" | sed -nE 's/^position: epoch 0, step ([0-9]+).*/\1/p')
    [[ -n "$step" && $step -ge 1 && $step -lt 384 ]] || fail "interrupted checkpoint position: '$step'"
    "$SLIM" train --resume "$TMP/int.ckpt" --threads 1 --quiet >/dev/null || fail "resume after SIGINT"
    "$SLIM" train "${LONG[@]}" --quiet --out "$TMP/ref.ckpt" >/dev/null || fail "uninterrupted run"
    [[ "$(digest "$TMP/int.ckpt")" == "$(digest "$TMP/ref.ckpt")" ]] ||
        fail "resume after SIGINT at step $step differs from the uninterrupted run"
fi

echo "resume: all checks passed"
