#!/usr/bin/env bash
# SLIM_ISA caps our kernels: the plan print-out names the build that runs
# and what chose it; a bad value is refused with a message naming it, by
# the library (slim_bench) and by the command line (slim: error:, exit 1).
set -euo pipefail
source "$(dirname "$0")/common.bash"
cli_test_setup isa
BENCH="${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must point to the build directory}/tools/slim_bench"
[[ -x "$BENCH" ]] || fail "$BENCH not built"
MODEL="$SRC/models/vgg-fm.net"

plan() { # SLIM_ISA value -> the plan print-out on stdout
    SLIM_ISA="$1" "$BENCH" infer "$MODEL" --images 16 --passes 1 --plan 2>&1 >/dev/null ||
        fail "SLIM_ISA=$1: $(SLIM_ISA="$1" "$BENCH" infer "$MODEL" --images 16 --passes 1 2>&1)"
}
out=$(plan generic)
grep -q "^our kernels: generic (CPU: .*; SLIM_ISA: generic)" <<<"$out" || fail "generic: $out"
grep -q "slim:" <<<"$out" && fail "generic runs our kernels: $out"
grep -q "own kernels off (SLIM_ISA=generic)" <<<"$out" || fail "generic's reason: $out"
if grep -q avx2 /proc/cpuinfo && grep -q fma /proc/cpuinfo; then
    for isa in avx2 AVX2; do
        out=$(plan $isa)
        grep -q "^our kernels: avx2 (CPU: .*; SLIM_ISA: avx2)" <<<"$out" || fail "$isa: $out"
        grep -q "\[slim:wino_4x3:avx2\]" <<<"$out" || fail "$isa: no Winograd of ours: $out"
        grep -q "\[slim:stem_3x3:avx2\]" <<<"$out" || fail "$isa: no stem of ours: $out"
        grep -q "\[slim:head:avx2\]" <<<"$out" || fail "$isa: no head of ours: $out"
    done
fi
out=$(plan "")
grep -q "SLIM_ISA: unset)" <<<"$out" || fail "unset: $out"

# A bad value: the library's error through slim_bench, then the CLI's.
rc=0
SLIM_ISA=avx1024 "$BENCH" infer "$MODEL" --images 16 --passes 1 >"$TMP/out.txt" 2>"$TMP/err.txt" ||
    rc=$?
[[ $rc -ne 0 ]] || fail "slim_bench took SLIM_ISA=avx1024"
grep -qF "SLIM_ISA=avx1024: " "$TMP/err.txt" || fail "slim_bench's message: $(cat "$TMP/err.txt")"
# A huge value: refused, its echo cut short.
long=$(printf 'avx%.0s' {1..300})
rc=0
SLIM_ISA=$long "$BENCH" infer "$MODEL" --images 16 --passes 1 >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
[[ $rc -ne 0 ]] || fail "slim_bench took a 900-character SLIM_ISA"
grep -qE "SLIM_ISA=(avx)+a?v?x?\.\.\.: " "$TMP/err.txt" || fail "long value's message: $(cat "$TMP/err.txt")"
python3 - "$TMP/pic.png" <<'PY'
import struct, sys, zlib
rows = b"".join(b"\x00" + bytes(range(28)) for _ in range(28))
chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
                               + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
PY
"$SLIM" train --model "$SRC/models/lenet-bn.net" --epochs 1 --limit 256 --test-limit 64 \
    --out "$TMP/a.ckpt" --progress plain --quiet >/dev/null || fail "train"
"$SLIM" infer "$TMP/a.ckpt" "$TMP/pic.png" >/dev/null || fail "infer without SLIM_ISA"
OUT="$TMP/out"
mkdir -p "$OUT"
export SLIM_ISA=avx1024
expect_error "slim infer, SLIM_ISA=avx1024" "slim: error: SLIM_ISA=avx1024: " infer "$TMP/a.ckpt" "$TMP/pic.png"
echo "ok"
