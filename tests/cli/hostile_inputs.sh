#!/usr/bin/env bash
# Hostile inputs through the command line, beyond tests/cli/bad_inputs.sh:
#   1. checkpoints with huge declared sizes behind a valid CRC-32 (a shape
#      whose byte count overflows 64 bits, a 16 GiB tensor, 65536 metadata
#      entries or tensors in a few bytes, a section or file size of 2^63 /
#      2^40 bytes, a model text asking for 50M parameters with no tensors):
#      refused by the size checks, quickly and without allocating for them;
#   2. non-finite values behind a valid CRC: NaN in bn2.gamma, +Inf in
#      dense1.bias, NaN in a running variance, NaN in a momentum tensor
#      (--resume), a negative running variance: refused naming the tensor;
#   3. data: an image folder with no class folders, one whose class folders
#      hold no images, an IDX label 12, a CIFAR-10 label 10;
#   4. no file left half-written: writes that fail part-way (the file size
#      limit, `ulimit -f`, makes write() fail with EFBIG) for export (slim and
#      ONNX), prune, train and eval --logits, leave neither the output nor a
#      temporary *.tmp.* file, and an existing output file stays as it was;
#   5. bounded work for hostile files: a checkpoint of a few hundred bytes
#      may not make slim use more memory than a small multiple of its size
#      allows, and a class name that cannot be saved (not UTF-8) is refused
#      before training, not after an epoch's work.
# Every failing command must exit 1 with a `slim: error:` line naming the
# problem, and write nothing into $OUT. The checks of part 5 are collected
# and reported together at the end (they found bugs; docs/RELIABILITY.md).
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup hostile
MODEL="$SRC/models/lenet-bn.net"
OUT="$TMP/out"
mkdir "$OUT"
# expect_error (common.bash), here with exit status exactly 1.
EXPECT_STATUS=1

"$SLIM" train --model "$MODEL" --limit 256 --test-limit 64 --quiet --out "$TMP/good.ckpt" >/dev/null ||
    fail "training the good checkpoint failed"
GOOD="$TMP/good.ckpt"

# A checkpoint editor (layout: docs/CHECKPOINT_FORMAT.md): every change is
# followed by a fresh CRC-32, so only the reader's other checks can object.
cat >"$TMP/ck.py" <<'EOF'
import struct, sys, zlib

def load(path):
    return bytearray(open(path, "rb").read())

def save(b, path):
    struct.pack_into("<I", b, len(b) - 4, zlib.crc32(bytes(b[:-4])) & 0xffffffff)
    open(path, "wb").write(b)

def section(b, i):
    return struct.unpack_from("<QQ", b, 32 + 16 * i)

def entry(b, name):  # offset of the table entry of tensor `name`
    off, _ = section(b, 3)
    count = struct.unpack_from("<I", b, off)[0]
    for i in range(count):
        e = off + 8 + 108 * i
        if b[e:e + 64].rstrip(b"\0") == name.encode():
            return e
    sys.exit("no tensor " + name)

def encode(kind, text, tensors):  # a minimal container: no metadata, zero position
    out = bytearray(128)
    dirs = []
    for blob in (text, struct.pack("<I", 0), struct.pack("<IIQ", 0, 0, 0)):
        out += bytes(-len(out) % 8)
        dirs.append((len(out), len(blob)))
        out += blob
    out += bytes(-len(out) % 8)
    dirs.append((len(out), 8 + 108 * len(tensors)))
    table = bytearray(struct.pack("<II", len(tensors), 0))
    start = len(out) + len(table) + 108 * len(tensors)
    start += -start % 64
    data = bytearray()
    for name, shape, values in tensors:
        data += bytes(-len(data) % 64)
        blob = struct.pack("<%df" % len(values), *values)
        dims = list(shape) + [0] * (4 - len(shape))
        table += name.encode().ljust(64, b"\0") + struct.pack(
            "<IIIIIIIQQ", len(shape), *dims, 0, 0, start + len(data), len(blob))
        data += blob
    out += table + bytes(start - len(out) - len(table)) + data
    dirs.append((start, len(data)))
    struct.pack_into("<8sIIIIQ", out, 0, b"SLIMCKPT", 1, kind, 0, 0, len(out) + 4)
    for i, (o, n) in enumerate(dirs):
        struct.pack_into("<QQ", out, 32 + 16 * i, o, n)
    return out + bytes(4)

cmd, src, dst = sys.argv[1], sys.argv[2], sys.argv[3]
b = load(src)
if cmd == "shape-overflow":  # 4 x (2^31 - 1): 4 * numel overflows 64 bits
    struct.pack_into("<IIIII", b, entry(b, "conv1.weight") + 64, 4, *[0x7fffffff] * 4)
elif cmd == "tensor-16g":  # 65536 x 65536 floats, byte count consistent
    e = entry(b, "conv1.weight")
    struct.pack_into("<IIIII", b, e + 64, 2, 65536, 65536, 0, 0)
    struct.pack_into("<Q", b, e + 100, 4 * 65536 * 65536)
elif cmd == "meta-count":
    struct.pack_into("<I", b, section(b, 1)[0], 65536)
elif cmd == "table-count":
    struct.pack_into("<I", b, section(b, 3)[0], 65536)
elif cmd == "section-2^63":
    struct.pack_into("<Q", b, 32 + 8, 1 << 63)
elif cmd == "file-size-2^40":
    struct.pack_into("<Q", b, 24, 1 << 40)
elif cmd == "big-model":  # ~50M parameters declared, no tensors stored
    b = encode(1, b"input shape=1x28x28\nflatten\ndense out=65536\ndense out=10\n", [])
elif cmd in ("nan", "inf", "neg"):  # value into tensor argv[4] at index argv[5]
    name, index = sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 0
    e = entry(b, name)
    off = struct.unpack_from("<Q", b, e + 92)[0] + 4 * index
    struct.pack_into("<f", b, off, {"nan": float("nan"), "inf": float("inf"), "neg": -1.0}[cmd])
else:
    sys.exit("unknown edit " + cmd)
save(b, dst)
EOF
edit() { python3 "$TMP/ck.py" "$@" || fail "ck.py $*"; }

# --- 1. huge declared sizes -------------------------------------------------------------
declare -A huge=(
    [shape-overflow]="shape overflows a 64-bit byte count"
    [tensor-16g]="lie outside the data section"
    [meta-count]="metadata declares 65536 entries but its section has only"
    [table-count]="65536 tensors need"
    [section-2^63]="bytes at offset"
    [file-size-2^40]="truncated: header declares 1099511627776 bytes"
    [big-model]="the model needs more parameters by here than the 1 values that come with it"
)
for name in "${!huge[@]}"; do
    edit "$name" "$GOOD" "$TMP/$name.ckpt"
    for cmd in info eval; do
        expect_error "$cmd $name" "${huge[$name]}" "$cmd" "$TMP/$name.ckpt"
        grep -qF "$name.ckpt" "$TMP/err.txt" || fail "$cmd $name: file not named: $(cat "$TMP/err.txt")"
    done
    expect_error "export $name" "${huge[$name]}" export "$TMP/$name.ckpt" --out "$OUT/m.slim"
done
# --- 2. non-finite values, named ------------------------------------------------------------
edit nan "$GOOD" "$TMP/nan-gamma.ckpt" bn2.gamma 3
edit inf "$GOOD" "$TMP/inf-bias.ckpt" dense1.bias 63
edit nan "$GOOD" "$TMP/nan-var.ckpt" bn1.running_var
edit nan "$GOOD" "$TMP/nan-momentum.ckpt" momentum.conv2.weight 100
edit neg "$GOOD" "$TMP/neg-var.ckpt" bn2.running_var 15
expect_error "eval NaN gamma" "'bn2.gamma' holds NaN or Inf" eval "$TMP/nan-gamma.ckpt"
expect_error "eval Inf bias" "'dense1.bias' holds NaN or Inf" eval "$TMP/inf-bias.ckpt"
expect_error "eval NaN running var" "'bn1.running_var' holds NaN or Inf" eval "$TMP/nan-var.ckpt"
expect_error "eval negative running var" "'bn2' has a negative running variance" eval "$TMP/neg-var.ckpt"
expect_error "export NaN gamma" "bn2.gamma" export "$TMP/nan-gamma.ckpt" --out "$OUT/m.slim"
expect_error "export onnx Inf bias" "dense1.bias" export "$TMP/inf-bias.ckpt" --out "$OUT/m.onnx"
expect_error "prune NaN gamma" "bn2.gamma" prune "$TMP/nan-gamma.ckpt" --out "$OUT/p.ckpt"
expect_error "infer NaN gamma" "bn2.gamma" infer "$TMP/nan-gamma.ckpt" "$SRC/tests/fuzz/corpus/image/c1-4x3.png"
expect_error "train --init NaN gamma" "bn2.gamma" train --init "$TMP/nan-gamma.ckpt" --out "$OUT/r.ckpt"
# Momentum is needed (and checked) only to resume; --out keeps the run in $OUT.
expect_error "train --resume NaN momentum" "'momentum.conv2.weight' holds NaN or Inf" \
    train --resume "$TMP/nan-momentum.ckpt" --epochs 2 --out "$OUT/r.ckpt"

# --- 3. data ------------------------------------------------------------------------------
TRAIN=(train --model "$MODEL" --limit 64 --test-limit 16 --quiet)
mkdir -p "$TMP/noclass" "$TMP/noimage/cat" "$TMP/noimage/dog"
echo "not an image" >"$TMP/noimage/cat/readme.txt"
expect_error "empty image folder" "no class subdirectories" "${TRAIN[@]}" --data "$TMP/noclass" --out "$OUT/e.ckpt"
expect_error "class folders without images" "no images found" "${TRAIN[@]}" --data "$TMP/noimage" \
    --out "$OUT/e.ckpt"
expect_error "eval on class folders without images" "no images found" eval "$GOOD" --data "$TMP/noimage"

mkdir -p "$TMP/idx" "$TMP/cifar"
python3 - "$TMP/idx" "$TMP/cifar" <<'EOF'
import struct, sys
idx, cifar = sys.argv[1], sys.argv[2]
for split, labels in (("train", [1, 12, 3, 4]), ("t10k", [0, 1, 2, 3])):
    open("%s/%s-images-idx3-ubyte" % (idx, split), "wb").write(
        struct.pack(">IIII", 0x803, 4, 28, 28) + bytes(4 * 784))
    open("%s/%s-labels-idx1-ubyte" % (idx, split), "wb").write(
        struct.pack(">II", 0x801, 4) + bytes(labels))
for k in range(1, 6):
    recs = b"".join(bytes([10 if (k, r) == (3, 1) else r]) + bytes(3072) for r in range(2))
    open("%s/data_batch_%d.bin" % (cifar, k), "wb").write(recs)
open(cifar + "/test_batch.bin", "wb").write(bytes(3073))
EOF
expect_error "IDX label 12" "label 12 of image 1 is not in 0..9" "${TRAIN[@]}" --data "$TMP/idx" \
    --out "$OUT/l.ckpt"
printf 'input shape=3x32x32\ngap\ndense out=10\n' >"$TMP/rgb.net"
expect_error "CIFAR-10 label 10" "data_batch_3.bin: record 1 has label 10" \
    train --model "$TMP/rgb.net" --data "$TMP/cifar" --quiet --out "$OUT/c.ckpt"

# --- 4. no file left half-written ------------------------------------------------------------
# with_fsize KB ARGS...: runs slim with a file size limit of KB kilobytes;
# SIGXFSZ is ignored so that write() fails with EFBIG instead of killing.
with_fsize() {
    local kb=$1
    shift
    (trap '' XFSZ; ulimit -f "$kb"; exec "$SLIM" "$@")
}
# expect_write_error WHAT KB ARGS...: as expect_error, under a size limit.
expect_write_error() {
    local what=$1 kb=$2
    shift 2
    local rc=0
    with_fsize "$kb" "$@" >"$TMP/stdout.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -eq 1 ]] || fail "$what: exit $rc, want 1: $(cat "$TMP/err.txt")"
    grep -q '^slim: error: ' "$TMP/err.txt" || fail "$what: no 'slim: error:' line: $(cat "$TMP/err.txt")"
    grep -qiE 'too large|write' "$TMP/err.txt" || fail "$what: the write failure is not named: $(cat "$TMP/err.txt")"
    # A run's metrics CSV (RUN.csv, written as epochs end) is not its output.
    local left
    left=$(find "$OUT" -mindepth 1 ! -name '*.csv')
    [[ -z $left ]] || fail "$what: left files behind: $left"
    rm -f "$OUT"/*.csv
}
# The limit must not stop the reads: the good checkpoint is ~240 KB.
expect_write_error "export, write fails" 64 export "$GOOD" --out "$OUT/m.slim"
expect_write_error "export onnx, write fails" 64 export "$GOOD" --format onnx --out "$OUT/m.onnx"
expect_write_error "prune, write fails" 64 prune "$GOOD" --out "$OUT/p.ckpt"
expect_write_error "eval --logits, write fails" 64 eval "$GOOD" --limit 4096 --logits "$OUT/l.f32"
expect_write_error "train, checkpoint write fails" 64 "${TRAIN[@]}" --out "$OUT/t.ckpt"
# An existing file is replaced only by a complete new one.
mkdir "$TMP/keep"
for f in keep.ckpt keep.slim; do
    printf 'previous contents\n' >"$TMP/keep/$f"
done
rc=0
with_fsize 64 "${TRAIN[@]}" --out "$TMP/keep/keep.ckpt" >/dev/null 2>"$TMP/err.txt" || rc=$?
[[ $rc -eq 1 ]] || fail "train over an existing file under a size limit: exit $rc"
rc=0
with_fsize 64 export "$GOOD" --out "$TMP/keep/keep.slim" >/dev/null 2>"$TMP/err.txt" || rc=$?
[[ $rc -eq 1 ]] || fail "export over an existing file under a size limit: exit $rc"
for f in keep.ckpt keep.slim; do
    [[ $(cat "$TMP/keep/$f") == "previous contents" ]] || fail "$f was changed by a failed write"
done
left=$(find "$TMP" -name '*.tmp.*')
[[ -z $left ]] || fail "temporary files left: $left"

# --- 5. bounded work --------------------------------------------------------------------------
problems=()
# Memory follows the bytes present, not the sizes declared: reading each of
# these files of a few hundred bytes stays far below what they declare
# (16 GiB of tensor; 51M parameters, i.e. 600 MB with gradients and
# momentum), under 256 MB.
if [[ -x /usr/bin/time ]]; then
    for name in tensor-16g big-model; do
        /usr/bin/time -f '%M' -o "$TMP/rss" "$SLIM" info "$TMP/$name.ckpt" >/dev/null 2>&1 || true
        rss_kb=$(tail -1 "$TMP/rss")
        [[ $rss_kb =~ ^[0-9]+$ && $rss_kb -lt 262144 ]] ||
            problems+=("info $name ($(stat -c %s "$TMP/$name.ckpt") bytes): peak memory ${rss_kb} KB, want < 256 MB")
    done
fi

# Class names travel into the checkpoint's metadata, which must be UTF-8:
# a class folder named in Latin-1 ("caf\xe9") must be refused (or its name
# made valid) when the data loads, not when the first checkpoint is saved.
mkdir -p "$TMP/latin1"
python3 - "$TMP/latin1" <<'EOF'
import os, struct, sys, zlib
def png(path):
    rows = b"".join(b"\0" + bytes(28) for _ in range(28))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0))
                           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
for name in (b"caf\xe9", b"dog"):
    d = os.path.join(sys.argv[1].encode(), name)
    os.makedirs(d)
    png(os.path.join(d, b"a.png"))
EOF
rc=0
"$SLIM" train --model "$MODEL" --data "$TMP/latin1" --epochs 1 --progress plain \
    --out "$TMP/latin1.ckpt" >"$TMP/stdout.txt" 2>"$TMP/err.txt" || rc=$?
if [[ $rc -eq 0 ]]; then
    "$SLIM" info "$TMP/latin1.ckpt" >/dev/null 2>&1 || problems+=("latin1 class: the checkpoint does not load")
elif grep -q 'epoch 1/1' "$TMP/err.txt"; then
    problems+=("latin1 class: refused only after training: $(grep 'slim: error' "$TMP/err.txt")")
fi

if [[ ${#problems[@]} -gt 0 ]]; then
    printf 'FAIL: %s\n' "${problems[@]}" >&2
    exit 1
fi

echo "hostile inputs: all checks passed"
