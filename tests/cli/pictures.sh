#!/usr/bin/env bash
# Training on a folder of one's own pictures through the command line (issue
# 21): a Fashion-MNIST-derived folder from tools/make-imagefolder (PNG and
# JPEG, 30..400 pixels a side, gray and RGB, no train/test split) ->
# slim train --val-split --augment (a tiny 3x32x32 net) -> the checkpoint
# records the data settings -> slim eval uses exactly the held-out pictures
# -> slim prune -> slim export (slim, and ONNX with metadata_props) -> slim
# infer on pictures of other sizes, one of them unreadable. Then: streamed
# (--cache-mib 0) == cached (same weights digest), resume of a picture run
# == an uninterrupted one, corrupted data settings in a checkpoint, and bad
# folders (corrupt, empty and non-picture files, one class).
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup pictures
PY=/usr/bin/python3
if ! "$PY" -c 'import numpy, PIL' 2>/dev/null; then
    echo "skipped: python3-numpy or python3-pil not installed (tools/install-deps)"
    exit 0
fi
MAKE="$PY $SRC/tools/make-imagefolder"
json() { "$PY" -c "import json, sys; j = json.load(open(sys.argv[1])); print($2)" "$1"; }
OUT="$TMP/out"
mkdir -p "$OUT"

cat >"$TMP/tiny.net" <<'EOF'
input shape=3x32x32
conv out=8 k=3 pad=1
bn
relu
maxpool k=2
conv out=16 k=3 pad=1
bn
relu
gap
dense out=10
EOF
# 20 pictures per class; --val-split 0.2 holds out 4 of each: 40 of 200.
$MAKE "$TMP/pics" --layout flat --per-class 20 --seed 1 >/dev/null || fail "make-imagefolder"
[[ $(find "$TMP/pics" -name '*.png' | wc -l) -gt 50 && $(find "$TMP/pics" -name '*.jpg' | wc -l) -gt 50 ]] ||
    fail "want PNG and JPEG pictures"
train=("$SLIM" train --model "$TMP/tiny.net" --data "$TMP/pics" --val-split 0.2 --augment
    --epochs 1 --batch 32 --lr 0.05 --schedule constant --quiet --threads 1)

# --- train -> recorded settings -----------------------------------------------------------
"${train[@]}" --out "$TMP/a.ckpt" >"$TMP/train.out" 2>"$TMP/train.err" ||
    fail "train on pictures: $(cat "$TMP/train.err")"
"$SLIM" info "$TMP/a.ckpt" --json >"$TMP/a.json" || fail "info"
"$PY" - "$TMP/a.json" <<'EOF' || fail "recorded data settings: $(cat "$TMP/a.json")"
import json, sys
j = json.load(open(sys.argv[1])); m = j["meta"]
assert m["data.resize"] == "crop" and float(m["data.crop_scale"]) == 1, m
assert float(m["data.val_split"]) == 0.2 and m["data.split_seed"] == "0", m
mean = [float(v) for v in m["data.mean"].split(",")]
std = [float(v) for v in m["data.std"].split(",")]
# Fashion-MNIST's pictures: dark backgrounds, statistics of the data, not 0.5.
assert len(mean) == len(std) == 3 and all(0.05 < v < 0.45 for v in mean), mean
assert all(0.1 < v < 0.5 for v in std), std
assert m["augment.rule"].startswith("rrc scale=0.35-1 ratio=0.75-1.333"), m["augment.rule"]
assert m["class.0"] == "0-T-shirt_top" and m["class.9"] == "9-Ankle_boot", m
p = j["preprocessing"]
assert p["resize"] == "crop" and p["source"] == "stored in the model", p
assert abs(p["mean"][0] - mean[0]) < 1e-6, p
EOF
"$SLIM" info "$TMP/a.ckpt" >"$TMP/a.info" || fail "info table"
grep -q '^preprocessing: resize crop (crop scale 1), mean ' "$TMP/a.info" ||
    fail "info shows no preprocessing: $(cat "$TMP/a.info")"

# --- eval: exactly the held-out pictures ------------------------------------------------
"$SLIM" eval "$TMP/a.ckpt" >"$TMP/eval.out" 2>"$TMP/eval.err" || fail "eval: $(cat "$TMP/eval.err")"
grep -q "test split, 40 images (held out: 0.2 of each class, seed 0)" "$TMP/eval.out" ||
    fail "eval does not use the held-out split: $(cat "$TMP/eval.out")"
grep -q "no train/ and test/" "$TMP/eval.err" && fail "eval warned that it tests on training pictures"
[[ $(grep -cE '^ +[0-9] +[0-9]-[A-Za-z_-]+ +[0-9.]+% +[0-9]+/4$' "$TMP/eval.out") -eq 10 ]] ||
    fail "want 4 held-out pictures of each class: $(cat "$TMP/eval.out")"
"$SLIM" eval "$TMP/a.ckpt" --resize stretch >"$TMP/eval2.out" || fail "eval --resize stretch"
grep -q "test split, 40 images" "$TMP/eval2.out" || fail "eval --resize: $(cat "$TMP/eval2.out")"

# --- prune -> export ---------------------------------------------------------------------
"$SLIM" prune "$TMP/a.ckpt" --out "$TMP/p.ckpt" >"$TMP/prune.out" 2>&1 || fail "prune: $(cat "$TMP/prune.out")"
grep -q "^check on 40 test images of $TMP/pics" "$TMP/prune.out" ||
    fail "prune's check does not use the held-out pictures: $(cat "$TMP/prune.out")"
"$SLIM" report "$TMP/a.ckpt" "$TMP/p.ckpt" --repeats 1 >"$TMP/report.out" 2>&1 || fail "report: $(cat "$TMP/report.out")"
grep -q "^Test set: 40 images of $TMP/pics\." "$TMP/report.out" ||
    fail "report does not use the held-out pictures: $(cat "$TMP/report.out")"
# Fine-tuning the pruned model keeps the first run's split (whatever --seed) and normalisation.
"$SLIM" train --init "$TMP/p.ckpt" --seed 5 --epochs 1 --batch 32 --quiet --threads 1 --out "$TMP/t.ckpt" \
    >/dev/null 2>"$TMP/tune.err" || fail "fine-tune: $(cat "$TMP/tune.err")"
"$SLIM" info "$TMP/t.ckpt" --json >"$TMP/t.json" || fail "info tuned"
"$PY" - "$TMP/t.json" "$TMP/a.json" <<'EOF' || fail "--init lost the data settings"
import json, sys
t, a = (json.load(open(p))["meta"] for p in sys.argv[1:])
for k in ["data", "data.val_split", "data.split_seed", "data.mean", "data.std", "data.resize"]:
    assert t[k] == a[k], (k, t[k], a[k])
assert t["seed"] == "5"
EOF
"$SLIM" export "$TMP/p.ckpt" --out "$TMP/m.slim" >/dev/null || fail "export slim"
"$SLIM" export "$TMP/p.ckpt" --out "$TMP/m.onnx" >/dev/null || fail "export onnx"
"$SLIM" info "$TMP/m.slim" --json >"$TMP/m.json" || fail "info export"
"$SLIM" eval "$TMP/m.slim" >"$TMP/meval.out" 2>&1 || fail "eval export: $(cat "$TMP/meval.out")"
grep -q "test split, 40 images (held out" "$TMP/meval.out" ||
    fail "eval of the export does not use the held-out pictures: $(cat "$TMP/meval.out")"
"$PY" - "$TMP/m.json" "$TMP/a.json" <<'EOF' || fail "export lost the preprocessing: $(cat "$TMP/m.json")"
import json, sys
m, a = (json.load(open(p))["meta"] for p in sys.argv[1:])
for k in ["data.mean", "data.std", "data.resize", "data.crop_scale", "data.val_split",
          "data.split_seed", "class.3", "data"]:
    assert m[k] == a[k], (k, m[k], a[k])
EOF
if "$PY" -c 'import onnx' 2>/dev/null; then
    "$PY" - "$TMP/m.onnx" "$TMP/m.json" <<'EOF' || fail "ONNX metadata_props"
import json, sys, onnx
model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
props = {p.key: p.value for p in model.metadata_props}
meta = json.load(open(sys.argv[2]))["meta"]
for k in ["data.resize", "data.crop_scale", "data.mean", "data.std", "class.0", "class.9", "data"]:
    assert props.get(k) == meta[k], (k, props.get(k), meta[k])
EOF
else
    echo "note: python3-onnx missing, ONNX metadata_props not checked"
fi

# --- infer: pictures of other sizes, one unreadable --------------------------------------
"$PY" - "$TMP" <<'EOF'
import sys
from PIL import Image
src = Image.open(sorted(__import__("glob").glob(sys.argv[1] + "/pics/1-Trouser/*"))[0]).convert("L")
src.resize((57, 91)).save(sys.argv[1] + "/tall.png")
src.convert("RGB").resize((300, 200)).save(sys.argv[1] + "/wide.jpg", quality=90)
open(sys.argv[1] + "/broken.png", "wb").write(open(sys.argv[1] + "/tall.png", "rb").read()[:60])
EOF
"$SLIM" infer "$TMP/m.slim" "$TMP/tall.png" "$TMP/wide.jpg" >"$TMP/infer.out" 2>"$TMP/infer.err" ||
    fail "infer: $(cat "$TMP/infer.err")"
grep -q '^resize: crop (crop scale 1) (as the model records)$' "$TMP/infer.out" || fail "infer resize: $(cat "$TMP/infer.out")"
grep -q '(stored in the model)$' "$TMP/infer.out" || fail "infer normalisation: $(cat "$TMP/infer.out")"
[[ $(grep -c '^  1\. ' "$TMP/infer.out") -eq 2 ]] || fail "want 2 classified: $(cat "$TMP/infer.out")"
rc=0
"$SLIM" infer "$TMP/m.slim" "$TMP/tall.png" "$TMP/broken.png" "$TMP/wide.jpg" >"$TMP/infer2.out" \
    2>"$TMP/infer2.err" || rc=$?
[[ $rc -eq 1 ]] || fail "infer with an unreadable picture: exit $rc, want 1"
grep -q "^slim: error: .*$TMP/broken.png" "$TMP/infer2.err" || fail "no error naming broken.png: $(cat "$TMP/infer2.err")"
grep -q "^$TMP/tall.png\$" "$TMP/infer2.out" && grep -q "^$TMP/wide.jpg\$" "$TMP/infer2.out" ||
    fail "the readable pictures were not classified: $(cat "$TMP/infer2.out")"
grep -q "broken.png" "$TMP/infer2.out" && fail "the unreadable picture was classified"
"$SLIM" infer "$TMP/m.slim" "$TMP/wide.jpg" --resize pad >"$TMP/infer3.out" || fail "infer --resize pad"
grep -q '^resize: pad (--resize)$' "$TMP/infer3.out" || fail "infer --resize: $(cat "$TMP/infer3.out")"

# --- streamed == cached; resume == uninterrupted -----------------------------------------
digest() { "$SLIM" info "$1" --json | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["digest"])'; }
"${train[@]}" --cache-mib 0 --workers 2 --out "$TMP/s.ckpt" >/dev/null 2>&1 || fail "streamed training"
[[ $(digest "$TMP/s.ckpt") == $(digest "$TMP/a.ckpt") ]] || fail "--cache-mib 0 changed the weights"
"${train[@]}" --epochs 2 --cache-mib 1 --out "$TMP/two.ckpt" >/dev/null 2>&1 || fail "2 epochs"
"$SLIM" train --resume "$TMP/a.ckpt" --epochs 2 --out "$TMP/r.ckpt" --quiet --threads 1 >/dev/null 2>&1 ||
    fail "resume a picture run"
[[ $(digest "$TMP/r.ckpt") == $(digest "$TMP/two.ckpt") ]] ||
    fail "resume of a picture run differs from an uninterrupted one"

# --- corrupted data settings in a checkpoint ---------------------------------------------
# patch FILE OUT OLD NEW: bytes OLD (with \xNN escapes) replaced by NEW of the same length,
# the CRC redone: a metadata entry changed as a buggy or hostile writer might.
patch() {
    "$PY" - "$@" <<'EOF'
import codecs, struct, sys, zlib
b = bytearray(open(sys.argv[1], "rb").read())
old, new = (codecs.escape_decode(a)[0] for a in sys.argv[3:5])
assert len(old) == len(new) and b.count(old) == 1, (old, b.count(old))
i = b.index(old); b[i:i + len(old)] = new
b[-4:] = struct.pack("<I", zlib.crc32(bytes(b[:-4])) & 0xffffffff)
open(sys.argv[2], "wb").write(b)
EOF
}
patch "$TMP/a.ckpt" "$TMP/bad_resize.ckpt" 'data.resize\x04\x00\x00\x00crop' 'data.resize\x04\x00\x00\x00blob'
expect_error "garbage data.resize" "bad_resize.ckpt: setting 'data.resize' is 'blob'" eval "$TMP/bad_resize.ckpt"
patch "$TMP/a.ckpt" "$TMP/bad_split.ckpt" 'data.val_split\x03\x00\x00\x000.2' 'data.val_split\x03\x00\x00\x001.2'
expect_error "data.val_split out of range" "bad_split.ckpt: setting 'data.val_split' is '1.2'" eval "$TMP/bad_split.ckpt"
expect_error "resume with data.val_split out of range" "setting 'data.val_split' is '1.2'" \
    train --resume "$TMP/bad_split.ckpt" --epochs 2 --out "$OUT/x.ckpt"
expect_error "prune with garbage data.resize" "setting 'data.resize'" prune "$TMP/bad_resize.ckpt" --out "$OUT/x.ckpt"
# A checkpoint from before statistics were recorded: the old rule, 0.5 for a folder.
patch "$TMP/a.ckpt" "$TMP/old0.ckpt" 'data.mean' 'data.mXan'
patch "$TMP/old0.ckpt" "$TMP/old.ckpt" 'data.std' 'data.sXd'
"$SLIM" info "$TMP/old.ckpt" >"$TMP/old.info" || fail "info old"
grep -q '^preprocessing: resize crop (crop scale 1), mean 0.5,0.5,0.5, std 0.5,0.5,0.5 (image-folder rule' \
    "$TMP/old.info" || fail "a checkpoint without data.mean: $(grep preprocessing "$TMP/old.info")"

# --- --val DIR and --resize pad: recorded, and used by eval ------------------------------
$MAKE "$TMP/sv" --layout split --per-class 4 --test-per-class 2 --seed 3 --max-side 64 >/dev/null ||
    fail "split folder"
"$SLIM" train --model "$TMP/tiny.net" --data "$TMP/sv/train" --val "$TMP/sv/test" --resize pad \
    --epochs 1 --batch 8 --quiet --threads 1 --out "$TMP/v.ckpt" >/dev/null 2>"$TMP/v.err" ||
    fail "train --val: $(cat "$TMP/v.err")"
[[ $(json <("$SLIM" info "$TMP/v.ckpt" --json) 'j["meta"]["data.val"] + " " + j["meta"]["data.resize"] + " " + str("data.val_split" in j["meta"])') == "$TMP/sv/test pad False" ]] ||
    fail "--val / --resize not recorded"
"$SLIM" eval "$TMP/v.ckpt" >"$TMP/v.out" 2>&1 || fail "eval --val run: $(cat "$TMP/v.out")"
grep -q "test split, 20 images (from $TMP/sv/test)" "$TMP/v.out" || fail "eval ignores --val: $(cat "$TMP/v.out")"

# --- bad folders --------------------------------------------------------------------------
$MAKE "$TMP/small" --layout flat --per-class 4 --seed 2 --max-side 64 >/dev/null || fail "small folder"
mini=(train --model "$TMP/tiny.net" --epochs 1 --batch 8 --quiet --val-split 0.25 --threads 1)
cp -r "$TMP/small" "$TMP/corrupt"
f=$(find "$TMP/corrupt" -name '*.png' | sort | head -1)
head -c 100 "${f/corrupt/small}" >"$f"
expect_error "a truncated picture" "$f" "${mini[@]}" --data "$TMP/corrupt" --out "$OUT/x.ckpt"
"$SLIM" "${mini[@]}" --data "$TMP/corrupt" --skip-bad --out "$TMP/skip.ckpt" >/dev/null 2>"$TMP/skip.err" ||
    fail "--skip-bad: $(cat "$TMP/skip.err")"
grep -q "skipped 1 bad picture" "$TMP/skip.err" || fail "--skip-bad gives no count: $(cat "$TMP/skip.err")"
[[ $(json <("$SLIM" info "$TMP/skip.ckpt" --json) 'j["meta"]["data.skip_bad"]') == 1 ]] || fail "skip_bad not recorded"
cp -r "$TMP/small" "$TMP/empty"
: >"$TMP/empty/4-Coat/zero.png"
expect_error "a zero-byte picture" "$TMP/empty/4-Coat/zero.png" "${mini[@]}" --data "$TMP/empty" --out "$OUT/x.ckpt"
cp -r "$TMP/small" "$TMP/notes"
echo "not a picture" >"$TMP/notes/5-Sandal/README.txt"
"$SLIM" "${mini[@]}" --data "$TMP/notes" --out "$TMP/notes.ckpt" >/dev/null 2>"$TMP/notes.err" ||
    fail "a non-picture file stopped training: $(cat "$TMP/notes.err")"
grep -q "ignored 1 file" "$TMP/notes.err" || fail "the ignored file is not counted: $(cat "$TMP/notes.err")"
mkdir -p "$TMP/one"
cp -r "$TMP/small/3-Dress" "$TMP/one/"
expect_error "a single class" "$TMP/one" "${mini[@]}" --data "$TMP/one" --out "$OUT/x.ckpt"

# --- usage errors ---------------------------------------------------------------------------
EXPECT_STATUS=2 expect_error "--resize bogus" "--resize" train --model "$TMP/tiny.net" --resize bogus --out "$OUT/x.ckpt"
EXPECT_STATUS=2 expect_error "--val-split 1.5" "--val-split must be in [0, 1)" train --model "$TMP/tiny.net" --val-split 1.5 --out "$OUT/x.ckpt"
EXPECT_STATUS=2 expect_error "--crop-scale 0.5" "--crop-scale must be between 1 and 16" train --model "$TMP/tiny.net" --crop-scale 0.5 --out "$OUT/x.ckpt"
EXPECT_STATUS=2 expect_error "--workers 0" "--workers must be between 1" train --model "$TMP/tiny.net" --workers 0 --out "$OUT/x.ckpt"
EXPECT_STATUS=2 expect_error "--val with --val-split" "cannot be combined" train --model "$TMP/tiny.net" --val "$TMP/small" --val-split 0.2 --out "$OUT/x.ckpt"
echo "ok"
