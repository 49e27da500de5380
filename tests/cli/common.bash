# Sourced by the command-line tests (tests/cli/*.sh): the shared set-up.
# cli_test_setup NAME: checks $SLIM and $SLIM_SOURCE_DIR (from ctest), skips
# the test (exit 0 with a "skipped:" line) when Fashion-MNIST is not
# installed, makes $TMP (removed on exit, and the run in $PID, if any,
# stopped) and defines fail() and expect_error().
cli_test_setup() {
    SLIM=${SLIM:?SLIM must point to the slim program}
    SRC=${SLIM_SOURCE_DIR:?SLIM_SOURCE_DIR must point to the source tree}
    [[ -x "$SLIM" ]] || { echo "FAIL: $SLIM not built" >&2; exit 1; }
    if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
        echo "skipped: /usr/share/datasets/fashion-mnist is missing"
        exit 0
    fi
    TMP=$(mktemp -d "/tmp/slim_cli_$1.XXXXXX")
    PID=
    trap '[[ -n "$PID" ]] && kill "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
}

# interrupt_run READY DELAY BASE ARGS...: runs `$SLIM ARGS` in the
# background (stdout to BASE.out, stderr to BASE.err), waits until BASE.err
# holds READY (or the run ends), DELAY seconds more, then sends SIGINT; RC
# := the run's exit status (130 when the signal stopped it, 0 when it had
# finished before).
interrupt_run() {
    local ready=$1 delay=$2 base=$3
    shift 3
    "$SLIM" "$@" >"$base.out" 2>"$base.err" &
    PID=$!
    for _ in $(seq 600); do
        grep -q -- "$ready" "$base.err" 2>/dev/null && break
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.05
    done
    sleep "$delay"
    kill -INT "$PID" 2>/dev/null || true
    RC=0
    wait "$PID" || RC=$?
    PID=
}

fail() { echo "FAIL: $*" >&2; exit 1; }

# onnx_test_setup NAME MODULES: the set-up of the checks run by Debian's
# python (PY): skips the test (exit 0) when /usr/bin/python3 cannot import
# MODULES (comma-separated), checks $SLIM_BINARY_DIR and $SLIM_SOURCE_DIR and
# makes $tmp (removed on exit). No data set needed.
onnx_test_setup() {
    PY=/usr/bin/python3
    if ! "$PY" -c "import $2" 2>/dev/null; then
        echo "skipped: /usr/bin/python3 cannot import $2; run tools/install-deps"
        exit 0
    fi
    : "${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must be set (ctest sets it)}"
    : "${SLIM_SOURCE_DIR:?SLIM_SOURCE_DIR must be set (ctest sets it)}"
    tmp=$(mktemp -d "/tmp/slim_$1.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
}

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

# fmnist_pngs DIR FIRST COUNT [SCALE]: Fashion-MNIST test images FIRST ..
# FIRST+COUNT-1 as DIR/img<i>.png: 28x28 gray, or with SCALE > 1 RGB of
# 28*SCALE pixels a side (each pixel SCALE x SCALE, r = g = b).
fmnist_pngs() {
    python3 - "$@" <<'PYEOF'
import gzip, struct, sys, zlib
out, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
scale = int(sys.argv[4]) if len(sys.argv) > 4 else 1
with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
    data = f.read()
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
side, color, ch = 28 * scale, 0 if scale == 1 else 2, 1 if scale == 1 else 3
for i in range(first, first + count):
    px = data[16 + 784 * i:16 + 784 * (i + 1)]
    rows = [bytes(v for x in range(side) for v in [px[28 * (y // scale) + x // scale]] * ch)
            for y in range(side)]
    open("%s/img%d.png" % (out, i), "wb").write(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, color, 0, 0, 0)) +
        chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in rows))) + chunk(b"IEND", b""))
PYEOF
}
