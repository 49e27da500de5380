#!/usr/bin/env bash
# tools/frontier end to end on a tiny lenet-bn run (too short for the
# figures to mean anything: it checks the pipeline), two jobs at once: a
# MAC-budget and a latency-budget Γ-L1 run and Network Slimming's pipeline
# each give a row of runs.csv (MAC fractions in (0, 1], the pruned-to-budget
# one within the budget, measured latencies, the latency run's prediction),
# frontier.md and the PNG; a second call trains nothing; --replot rewrites
# the report from runs.csv; a budget slim train refuses is listed as failed
# (exit 1) while the report is still written; a damaged runs.csv is refused
# naming the file and line (exit 1); usage errors exit 2.
set -euo pipefail
# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup frontier
FR=$SRC/tools/frontier
BENCH=$(dirname "$SLIM")/tools/slim_bench
[[ -x $BENCH ]] || fail "$BENCH not built"

out=$TMP/fr
# MACs and NS at 99%; latency at 100%, which every latency table reaches
# (lenet-bn's smallest model predicts 57% of the unpruned latency in a
# quiet Release build, 82% under the sanitizers, and 100% when the machine
# is so loaded that every width timed alike: the table never falls as a
# width grows).
quick=(--models "$SRC/models/lenet-bn.net:0" --budgets 99% --epochs 2 --finetune 1
    --limit 256 --test-limit 128 --eval-limit 128 --jobs 2 --threads 1
    --slim "$SLIM" --bench "$BENCH" --out "$out")
both() { # $1: log
    "$FR" "${quick[@]}" --methods macs,ns >"$1" 2>&1 || fail "frontier exited $?: $(tail -5 "$1")"
    "$FR" "${quick[@]}" --methods latency --budgets 100% >>"$1" 2>&1 ||
        fail "frontier (latency) exited $?: $(tail -5 "$1")"
}
both "$TMP/log"
[[ $(grep -c 'lenet-bn [a-z]* 99% seed 0$' "$TMP/log") -eq 2 ]] || fail "want 2 runs at 99%: $(cat "$TMP/log")"
grep -q 'lenet-bn latency 100% seed 0$' "$TMP/log" || fail "no latency run: $(cat "$TMP/log")"
grep -q 'measuring the latency table' "$TMP/log" || fail "no latency table: $(cat "$TMP/log")"
[[ $(tail -n +2 "$out/runs.csv" | wc -l) -eq 3 ]] || fail "runs.csv: $(cat "$out/runs.csv")"
while IFS=, read -r model method budget seed acc macs full frac params fparams pfrac plat plfrac lat flat lfrac _; do
    want=99%
    [[ $method == latency ]] && want=100%
    [[ $model == lenet-bn && $budget == "$want" && $seed == 0 ]] || fail "row $model $method $budget $seed"
    awk -v f="$frac" 'BEGIN { exit !(f > 0 && f <= 1) }' || fail "$method: MAC fraction $frac"
    awk -v f="$pfrac" 'BEGIN { exit !(f > 0 && f <= 1) }' || fail "$method: params fraction $pfrac"
    awk -v a="$acc" 'BEGIN { exit !(a >= 0 && a <= 100) }' || fail "$method: accuracy $acc"
    awk -v l="$lat" -v f="$flat" -v r="$lfrac" \
        'BEGIN { exit !(l > 0 && f > 0 && r > 0 && (l / f - r)^2 < 1e-6) }' ||
        fail "$method: latency $lat of $flat, fraction $lfrac"
    [[ $full == 503040 && $fparams == 29762 ]] || fail "$method: full MACs $full, params $fparams"
    case $method in
    ns) awk -v f="$frac" 'BEGIN { exit !(f <= 0.99) }' || fail "ns pruned to 99% kept $frac" ;;
    latency) awk -v p="$plat" -v f="$plfrac" 'BEGIN { exit !(p > 0 && f > 0 && f <= 1) }' ||
        fail "latency: predicted $plat us, fraction $plfrac" ;;
    esac
done < <(tail -n +2 "$out/runs.csv")
# The measured latency's spread: the fraction's range over the timing passes.
python3 - "$out/runs.csv" <<'PY' || fail "latency spread: $(cat "$out/runs.csv")"
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    lo, mid, hi = (float(r[k]) for k in ("latency_fraction_lo", "latency_fraction",
                                         "latency_fraction_hi"))
    assert 0 < lo <= mid <= hi, r
PY
grep -q "^- latency 100%: measured [0-9.]* of the budget ([0-9.]*–[0-9.]* over the passes): " \
    "$out/frontier.md" || fail "no measured latency line: $(cat "$out/frontier.md")"
for m in "macs | 99%" "latency | 100%" "ns | 99%"; do
    grep -q "^| $m | 1 |" "$out/frontier.md" || fail "no $m row: $(cat "$out/frontier.md")"
done
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    [[ $(head -c 4 "$out/frontier.png" | tail -c 3) == PNG ]] || fail "frontier.png is not a PNG"
fi

# Again: everything is there, nothing is trained or timed.
both "$TMP/log2"
! grep -q 'seed 0$\|measuring' "$TMP/log2" || fail "second call worked again: $(cat "$TMP/log2")"
# --retime: nothing trained, every run timed again (a planted latency goes).
python3 - "$out/runs.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
fields = list(rows[0].keys())
for r in rows:
    r["latency_ms"] = "999"
w = csv.DictWriter(open(sys.argv[1], "w", newline=""), fieldnames=fields)
w.writeheader()
w.writerows(rows)
PY
"$FR" "${quick[@]}" --retime >"$TMP/log-retime" 2>&1 || fail "--retime exited $?: $(tail -5 "$TMP/log-retime")"
! grep -q 'seed 0$\|measuring' "$TMP/log-retime" || fail "--retime trained: $(cat "$TMP/log-retime")"
! grep -q ',999,' "$out/runs.csv" || fail "--retime left a latency untimed: $(cat "$out/runs.csv")"
"$FR" "${quick[@]}" --retime --replot >/dev/null 2>&1 && fail "--retime --replot accepted"
rm "$out/frontier.md"
"$FR" "${quick[@]}" --replot >/dev/null 2>&1 || fail "--replot exited $?"
[[ -s "$out/frontier.md" ]] || fail "--replot wrote no frontier.md"
# A runs.csv from before the spread columns: read, reported without them.
mkdir -p "$TMP/old"
cut -d, -f1-18 "$out/runs.csv" >"$TMP/old/runs.csv"
"$FR" --replot --out "$TMP/old" >/dev/null 2>&1 || fail "--replot of an old runs.csv exited $?"
grep -q "^- latency 100%: measured [0-9.]* of the budget" "$TMP/old/frontier.md" ||
    fail "old runs.csv: no measured latency line: $(cat "$TMP/old/frontier.md")"

# lenet-bn's smallest model takes more than half its latency: slim train
# refuses the budget; the run is listed, the others' report still written.
rc=0
"$FR" "${quick[@]}" --methods latency --budgets 40% >"$TMP/log3" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "unreachable latency budget: exit $rc, want 1: $(cat "$TMP/log3")"
grep -q "frontier: error: lenet-bn latency 40% seed 0: slim train exited 1: .*below the smallest" \
    "$TMP/log3" || fail "no error for the refused budget: $(cat "$TMP/log3")"
grep -q "^- lenet-bn latency 40% seed 0: " "$out/frontier.md" || fail "failure not in frontier.md"
grep -q "^| macs | 99% | 1 |" "$out/frontier.md" || fail "the earlier rows are gone from the report"

# A damaged runs.csv: an error naming the file and the line, exit 1, no
# traceback, no report written from it.
good=$(sed -n 2p "$out/runs.csv")
for damage in cut nonnumber method budget binary header; do
    d=$TMP/damaged-$damage
    mkdir -p "$d"
    head -1 "$out/runs.csv" >"$d/runs.csv"
    case $damage in
    cut) echo "${good%%,*},macs,99%,0,8" >>"$d/runs.csv"; want='line 2: 5 fields where the header has 20' ;;
    nonnumber) echo "$good" | awk -F, -v OFS=, '{ $5 = "x1"; print }' >>"$d/runs.csv"
        want="line 2: accuracy 'x1' is not a number" ;;
    method) echo "$good" | awk -F, -v OFS=, '{ $2 = "foo"; print }' >>"$d/runs.csv"
        want="line 2: method 'foo' is none of" ;;
    budget) echo "$good" | awk -F, -v OFS=, '{ $3 = "half"; print }' >>"$d/runs.csv"
        want="line 2: budget 'half' is not a percentage" ;;
    binary) printf '\xff\xfe\x00\x01' >"$d/runs.csv"; want='not text (byte 0)' ;;
    header) echo "model,method" >"$d/runs.csv"; want='its header lacks budget, seed' ;;
    esac
    for how in --replot ""; do
        rc=0
        # shellcheck disable=SC2086
        "$FR" "${quick[@]}" --out "$d" $how >"$d/log" 2>&1 || rc=$?
        [[ $rc -eq 1 ]] || fail "$damage $how: exit $rc, want 1: $(cat "$d/log")"
        grep -q "^frontier: error: $d/runs.csv.*$want" "$d/log" || fail "$damage $how: $(cat "$d/log")"
        ! grep -q Traceback "$d/log" || fail "$damage $how: a traceback: $(cat "$d/log")"
        [[ ! -e $d/frontier.md ]] || fail "$damage $how: a report was written"
    done
done

for bad in "--budgets 0%" "--budgets 25" "--budgets 150%" "--methods macs,foo" "--epochs 0" \
    "--jobs 0" "--models nosuch" "--models lenet-bn:x" "--epochs 2 --finetune 2"; do
    rc=0
    # shellcheck disable=SC2086
    "$FR" --slim "$SLIM" --bench "$BENCH" --out "$TMP/bad" $bad >"$TMP/bad.log" 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || fail "'$bad': exit $rc, want 2: $(cat "$TMP/bad.log")"
    grep -q "error:" "$TMP/bad.log" || fail "'$bad': no error line: $(cat "$TMP/bad.log")"
done
rc=0
"$FR" --slim "$TMP/none" --out "$TMP/none" >"$TMP/none.log" 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "missing slim: exit $rc, want 2: $(cat "$TMP/none.log")"
grep -q "$TMP/none is not an executable" "$TMP/none.log" || fail "missing slim: $(cat "$TMP/none.log")"
echo "ok: tools/frontier pipeline, two jobs, latency, resume, replot, failures, damaged runs.csv, usage errors"
