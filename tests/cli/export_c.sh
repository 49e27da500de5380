#!/usr/bin/env bash
# slim export --format c through the command line, on the shared fixture
# (tests/make_pruned.c: every model file but vgg11-cifar, pruned so that
# biasmaps appear, and unpruned): both exports compile with gcc and clang at
# -std=c99 -Wall -Wextra -Werror -pedantic, call no library function,
# carry the checkpoint's class names and normalisation, and match slim's
# logits within 1e-4 x max |logit| (tests/export_c_driver.c runs them).
# Then --name, the .c suffix choosing the format, and bad inputs.
# (Numerics per op and the writer's refusals: tests/test_export_c.c.)
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
SLIM=${SLIM:?SLIM must point to the slim program}
SRC=${SLIM_SOURCE_DIR:?SLIM_SOURCE_DIR must point to the source tree}
BIN=${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must point to the build tree}
MAKE_PRUNED="$BIN/tests/make_pruned"
[[ -x "$SLIM" && -x "$MAKE_PRUNED" ]] || fail "slim or tests/make_pruned not built"
TMP=$(mktemp -d /tmp/slim_cli_export_c.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
CFLAGS=(-std=c99 -Wall -Wextra -Werror -pedantic -O1 -c)

# compare GOT WANT WHAT: raw float32 logits within 1e-4 x max |logit|.
compare() {
    python3 - "$1" "$2" "$3" <<'EOF' || fail "$3: logits differ"
import struct, sys
got, want = (open(p, "rb").read() for p in sys.argv[1:3])
assert len(got) == len(want) > 0, (len(got), len(want))
g = struct.unpack("<%df" % (len(got) // 4), got)
w = struct.unpack("<%df" % (len(want) // 4), want)
delta, big = max(abs(a - b) for a, b in zip(g, w)), max(abs(b) for b in w)
print("%s: max |delta logit| %.3g, max |logit| %.3g" % (sys.argv[3], delta, big))
sys.exit(0 if big > 0.1 and delta <= 1e-4 * big else 1)
EOF
}

seed=400
for net in lenet-bn vgg-fm resnet-fm mobilenet-fm densenet-fm; do
    seed=$((seed + 1))
    dir="$TMP/$net"
    mkdir -p "$dir"
    "$MAKE_PRUNED" "$SRC/models/$net.net" $seed "$dir/pruned.ckpt" "$dir/unpruned.ckpt" \
        "$dir/dump" >"$dir/fixture.out" || fail "$net: make_pruned failed"
    maps=$(sed -n 's/^biasmaps: //p' "$dir/fixture.out")
    # lenet-bn's only conv after a bn has no padding: its constants fold into a bias.
    if [[ $net == lenet-bn ]]; then [[ $maps -eq 0 ]]; else [[ $maps -gt 0 ]]; fi ||
        fail "$net: $maps convs with a biasmap"
    for which in pruned unpruned; do
        out="$dir/$which"
        mkdir -p "$out"
        "$SLIM" export "$dir/$which.ckpt" --format c --out "$out/model.c" >"$out/export.out" ||
            fail "$net $which: export failed"
        grep -q "(c)$" "$out/export.out" || fail "$net $which: $(cat "$out/export.out")"
        # The fixture's metadata: class names and per-channel normalisation.
        grep -qF '"class 9"' "$out/model.c" || fail "$net $which: no class names"
        grep -qF 'const float model_mean[MODEL_INPUT_C] = {0.25f};' "$out/model.c" ||
            fail "$net $which: no mean"
        grep -qF 'const float model_std[MODEL_INPUT_C] = {0.5f};' "$out/model.c" ||
            fail "$net $which: no std"
        grep -q '^#include' <(grep -v '^#include "model.h"$' "$out/model.c") &&
            fail "$net $which: the source includes more than its header"
        for cc in gcc clang; do
            # The model alone: C99, calling nothing (but the memcpy/memset a
            # compiler may make of a copy loop, which even freestanding C has).
            "$cc" "${CFLAGS[@]}" -o "$out/model-$cc.o" "$out/model.c" ||
                fail "$net $which: $cc rejects the source"
            nm -u "$out/model-$cc.o" | grep -vE ' (memcpy|memset|memmove)$' >"$out/undefined.txt" || true
            [[ ! -s "$out/undefined.txt" ]] ||
                fail "$net $which ($cc): calls $(tr '\n' ' ' <"$out/undefined.txt")"
            "$cc" -std=c99 -Wall -Wextra -Werror -pedantic -O1 -I"$out" -o "$out/run-$cc" \
                "$SRC/tests/export_c_driver.c" "$out/model-$cc.o" || fail "$net: $cc: driver"
            "$out/run-$cc" "$dir/dump.input.bin" "$out/logits-$cc.bin" ||
                fail "$net $which: the $cc build failed"
            compare "$out/logits-$cc.bin" "$dir/dump.$which.logits.bin" "$net $which ($cc)"
        done
    done
done

# --name, and an --out ending in .c choosing the format.
"$SLIM" export "$TMP/vgg-fm/pruned.ckpt" --out "$TMP/vgg-fm/x.c" --name 9-my.net >/dev/null ||
    fail "export without --format"
grep -qF 'void m9_my_net_run(const float *input, float *logits);' "$TMP/vgg-fm/x.h" ||
    fail "--name: $(cat "$TMP/vgg-fm/x.h")"
grep -qF '#define M9_MY_NET_CLASSES 10' "$TMP/vgg-fm/x.h" || fail "--name: no class count"

# Bad inputs: a clear error, nothing written.
OUT="$TMP/bad"
mkdir -p "$OUT"
expect_error "--out not .c" "does not end in .c" \
    export "$TMP/vgg-fm/pruned.ckpt" --format c --out "$OUT/model.txt"
head -c 1000 "$TMP/vgg-fm/pruned.ckpt" >"$TMP/truncated.ckpt"
expect_error "truncated checkpoint" "truncated.ckpt" \
    export "$TMP/truncated.ckpt" --format c --out "$OUT/model.c"
expect_error "missing directory" "$OUT/no/model" \
    export "$TMP/vgg-fm/pruned.ckpt" --format c --out "$OUT/no/model.c"
echo "ok"
