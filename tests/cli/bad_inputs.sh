#!/usr/bin/env bash
# Bad inputs through the command line. Each case expects exit status != 0, a
# `slim: error:` line naming the problem, and no output file left behind:
# damaged checkpoints (truncated, one flipped byte, wrong magic, a NaN weight
# behind a valid checksum), broken model files (unknown layer, unknown key,
# shape mismatch, a reference to a later layer), a missing data directory,
# images of the wrong size (with --resize none, which refuses them instead of
# resizing) and corrupt images, and bad option values.
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup bad
MODEL="$SRC/models/lenet-bn.net"
OUT="$TMP/out"
mkdir "$OUT"
# expect_error (common.bash): any failing exit status, not a crash.

"$SLIM" train --model "$MODEL" --limit 256 --test-limit 64 --quiet --out "$TMP/good.ckpt" >/dev/null ||
    fail "training the good checkpoint failed"
GOOD="$TMP/good.ckpt"

# --- damaged checkpoints ------------------------------------------------------------
head -c 1000 "$GOOD" >"$TMP/trunc.ckpt"
cp "$GOOD" "$TMP/flip.ckpt"
printf '\x5a' | dd of="$TMP/flip.ckpt" bs=1 seek=5000 conv=notrunc status=none
cp "$GOOD" "$TMP/magic.ckpt"
printf 'X' | dd of="$TMP/magic.ckpt" bs=1 seek=0 conv=notrunc status=none
: >"$TMP/empty.ckpt"
# A NaN in the first tensor, with the CRC-32 recomputed so that only the
# value check can catch it (layout: docs/CHECKPOINT_FORMAT.md).
python3 - "$GOOD" "$TMP/nan.ckpt" <<'EOF'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
data_off = struct.unpack_from("<Q", b, 96)[0]
struct.pack_into("<f", b, data_off, float("nan"))
struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])) & 0xffffffff)
open(sys.argv[2], "wb").write(b)
EOF

for cmd in eval info; do
    expect_error "$cmd truncated" "trunc.ckpt: truncated" "$cmd" "$TMP/trunc.ckpt"
    expect_error "$cmd flipped byte" "flip.ckpt: checksum mismatch" "$cmd" "$TMP/flip.ckpt"
    expect_error "$cmd wrong magic" "magic.ckpt: not a slim checkpoint" "$cmd" "$TMP/magic.ckpt"
    expect_error "$cmd empty file" "empty.ckpt" "$cmd" "$TMP/empty.ckpt"
    expect_error "$cmd missing file" "$TMP/none.ckpt" "$cmd" "$TMP/none.ckpt"
done
expect_error "eval NaN weight" "nan.ckpt" eval "$TMP/nan.ckpt"
grep -qiE 'nan|finite' "$TMP/err.txt" || fail "NaN weight: message does not say so: $(cat "$TMP/err.txt")"
expect_error "eval --logits of a bad file" "checksum mismatch" eval "$TMP/flip.ckpt" --logits "$OUT/l.f32"
expect_error "prune truncated" "truncated" prune "$TMP/trunc.ckpt" --out "$OUT/p.ckpt"
expect_error "prune NaN" "nan.ckpt" prune "$TMP/nan.ckpt" --out "$OUT/p.ckpt"
expect_error "export flipped" "checksum mismatch" export "$TMP/flip.ckpt" --out "$OUT/m.slim"
expect_error "export onnx wrong magic" "not a slim checkpoint" export "$TMP/magic.ckpt" --out "$OUT/m.onnx"
expect_error "infer truncated" "truncated" infer "$TMP/trunc.ckpt" "$TMP/x.png"
expect_error "train --init truncated" "truncated" train --init "$TMP/trunc.ckpt" --out "$OUT/r.ckpt"
expect_error "train --resume flipped" "checksum mismatch" train --resume "$TMP/flip.ckpt" --out "$OUT/r.ckpt"
expect_error "train --resume NaN" "nan.ckpt" train --resume "$TMP/nan.ckpt" --out "$OUT/r.ckpt"

# --- broken model files ---------------------------------------------------------------
printf 'input shape=1x28x28\nfoo out=3\n' >"$TMP/kind.net"
printf 'input shape=1x28x28\nconv out=4 k=3 colour=red\nflatten\ndense out=10\n' >"$TMP/key.net"
printf 'input shape=1x28x28\nflatten\ndense out=10 in=999\n' >"$TMP/shape.net"
printf 'input shape=1x28x28\nconv c1 out=4 k=3 pad=1\nadd a1 from=c1,c2\nconv c2 out=4 k=3 pad=1 from=a1\nflatten\ndense out=10\n' >"$TMP/cycle.net"
# model_error FILE PATTERN NAMED: `slim info FILE` and `slim train --model
# FILE` both fail citing PATTERN (file:line), and the message names NAMED.
model_error() {
    expect_error "info $1" "$2" info "$TMP/$1"
    grep -qF -- "$3" "$TMP/err.txt" || fail "info $1: '$3' not named: $(cat "$TMP/err.txt")"
    expect_error "train $1" "$2" train --model "$TMP/$1" --out "$OUT/m.ckpt"
    grep -qF -- "$3" "$TMP/err.txt" || fail "train $1: '$3' not named: $(cat "$TMP/err.txt")"
}
model_error kind.net "kind.net:2: unknown layer kind" "'foo'"
model_error key.net "key.net:2:" "colour"
model_error shape.net "shape.net:3:" "999"
model_error cycle.net "cycle.net:3:" "'c2'"
expect_error "missing model file" "$TMP/none.net" info "$TMP/none.net"

# --- data ---------------------------------------------------------------------------
expect_error "train on a missing data dir" "$TMP/no-such-data" \
    train --model "$MODEL" --data "$TMP/no-such-data" --out "$OUT/d.ckpt"
expect_error "eval on a missing data dir" "$TMP/no-such-data" eval "$GOOD" --data "$TMP/no-such-data"
# An image folder whose images do not fit the model (32x32 RGB vs 1x28x28).
mkdir -p "$TMP/folder/cat" "$TMP/folder/dog"
python3 - "$TMP/folder" <<'EOF'
import struct, sys, zlib
def png(path, w, h, channels):
    ctype = {1: 0, 3: 2}[channels]
    rows = b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(w * channels)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, ctype, 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                           chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
png(sys.argv[1] + "/cat/a.png", 32, 32, 3)
png(sys.argv[1] + "/dog/b.png", 32, 32, 3)
EOF
expect_error "train on images of the wrong size" "a.png" \
    train --model "$MODEL" --data "$TMP/folder" --resize none --out "$OUT/f.ckpt"
grep -qF "32" "$TMP/err.txt" || fail "wrong-size image: sizes not named: $(cat "$TMP/err.txt")"

# --- images for infer --------------------------------------------------------------------
# A valid 1x1 gray PNG (67 bytes) where the model wants 28x28, random bytes
# named .png, a missing file; then a good 28x28 image must still work.
printf '\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x00\x00\x00\x00\x3a\x7e\x9b\x55\x00\x00\x00\nIDATx\x9cc\x60\x00\x00\x00\x02\x00\x01\x48\xaf\xa4\x71\x00\x00\x00\x00IEND\xaeB\x60\x82' >"$TMP/tiny.png"
[[ $(stat -c %s "$TMP/tiny.png") -eq 67 ]] || fail "tiny.png is not 67 bytes"
head -c 300 /dev/urandom >"$TMP/corrupt.png"
expect_error "infer on a 1x1 image" "tiny.png" infer "$GOOD" "$TMP/tiny.png" --resize none
grep -qF "28" "$TMP/err.txt" || fail "wrong-size image: sizes not named: $(cat "$TMP/err.txt")"
expect_error "infer on a corrupt PNG" "corrupt.png" infer "$GOOD" "$TMP/corrupt.png"
expect_error "infer on a missing image" "$TMP/none.png" infer "$GOOD" "$TMP/none.png"
cp "$TMP/folder/cat/a.png" "$TMP/rgb32.png"
expect_error "infer on a 32x32 RGB image" "rgb32.png" infer "$GOOD" "$TMP/rgb32.png" --resize none
expect_error "infer --top 0" "--top" infer "$GOOD" "$TMP/tiny.png" --top 0

# --- prune and export misuse ---------------------------------------------------------------
expect_error "prune without --out" "--out" prune "$GOOD"
expect_error "prune --percent 101" "--percent" prune "$GOOD" --percent 101 --out "$OUT/p.ckpt"
expect_error "prune --threshold -1" "--threshold" prune "$GOOD" --threshold -1 --out "$OUT/p.ckpt"
expect_error "prune check on missing data" "$TMP/no-such-data" prune "$GOOD" --data "$TMP/no-such-data" \
    --out "$OUT/p.ckpt"
expect_error "export without --out" "--out" export "$GOOD"
expect_error "export into a missing dir" "$TMP/nodir" export "$GOOD" --out "$TMP/nodir/m.slim"
expect_error "export onnx into a missing dir" "$TMP/nodir" export "$GOOD" --out "$TMP/nodir/m.onnx"
expect_error "export of a .net file" "lenet-bn.net" export "$MODEL" --out "$OUT/m.slim"

# --- bad option values (usage errors, exit 2) --------------------------------------------
expect_error "--batch 0" "--batch" train --model "$MODEL" --batch 0 --out "$OUT/b.ckpt"
expect_error "--epochs 0" "--epochs" train --model "$MODEL" --epochs 0 --out "$OUT/b.ckpt"
expect_error "negative lambda" "--lambda must be >= 0" train --model "$MODEL" --penalty gamma-l1 \
    --lambda -0.1 --out "$OUT/b.ckpt"
expect_error "lambda without a penalty" "does nothing without a penalty" \
    train --model "$MODEL" --lambda 0.01 --out "$OUT/b.ckpt"
expect_error "negative lr" "--lr must be > 0" train --model "$MODEL" --lr -1 --out "$OUT/b.ckpt"
expect_error "momentum 1" "--momentum" train --model "$MODEL" --momentum 1 --out "$OUT/b.ckpt"
expect_error "--resume with --init" "cannot be combined" train --resume "$GOOD" --init "$GOOD"
expect_error "--model with --init" "cannot be combined" train --model "$MODEL" --init "$GOOD" \
    --out "$OUT/b.ckpt"
expect_error "eval --batch 0" "--batch" eval "$GOOD" --batch 0
expect_error "eval --limit -1" "--limit" eval "$GOOD" --limit -1
expect_error "eval --logits into a missing dir" "$TMP/nodir/l.f32" eval "$GOOD" --limit 8 \
    --logits "$TMP/nodir/l.f32"

echo "bad inputs: all checks passed"
