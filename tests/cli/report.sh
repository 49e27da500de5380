#!/usr/bin/env bash
# slim report: one row per model in the order given, figures that agree with
# slim eval and slim info, the first model as the 1.00x reference, and errors
# (a missing file, models of different input shapes, bad options) that name
# what is wrong and print no table.
set -euo pipefail
source "$(dirname "$0")/common.bash"
cli_test_setup report

# png_folder DIR SIZE CHANNELS: an image folder of two classes (cat, dog),
# four SIZE x SIZE PNGs each, gray (1) or RGB (3), each class its own pattern.
png_folder() {
    mkdir -p "$1/cat" "$1/dog"
    python3 - "$@" <<'PY'
import struct, sys, zlib
root, size, channels = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def png(path, seed):
    rows = b"".join(b"\x00" + bytes((x * seed + y) % 256 for x in range(size * channels))
                    for y in range(size))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    ihdr = struct.pack(">IIBBBBB", size, size, 8, {1: 0, 3: 2}[channels], 0, 0, 0)
    open(path, "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                           chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
for i in range(4):
    png(f"{root}/cat/{i}.png", 3 + i)
    png(f"{root}/dog/{i}.png", 40 + i)
PY
}

# A small trained model, a percentile-pruned copy (channels really removed)
# and that copy exported.
"$SLIM" train --model "$SRC/models/lenet-bn.net" --epochs 1 --limit 2048 --test-limit 300 \
    --penalty gamma-l1 --lambda 0.05 --out "$TMP/a.ckpt" --progress plain --quiet >/dev/null ||
    fail "train"
"$SLIM" prune "$TMP/a.ckpt" --percent 25 --out "$TMP/b.ckpt" >/dev/null || fail "prune"
"$SLIM" export "$TMP/b.ckpt" --out "$TMP/c.slim" >/dev/null || fail "export"

"$SLIM" report "$TMP/a.ckpt" "$TMP/b.ckpt" "$TMP/c.slim" --limit 300 --repeats 2 \
    >"$TMP/report.md" 2>"$TMP/err.txt" || fail "report: $(cat "$TMP/err.txt")"
grep -q '^Test set: 300 images of fashion-mnist' "$TMP/report.md" ||
    fail "no test-set line: $(cat "$TMP/report.md")"

for m in a.ckpt b.ckpt c.slim; do
    "$SLIM" eval "$TMP/$m" --limit 300 >"$TMP/eval_${m%.*}.txt" || fail "eval $m"
    "$SLIM" info "$TMP/$m" --json >"$TMP/info_${m%.*}.json" || fail "info $m"
done

python3 - "$TMP" <<'PY' || fail "the report disagrees: $(cat "$TMP/report.md")"
import json, re, sys
tmp = sys.argv[1]
rows = [l for l in open(f"{tmp}/report.md").read().splitlines()
        if l.startswith("| ") and not l.startswith("| model")]
names = ["a.ckpt", "b.ckpt", "c.slim"]
assert len(rows) == 3, rows
info = {n: json.load(open(f"{tmp}/info_{n.split('.')[0]}.json")) for n in names}
ref = info["a.ckpt"]
for row, n in zip(rows, names):
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0].endswith("/" + n), (cells[0], n)
    # accuracy: what slim eval prints for the same images (eval runs the
    # model's own forward pass, the report the fused runtime: a near tie may
    # go the other way in one of them, hence one image of slack)
    acc = re.search(r"accuracy: ([0-9.]+)%", open(f"{tmp}/eval_{n.split('.')[0]}.txt").read())
    assert abs(float(cells[1].rstrip("%")) - float(acc.group(1))) <= 100 / 300 + 0.005, \
        (n, cells[1], acc.group(1))
    # channels, parameters and MACs, each relative to the first model
    ch = re.match(r"(\d+) \(([0-9.]+)%\)", cells[2])
    assert int(ch.group(1)) == info[n]["channels"], (n, cells[2], info[n]["channels"])
    for cell, key in ((cells[3], "params"), (cells[4], "macs")):
        pct = float(re.search(r"\(([0-9.]+)%\)", cell).group(1))
        want = 100.0 * info[n][key] / ref[key]
        assert abs(pct - want) <= 0.051, (n, key, pct, want)
    ips = re.match(r"(\d+) \(([0-9.]+)x\)", cells[5])
    lat = re.match(r"([0-9.]+) ms \(([0-9.]+)x\)", cells[6])
    assert int(ips.group(1)) > 0 and float(lat.group(1)) > 0, (cells[5], cells[6])
    if n == "a.ckpt":
        assert ips.group(2) == "1.00" and lat.group(2) == "1.00", (cells[5], cells[6])
# the pruned and exported rows: fewer channels and MACs than the first
assert info["b.ckpt"]["channels"] < ref["channels"], (info["b.ckpt"]["channels"], ref["channels"])
assert info["c.slim"]["channels"] == info["b.ckpt"]["channels"]
assert info["b.ckpt"]["macs"] < ref["macs"] and info["c.slim"]["macs"] == info["b.ckpt"]["macs"]
PY

# Errors: nothing on stdout, a 'slim: error:' line that says what is wrong.
report_error() {
    local what=$1 pattern=$2 want=$3
    shift 3
    local rc=0
    timeout 120 "$SLIM" report "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -eq $want ]] || fail "$what: exit $rc, want $want: $(cat "$TMP/err.txt")"
    [[ ! -s "$TMP/out.txt" ]] || fail "$what: printed a table: $(cat "$TMP/out.txt")"
    grep -q "^slim: error: .*$pattern" "$TMP/err.txt" || fail "$what: $(cat "$TMP/err.txt")"
}
report_error "missing file" "nowhere.ckpt" 1 "$TMP/a.ckpt" "$TMP/nowhere.ckpt" --limit 300
# A model of another input shape (3x8x8), trained on an image folder.
png_folder "$TMP/rgb" 8 3
printf 'input shape=3x8x8\nconv out=4 k=3 pad=1\nbn\nrelu\ngap\ndense out=2\n' >"$TMP/rgb.net"
"$SLIM" train --model "$TMP/rgb.net" --data "$TMP/rgb" --epochs 1 --batch 4 --out "$TMP/rgb.ckpt" \
    --progress plain --quiet >/dev/null 2>"$TMP/err.txt" || fail "train rgb: $(cat "$TMP/err.txt")"
report_error "two input shapes" "input is 3x8x8" 1 "$TMP/a.ckpt" "$TMP/rgb.ckpt" --limit 300
# The other way round the larger images would be read past the smaller
# images' data (before the check: a table, and an out-of-bounds read).
report_error "two input shapes, larger second" "input is 1x28x28" 1 "$TMP/rgb.ckpt" \
    "$TMP/a.ckpt" --data "$TMP/rgb"
report_error "no repeats" "--repeats" 2 "$TMP/a.ckpt" --repeats 0
report_error "2^32 repeats" "--repeats" 2 "$TMP/a.ckpt" --repeats 4294967296
report_error "negative threads" "--threads" 2 "$TMP/a.ckpt" --threads -3

# A 1x28x28 model of 2 classes on Fashion-MNIST's 10 (before: a table with
# an accuracy that meant nothing; slim eval refuses it).
png_folder "$TMP/gray" 28 1
printf 'input shape=1x28x28\nconv out=2 k=3 pad=1\nbn\nrelu\ngap\ndense out=2\n' >"$TMP/two.net"
"$SLIM" train --model "$TMP/two.net" --data "$TMP/gray" --epochs 1 --batch 4 --out "$TMP/two.ckpt" \
    --progress plain --quiet >/dev/null 2>"$TMP/err.txt" || fail "train two: $(cat "$TMP/err.txt")"
report_error "too few classes" "10 classes but the model outputs 2" 1 "$TMP/a.ckpt" \
    "$TMP/two.ckpt" --limit 300

# A first model without convs has no channels to compare with: "(-)", not
# a division by zero.
printf 'input shape=1x28x28\nflatten\ndense out=10\n' >"$TMP/dense.net"
"$SLIM" train --model "$TMP/dense.net" --epochs 1 --limit 512 --test-limit 64 --out "$TMP/d.ckpt" \
    --progress plain --quiet >/dev/null 2>"$TMP/err.txt" || fail "train dense: $(cat "$TMP/err.txt")"
"$SLIM" report "$TMP/d.ckpt" "$TMP/a.ckpt" --limit 300 --repeats 1 >"$TMP/dense.md" \
    2>"$TMP/err.txt" || fail "report on a dense model: $(cat "$TMP/err.txt")"
grep -q '/d.ckpt | [0-9.]*% | 0 (-) |' "$TMP/dense.md" || fail "dense row: $(cat "$TMP/dense.md")"
! grep '^| ' "$TMP/dense.md" | grep -qiw 'nan\|inf' || fail "nan or inf in the table: $(cat "$TMP/dense.md")"
echo "report: rows, figures and errors OK"
