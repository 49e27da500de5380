#!/usr/bin/env bash
# tools/frontier end to end on a tiny lenet-bn run (too short for the
# figures to mean anything: it checks the pipeline): a MAC-budget Γ-L1 run
# and Network Slimming's pipeline each give a row of runs.csv with a MAC
# fraction in (0, 1] (the pruned-to-budget one within the budget),
# frontier.md and the PNG; a second call trains nothing; --replot rewrites
# the report from runs.csv; usage errors exit 2; a missing model exits 1.
set -euo pipefail
# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup frontier
FR=$SRC/tools/frontier

out=$TMP/fr
quick=(--model "$SRC/models/lenet-bn.net" --budgets 50% --seeds 0 --epochs 1 --finetune 1
    --limit 256 --test-limit 128 --threads 1 --slim "$SLIM" --out "$out")
"$FR" "${quick[@]}" --methods macs,ns >"$TMP/log" 2>&1 || fail "frontier exited $?: $(tail -5 "$TMP/log")"
[[ $(grep -c '^\[frontier' "$TMP/log") -eq 2 ]] || fail "want 2 runs started: $(cat "$TMP/log")"
[[ $(tail -n +2 "$out/runs.csv" | wc -l) -eq 2 ]] || fail "runs.csv: $(cat "$out/runs.csv")"
while IFS=, read -r method budget seed acc macs full frac _; do
    awk -v f="$frac" 'BEGIN { exit !(f > 0 && f <= 1) }' || fail "$method: MAC fraction $frac"
    awk -v a="$acc" 'BEGIN { exit !(a >= 0 && a <= 100) }' || fail "$method: accuracy $acc"
    [[ $full == 503040 ]] || fail "$method: full MACs $full, want lenet-bn's 503040"
    if [[ $method == ns ]]; then
        awk -v f="$frac" 'BEGIN { exit !(f <= 0.5) }' || fail "ns pruned to 50% kept $frac"
    fi
done < <(tail -n +2 "$out/runs.csv")
grep -q '^| macs | 50% | 1 |' "$out/frontier.md" || fail "no macs row: $(cat "$out/frontier.md")"
grep -q '^| ns | 50% | 1 |' "$out/frontier.md" || fail "no ns row: $(cat "$out/frontier.md")"
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    [[ $(head -c 4 "$out/frontier.png" | tail -c 3) == PNG ]] || fail "frontier.png is not a PNG"
fi

# Again: everything is there, nothing is trained.
"$FR" "${quick[@]}" --methods macs,ns >"$TMP/log2" 2>&1 || fail "second call exited $?"
! grep -q '^\[frontier' "$TMP/log2" || fail "second call trained again: $(cat "$TMP/log2")"
rm "$out/frontier.md"
"$FR" "${quick[@]}" --replot >/dev/null 2>&1 || fail "--replot exited $?"
[[ -s "$out/frontier.md" ]] || fail "--replot wrote no frontier.md"

for bad in "--budgets 0%" "--budgets 25" "--budgets 150%" "--methods macs,foo" "--epochs 0"; do
    rc=0
    # shellcheck disable=SC2086
    "$FR" --slim "$SLIM" --out "$TMP/bad" $bad >"$TMP/bad.log" 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || fail "'$bad': exit $rc, want 2: $(cat "$TMP/bad.log")"
    grep -q "error:" "$TMP/bad.log" || fail "'$bad': no error line: $(cat "$TMP/bad.log")"
done
rc=0
"$FR" --model "$TMP/none.net" --slim "$SLIM" --out "$TMP/none" >"$TMP/none.log" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "missing model: exit $rc, want 1: $(cat "$TMP/none.log")"
grep -q "frontier: error: the model $TMP/none.net" "$TMP/none.log" || fail "missing model: $(cat "$TMP/none.log")"
echo "ok: tools/frontier pipeline, resume, replot, usage errors"
