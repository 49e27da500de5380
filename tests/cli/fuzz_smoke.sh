#!/usr/bin/env bash
# The fuzzing set-up, checked without clang and in a second or two:
#   1. every target tools/fuzz lists has its harness tests/fuzz/fuzz_<t>.c and
#      a seed corpus tests/fuzz/corpus/<t>/ of 1..16 files, 16 KB at most, and
#      every harness is listed (so a new one cannot be forgotten);
#   2. tools/fuzz refuses an unknown target, option or time (exit 2);
#   3. its run logic, through --bin with stand-in "fuzzers" (bash scripts
#      that answer like libFuzzer): a clean run exits 0 and reports the execs
#      and time; a run that leaves a crash file, or exits non-zero with a
#      sanitizer report, fails (exit 1) naming the kept input; the stand-in
#      receives -detect_leaks=1 and the time limit, and a scratch copy of the
#      corpus: the corpus in the repository is never written.
# The real fuzzing (clang, libFuzzer) runs in tools/test and tools/fuzz.
set -euo pipefail

SRC=${SLIM_SOURCE_DIR:?SLIM_SOURCE_DIR must point to the source tree}
FUZZ="$SRC/tools/fuzz"
TMP=$(mktemp -d /tmp/slim_cli_fuzz.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- 1. targets, harnesses, corpora ------------------------------------------------------
mapfile -t targets < <("$FUZZ" --list)
[[ ${#targets[@]} -ge 5 ]] || fail "tools/fuzz --list: ${targets[*]}"
for t in "${targets[@]}"; do
    [[ -f "$SRC/tests/fuzz/fuzz_$t.c" ]] || fail "target $t has no tests/fuzz/fuzz_$t.c"
    grep -q 'LLVMFuzzerTestOneInput' "$SRC/tests/fuzz/fuzz_$t.c" || fail "fuzz_$t.c has no entry point"
    n=$(find "$SRC/tests/fuzz/corpus/$t" -type f | wc -l)
    [[ $n -ge 1 && $n -le 16 ]] || fail "corpus of $t has $n files (want 1..16)"
    bytes=$(find "$SRC/tests/fuzz/corpus/$t" -type f -exec cat {} + | wc -c)
    [[ $bytes -le 16384 ]] || fail "corpus of $t is $bytes bytes (want <= 16 KB)"
done
for f in "$SRC"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c)
    t=${t#fuzz_}
    [[ " ${targets[*]} " == *" $t "* ]] || fail "$f is not a target of tools/fuzz"
done

# --- 2. usage errors ---------------------------------------------------------------------
usage() {
    local rc=0
    "$FUZZ" "$@" >"$TMP/out.txt" 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || fail "tools/fuzz $*: exit $rc, want 2: $(cat "$TMP/out.txt")"
    grep -q 'fuzz: error:' "$TMP/out.txt" || fail "tools/fuzz $*: no error line"
}
usage nosuchtarget
usage --time 0 model
usage --time abc model
usage --frobnicate

# --- 3. the run logic with stand-in fuzzers -------------------------------------------
# A stand-in records its arguments, adds a unit to its corpus (the last
# argument), and then behaves as $FAKE says: ok, crash (writes a crash file
# and reports an ASan error, exit 1) or leak (LeakSanitizer report, exit 1,
# no file: libFuzzer's -detect_leaks writes leak-* files, but a failing exit
# alone must already count).
mkdir "$TMP/bin"
for t in "${targets[@]}"; do
    cat >"$TMP/bin/fuzz_$t" <<'EOF'
#!/usr/bin/env bash
printf '%s\n' "$@" >"$FAKE_LOG.$(basename "$0")"
art= corpus=
for a in "$@"; do
    case $a in -artifact_prefix=*) art=${a#-artifact_prefix=} ;; -*) ;; *) corpus=$a ;; esac
done
echo new >"$corpus/new-unit"
echo "stat::number_of_executed_units: 4242"
echo "stat::average_exec_per_sec:     2121"
case $FAKE in
ok) echo "Done 4242 runs in 2 second(s)"; exit 0 ;;
crash) printf 'x' >"${art}crash-0123"
       echo "==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1"; exit 1 ;;
leak) echo "==1==ERROR: LeakSanitizer: detected memory leaks"; exit 1 ;;
esac
EOF
    chmod +x "$TMP/bin/fuzz_$t"
done
before=$(find "$SRC/tests/fuzz/corpus" -type f | sort | xargs cat | cksum)
export FAKE_LOG="$TMP/args"

rc=0
FAKE=ok "$FUZZ" --bin "$TMP/bin" --time 3 --jobs 2 --out "$TMP/ok" >"$TMP/ok.txt" 2>&1 || rc=$?
[[ $rc -eq 0 ]] || fail "clean run: exit $rc: $(cat "$TMP/ok.txt")"
for t in "${targets[@]}"; do
    grep -qE "^$t +4242 execs +2 s .*crashes 0" "$TMP/ok.txt" || fail "clean run: no line for $t: $(cat "$TMP/ok.txt")"
    grep -qx -- '-detect_leaks=1' "$FAKE_LOG.fuzz_$t" || fail "$t: not run with -detect_leaks=1"
    grep -qx -- '-max_total_time=3' "$FAKE_LOG.fuzz_$t" || fail "$t: not run with the time limit"
    [[ -f "$TMP/ok/$t/corpus/new-unit" ]] || fail "$t: the scratch corpus was not used"
done
grep -q 'no crash' "$TMP/ok.txt" || fail "clean run: no closing line"

rc=0
FAKE=crash "$FUZZ" --bin "$TMP/bin" --time 3 --out "$TMP/crash" model >"$TMP/crash.txt" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "crashing run: exit $rc, want 1: $(cat "$TMP/crash.txt")"
grep -qE '^model .*crashes 1' "$TMP/crash.txt" || fail "crashing run: crash not counted: $(cat "$TMP/crash.txt")"
grep -qF "kept: $TMP/crash/model/artifacts/crash-0123" "$TMP/crash.txt" || fail "crashing run: input not named"
grep -q 'heap-buffer-overflow' "$TMP/crash.txt" || fail "crashing run: report not shown"

rc=0
FAKE=leak "$FUZZ" --bin "$TMP/bin" --time 3 --out "$TMP/leak" ckpt >"$TMP/leak.txt" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "leaking run: exit $rc, want 1: $(cat "$TMP/leak.txt")"
grep -q 'LeakSanitizer' "$TMP/leak.txt" || fail "leaking run: report not shown"

after=$(find "$SRC/tests/fuzz/corpus" -type f | sort | xargs cat | cksum)
[[ $before == "$after" ]] || fail "the corpus in the repository was modified"
[[ -z $(find "$SRC/tests/fuzz/corpus" -name new-unit) ]] || fail "a unit was added to the repository"

echo "fuzz smoke: all checks passed (${#targets[@]} targets)"
