#!/usr/bin/env bash
# Nothing lost on a crash: a training run killed with SIGKILL again and again,
# at random times and while it is writing its checkpoint, keeps a checkpoint
# that loads, and --resume finishes the run with exactly the weights of a run
# that was never interrupted.
#   1. five kills at random times 0.5..4 s after each start, restarting with
#      --resume whenever R.ckpt exists (from scratch otherwise); after every
#      kill R.ckpt is absent or loads (`slim info`);
#   2. three kills the moment a temporary file R.ckpt.tmp.* appears, i.e.
#      during a checkpoint write (a watcher polls the directory); after each
#      one R.ckpt loads and its position did not go backwards;
#   3. --resume runs to the end: `slim info --json` shows all epochs, and the
#      weights digest equals an uninterrupted run's (one thread, same seed:
#      resume is exact, so a crash loses time, never correctness).
# A SIGKILL'ed process cannot remove its own temporary file; the stale ones
# are counted (they never replace R.ckpt).
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup crash
# The run under test may still be alive when the script exits: stop it too.
PID=
trap '[[ -n "$PID" ]] && kill -9 "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
MODEL="$SRC/models/lenet-bn.net"
EPOCHS=20
RUN=(--model "$MODEL" --limit 1024 --test-limit 256 --batch 128 --epochs "$EPOCHS" --seed 5
    --schedule step --threads 1 --quiet)
R="$TMP/R.ckpt"
RANDOM=$$ # a different schedule of kills on every run; printed for reproduction
echo "crash_safety: kill schedule seed $$"

json() { python3 -c "import json, sys; j = json.load(open(sys.argv[1])); print($2)" "$1"; }
position() { # epoch of R.ckpt, -1 when it does not exist
    if [[ -e $R ]]; then
        "$SLIM" info "$R" --json >"$TMP/info.json" 2>"$TMP/info.err" ||
            fail "R.ckpt does not load after a kill: $(cat "$TMP/info.err")"
        json "$TMP/info.json" 'j["position"]["epoch"]'
    else
        echo -1
    fi
}
start() { # starts training in the background (resuming when R.ckpt exists)
    if [[ -e $R ]]; then
        "$SLIM" train --resume "$R" --threads 1 --quiet >/dev/null 2>>"$TMP/train.err" &
    else
        "$SLIM" train "${RUN[@]}" --out "$R" >/dev/null 2>>"$TMP/train.err" &
    fi
    PID=$!
}
finish() { # waits for the killed process; exit 137 (SIGKILL) or 0 (it had finished)
    local rc=0
    { wait "$PID"; } 2>/dev/null || rc=$?
    PID=
    [[ $rc -eq 137 || $rc -eq 0 ]] || fail "training exited $rc: $(cat "$TMP/train.err")"
}

# --- 1. kills at random times ------------------------------------------------------
last=-1
for i in 1 2 3 4 5; do
    start
    ms=$((500 + RANDOM % 3501))
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill -9 "$PID" 2>/dev/null || true
    finish
    epoch=$(position)
    [[ $epoch -ge $last ]] || fail "kill $i: R.ckpt went back from epoch $last to $epoch"
    echo "random kill $i after ${ms} ms: R.ckpt at epoch $epoch"
    last=$epoch
done

# --- 2. kills during checkpoint writes -----------------------------------------------
cat >"$TMP/watch.py" <<'EOF'
# Kills pid with SIGKILL as soon as a file named prefix* appears in dir;
# prints "write" then, "exited" if the process ended first.
import os, signal, sys, time
d, prefix, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 60
def alive():
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
while time.monotonic() < deadline:
    if any(n.startswith(prefix) for n in os.listdir(d)):
        os.kill(pid, signal.SIGKILL)
        print("write")
        sys.exit(0)
    if not alive():
        print("exited")
        sys.exit(0)
os.kill(pid, signal.SIGKILL)
print("timeout")
EOF
during_write=0
for i in 1 2 3; do
    # Temporary files left by earlier kills would trigger the watcher at once.
    mkdir -p "$TMP/stale"
    find "$TMP" -maxdepth 1 -name 'R.ckpt.tmp.*' -exec mv {} "$TMP/stale/" \;
    start
    what=$(python3 "$TMP/watch.py" "$TMP" "R.ckpt.tmp." "$PID")
    finish
    [[ $what != timeout ]] || fail "write kill $i: no checkpoint write within 60 s"
    [[ $what == write ]] && during_write=$((during_write + 1))
    epoch=$(position)
    [[ $epoch -ge $last ]] || fail "write kill $i: R.ckpt went back from epoch $last to $epoch"
    echo "kill $i during a checkpoint write ($what): R.ckpt at epoch $epoch"
    last=$epoch
    [[ $epoch -lt $EPOCHS ]] || break
done
[[ $during_write -ge 1 || $last -ge $EPOCHS ]] || fail "no kill landed during a write"
stale=$(find "$TMP" -name 'R.ckpt.tmp.*' | wc -l)

# --- 3. finish and compare -----------------------------------------------------------
if [[ -e $R ]]; then
    "$SLIM" train --resume "$R" --threads 1 --quiet >"$TMP/resume.out" 2>"$TMP/train.err" ||
        fail "the final --resume failed: $(cat "$TMP/train.err")"
else
    "$SLIM" train "${RUN[@]}" --out "$R" >"$TMP/resume.out" 2>"$TMP/train.err" ||
        fail "the final run failed: $(cat "$TMP/train.err")"
fi
[[ $(position) -eq $EPOCHS ]] || fail "the resumed run did not reach epoch $EPOCHS"
json "$TMP/info.json" 'j["position"]["step"]' >"$TMP/step"
[[ $(cat "$TMP/step") -eq $((EPOCHS * 8)) ]] || fail "final step $(cat "$TMP/step"), want $((EPOCHS * 8))"
killed=$(json "$TMP/info.json" 'j["digest"]')

"$SLIM" train "${RUN[@]}" --out "$TMP/ref.ckpt" >/dev/null || fail "the uninterrupted run failed"
"$SLIM" info "$TMP/ref.ckpt" --json >"$TMP/ref.json" || fail "info ref"
ref=$(json "$TMP/ref.json" 'j["digest"]')
[[ -n $ref && $ref == "$killed" ]] ||
    fail "weights after kills and resumes ($killed) differ from an uninterrupted run ($ref)"

# The metrics row of an epoch is appended to R.csv before that epoch's
# checkpoint is written; a kill in between leaves a row that --resume must
# drop (docs/RELIABILITY.md, bug 5): one row per epoch.
dups=$(tail -n +2 "$TMP/R.csv" | cut -d, -f1 | sort | uniq -d | tr '\n' ' ')
rows=$(($(wc -l <"$TMP/R.csv") - 1))
[[ -z $dups ]] || fail "R.csv repeats the rows of epoch(s) $dups"
[[ $rows -eq $EPOCHS ]] || fail "R.csv has $rows rows for $EPOCHS epochs"

echo "crash_safety: all checks passed ($during_write kill(s) during a write; $stale stale" \
    "temporary file(s) left by SIGKILL, never read)"
