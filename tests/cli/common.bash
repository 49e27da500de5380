# Sourced by the command-line tests (tests/cli/*.sh): the shared set-up.
# cli_test_setup NAME: checks $SLIM and $SLIM_SOURCE_DIR (from ctest), skips
# the test (exit 0 with a "skipped:" line) when Fashion-MNIST is not
# installed, makes $TMP (removed on exit) and defines fail() and
# expect_error().
cli_test_setup() {
    SLIM=${SLIM:?SLIM must point to the slim program}
    SRC=${SLIM_SOURCE_DIR:?SLIM_SOURCE_DIR must point to the source tree}
    [[ -x "$SLIM" ]] || { echo "FAIL: $SLIM not built" >&2; exit 1; }
    if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
        echo "skipped: /usr/share/datasets/fashion-mnist is missing"
        exit 0
    fi
    TMP=$(mktemp -d "/tmp/slim_cli_$1.XXXXXX")
    trap 'rm -rf "$TMP"' EXIT
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_error WHAT PATTERN ARGS...: `$SLIM ARGS` ends within 60 s with exit
# status $EXPECT_STATUS when that is set (else any status from 1 to 127, not
# a crash), prints a 'slim: error:' line holding PATTERN, and leaves nothing
# in $OUT (where every case points its output: no output, no *.tmp.* file).
expect_error() {
    local what=$1 pattern=$2
    shift 2
    local rc=0
    timeout 60 "$SLIM" "$@" >"$TMP/stdout.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -ne 124 ]] || fail "$what: still running after 60 s"
    if [[ -n "${EXPECT_STATUS:-}" ]]; then
        [[ $rc -eq $EXPECT_STATUS ]] || fail "$what: exit $rc, want $EXPECT_STATUS: $(cat "$TMP/err.txt")"
    else
        [[ $rc -ne 0 ]] || fail "$what: exit status 0"
        [[ $rc -lt 128 ]] || fail "$what: crashed (exit $rc): $(cat "$TMP/err.txt")"
    fi
    grep -q '^slim: error: ' "$TMP/err.txt" || fail "$what: no 'slim: error:' line: $(cat "$TMP/err.txt")"
    grep -qF -- "$pattern" "$TMP/err.txt" || fail "$what: message lacks '$pattern': $(cat "$TMP/err.txt")"
    [[ -z "$(ls -A "$OUT")" ]] || fail "$what: left files behind: $(ls -A "$OUT")"
}
