#!/usr/bin/env bash
# Data-parallel training under mpirun (docs/SCALE.md), through the command
# line, on lenet-bn (batch norm in two layers) with 512 images:
#  1. two -np 2 runs have the same weights digest (fixed reduction order);
#  2. -np 2 and -np 3 (128 = 43 + 43 + 42: uneven shards) train what one
#     process trains: per-epoch train loss within 1e-3 relative, test
#     accuracy within 2 points; --bn-sync off trains something else;
#  3. resume: a -np 2 run extended by -np 2 is bit for bit the
#     uninterrupted -np 2 run; extended by -np 3 (another N) it continues
#     (step count) and its loss is the one-process loss within 1e-3;
#  4. faults: a rank whose data cannot be read stops the job with a message
#     naming that rank, printed once (all ranks agree on it: no MPI_Abort),
#     and writes nothing; a rank killed mid-run ends the
#     job within 60 s, non-zero, a message naming the rank, and the last
#     checkpoint intact; SIGINT to one rank stops every rank after the same
#     step (exit 130), and the resumed run is the uninterrupted one.
# Skipped (exit 77) when slim is built without MPI.
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
if "$SLIM" --version | grep -q 'MPI: not built in'; then
    # Started by a launcher anyway, it refuses to run N copies of one run.
    rc=0
    OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 "$SLIM" train --model "${SLIM_SOURCE_DIR:?}/models/lenet-bn.net" \
        --out /nonexistent/x.ckpt 2>/tmp/slim_mpi_nompi.$$ || rc=$?
    grep -q 'built without MPI' /tmp/slim_mpi_nompi.$$ && [[ $rc -eq 1 ]] ||
        { cat /tmp/slim_mpi_nompi.$$ >&2; rm -f /tmp/slim_mpi_nompi.$$; echo "FAIL: launched without MPI: exit $rc" >&2; exit 1; }
    rm -f /tmp/slim_mpi_nompi.$$
    echo "skipped: slim is built without MPI (checked only that mpirun is refused)"
    exit 77
fi
cli_test_setup mpi
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMP_NUM_THREADS=1
MPIRUN=(mpirun --allow-run-as-root --oversubscribe)
MODEL="$SRC/models/lenet-bn.net"
COMMON=(--model "$MODEL" --limit 512 --test-limit 256 --threads 1 --seed 7 --schedule constant
    --augment --quiet)

digest() { "$SLIM" info "$1" | sed -n 's/^weights digest: //p'; }
# column NAME of row ROW (1 = the first epoch) of a metrics CSV
column() {
    awk -F, -v name="$2" -v row="$3" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i }
        NR == row + 1 { print $c }' "$1"
}
# close A B TOL: |A - B| <= TOL max(|B|, 1e-12)
close() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d;
    m = b < 0 ? -b : b; exit !(d <= t * (m > 1e-12 ? m : 1e-12)) }'; }
# every step, each rank's parameters are compared with rank 0's
run() { timeout 300 "${MPIRUN[@]}" -np "$1" "$SLIM" train --dist-check 1 "${@:2}"; }

# --- 1. bit-identical for a fixed N -----------------------------------------------
"$SLIM" train "${COMMON[@]}" --epochs 2 --out "$TMP/one.ckpt" >/dev/null || fail "one process"
run 2 "${COMMON[@]}" --epochs 2 --out "$TMP/a.ckpt" >"$TMP/a.out" || fail "-np 2: $(cat "$TMP/a.out")"
run 2 "${COMMON[@]}" --epochs 2 --out "$TMP/b.ckpt" >/dev/null || fail "-np 2 again"
[[ -n "$(digest "$TMP/a.ckpt")" && "$(digest "$TMP/a.ckpt")" == "$(digest "$TMP/b.ckpt")" ]] ||
    fail "two -np 2 runs differ: $(digest "$TMP/a.ckpt") $(digest "$TMP/b.ckpt")"
# rank 0 alone reports
[[ $(grep -c '^done at epoch 2, step 8:' "$TMP/a.out") -eq 1 ]] || fail "-np 2 summary: $(cat "$TMP/a.out")"

# --- 2. the one-process function ----------------------------------------------------
run 3 "${COMMON[@]}" --epochs 2 --out "$TMP/c.ckpt" >/dev/null || fail "-np 3"
for r in a c; do
    for row in 1 2; do
        l1=$(column "$TMP/one.csv" train_loss $row)
        lr=$(column "$TMP/$r.csv" train_loss $row)
        close "$lr" "$l1" 1e-3 || fail "$r.csv epoch $row: train loss $lr, one process $l1"
    done
    a1=$(column "$TMP/one.csv" test_acc 2)
    ar=$(column "$TMP/$r.csv" test_acc 2)
    close "$ar" "$a1" 0.02 || fail "$r.csv: test accuracy $ar, one process $a1"
done
run 2 "${COMMON[@]}" --epochs 2 --bn-sync off --out "$TMP/off.ckpt" >/dev/null || fail "--bn-sync off"
l1=$(column "$TMP/one.csv" train_loss 2)
loff=$(column "$TMP/off.csv" train_loss 2)
! close "$loff" "$l1" 1e-6 || fail "--bn-sync off gives the one-process loss $l1"

# --- 3. resume, with the same N and with another ------------------------------------
run 2 "${COMMON[@]}" --epochs 1 --out "$TMP/r2.ckpt" >/dev/null || fail "-np 2, 1 epoch"
cp "$TMP/r2.ckpt" "$TMP/r3.ckpt"
cp "$TMP/r2.csv" "$TMP/r3.csv"
timeout 300 "${MPIRUN[@]}" -np 2 "$SLIM" train --resume "$TMP/r2.ckpt" --epochs 2 --threads 1 \
    --quiet >/dev/null || fail "-np 2 resume"
[[ "$(digest "$TMP/r2.ckpt")" == "$(digest "$TMP/a.ckpt")" ]] ||
    fail "-np 2 resumed by -np 2 differs from the uninterrupted -np 2 run"
timeout 300 "${MPIRUN[@]}" -np 3 "$SLIM" train --resume "$TMP/r3.ckpt" --epochs 2 --threads 1 \
    --quiet >"$TMP/r3.out" || fail "-np 3 resume"
grep -q '^done at epoch 2, step 8:' "$TMP/r3.out" || fail "-np 3 resume: $(cat "$TMP/r3.out")"
l3=$(column "$TMP/r3.csv" train_loss 2)
close "$l3" "$l1" 1e-3 || fail "resumed by -np 3: epoch 2 train loss $l3, one process $l1"

# --- 4. faults ----------------------------------------------------------------------
# Rank 1 reads a data directory that does not exist.
rc=0
timeout 60 "${MPIRUN[@]}" -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
        exec "$0" "$@" --data /nonexistent/data; else exec "$0" "$@"; fi' \
    "$SLIM" train "${COMMON[@]}" --out "$TMP/bad.ckpt" >"$TMP/bad.out" 2>"$TMP/bad.err" || rc=$?
[[ $rc -ne 124 ]] || fail "bad data on rank 1: still running after 60 s"
[[ $rc -ne 0 ]] || fail "bad data on rank 1: exit status 0"
grep -q '^slim: error: rank 1: .*nonexistent' "$TMP/bad.err" || fail "bad data: $(cat "$TMP/bad.err")"
[[ $(grep -c '^slim: error:' "$TMP/bad.err") -eq 1 ]] || fail "bad data: one message wanted: $(cat "$TMP/bad.err")"
# every rank knew the error and ended by itself: no MPI_Abort
! grep -q 'MPI_ABORT' "$TMP/bad.err" || fail "bad data: the job was aborted: $(cat "$TMP/bad.err")"
[[ ! -e "$TMP/bad.ckpt" ]] || fail "bad data: a checkpoint was written"

# Rank 1 is killed (SIGKILL) once the first epoch's checkpoint exists.
LONG=(--model "$MODEL" --limit 4096 --test-limit 64 --batch 16 --threads 1 --seed 3 --epochs 3
    --quiet --out "$TMP/kill.ckpt")
start=$(date +%s)
rc=0
timeout 120 "${MPIRUN[@]}" -np 2 sh -c 'watch=$1; shift; if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
        ( while [ ! -e "$watch" ]; do sleep 0.1; done; kill -9 $$ ) & fi; exec "$@"' \
    sh "$TMP/kill.ckpt" "$SLIM" train "${LONG[@]}" >"$TMP/kill.out" 2>"$TMP/kill.err" || rc=$?
took=$(($(date +%s) - start))
[[ $rc -ne 124 ]] || fail "killed rank: the job still ran after 120 s"
[[ $rc -ne 0 ]] || fail "killed rank: exit status 0: $(cat "$TMP/kill.err")"
grep -qiE 'rank 1\b' "$TMP/kill.err" || fail "killed rank: no message naming rank 1: $(cat "$TMP/kill.err")"
pos=$("$SLIM" info "$TMP/kill.ckpt" | sed -nE 's/^position: epoch ([0-9]+), step.*/\1/p')
[[ "$pos" == 1 ]] || fail "killed rank: the checkpoint is not epoch 1's: '$pos'"
echo "killed rank: the job ended ${took} s after its start"

# SIGINT to one rank: every rank stops after the same step (exit 130, the
# checkpoint saved once), and resuming finishes the uninterrupted run's bits.
SHORT=(--model "$MODEL" --limit 3072 --test-limit 64 --batch 16 --threads 1 --seed 5 --epochs 1)
rc=0
timeout 120 "${MPIRUN[@]}" -np 2 sh -c 'echo $$ >"$1.$OMPI_COMM_WORLD_RANK"; shift; exec "$@"' \
    sh "$TMP/pid" "$SLIM" train "${SHORT[@]}" --progress plain --out "$TMP/int.ckpt" \
    >"$TMP/int.out" 2>"$TMP/int.err" &
JOB=$!
for _ in $(seq 600); do
    grep -q 'batch [1-9]' "$TMP/int.err" 2>/dev/null && break
    sleep 0.05
done
kill -INT "$(cat "$TMP/pid.1")" 2>/dev/null || true
wait "$JOB" || rc=$?
if [[ $rc -eq 0 ]]; then
    echo "note: the run finished before SIGINT arrived; the agreed stop was not exercised"
else
    [[ $rc -eq 130 ]] || fail "SIGINT to rank 1: exit $rc, want 130: $(cat "$TMP/int.err")"
    ! grep -q 'MPI_ABORT' "$TMP/int.err" || fail "SIGINT to rank 1: the job was aborted"
    grep -qF "slim train --resume $TMP/int.ckpt" "$TMP/int.err" || fail "no resume hint: $(cat "$TMP/int.err")"
    n=$(grep -c 'interrupted at step' "$TMP/int.err" || true)
    [[ "$n" == 1 ]] || fail "SIGINT to rank 1: $n 'interrupted at step' warnings, want one (rank 0's)"
    timeout 120 "${MPIRUN[@]}" -np 2 "$SLIM" train --resume "$TMP/int.ckpt" --threads 1 --quiet \
        >/dev/null || fail "resume after SIGINT"
    run 2 "${SHORT[@]}" --quiet --out "$TMP/ref.ckpt" >/dev/null || fail "uninterrupted -np 2"
    [[ "$(digest "$TMP/int.ckpt")" == "$(digest "$TMP/ref.ckpt")" ]] ||
        fail "-np 2 resumed after SIGINT differs from the uninterrupted run"
fi

echo "mpi: all checks passed"
