#!/usr/bin/env bash
# tools/zoo end to end on a tiny lenet-bn run: a λ large enough to zero every
# γ, so the exact prune really removes channels and the peer's --percent has
# something to match; every column of the table filled from slim's output;
# a failing model reported in its row with exit 1 while the table is still
# written; vgg11-cifar skipped with its reason; usage errors as 'zoo: error:'.
set -euo pipefail
source "$(dirname "$0")/common.bash"
cli_test_setup zoo
ZOO=$SRC/tools/zoo

# A quick run: 500 training images, 200 test images, 16 for the ONNX check.
out=$TMP/zoo
quick=(--epochs 1 --limit 500 --test-limit 200 --onnx-images 16 --repeats 1 --slim "$SLIM")
"$ZOO" --models vgg11-cifar,lenet-bn --lambda lenet-bn=20 --peer lenet-bn "${quick[@]}" \
    --out "$out" >"$TMP/log" 2>&1 || fail "zoo exited $?: $(tail -5 "$TMP/log")"
for step in "1/6 train" "2/6 sparsity" "3/6 prune" "4/6 export" "5/6 speed" "6/6 peer"; do
    grep -q "lenet-bn: $step" "$TMP/log" || fail "no progress line for '$step'"
done
grep -q "vgg11-cifar: skipped: CIFAR-10 is not packaged in Debian" "$TMP/log" \
    || fail "vgg11-cifar not skipped with its reason"
for f in trained.ckpt pruned.ckpt pruned.slim pruned.onnx report.md peer-pruned.ckpt; do
    [[ -s "$out/lenet-bn/$f" ]] || fail "no $f in $out/lenet-bn"
done
[[ -s "$out/zoo.md" ]] || fail "no zoo.md"

# The row, cell by cell (a cell left empty prints as –).
row=$(grep '^| lenet-bn |' "$out/zoo.md") || fail "no lenet-bn row in zoo.md"
IFS='|' read -r -a cells <<<"$row"
[[ ${#cells[@]} -eq 16 ]] || fail "row has ${#cells[@]} fields, want 16: $row"
trim() { local s=$1; s=${s#"${s%%[! ]*}"}; echo "${s%"${s##*[! ]}"}"; }
params=$(trim "${cells[2]}") zero=$(trim "${cells[5]}") delta=$(trim "${cells[8]}")
argmax=$(trim "${cells[9]}") onnx=$(trim "${cells[10]}") macs=$(trim "${cells[11]}")
time_r=$(trim "${cells[12]}") lat_r=$(trim "${cells[13]}") peer=$(trim "${cells[14]}")
notes=$(trim "${cells[15]}")
[[ $params == 29,762 ]] || fail "params '$params', want lenet-bn's 29,762"
[[ $zero == "24/24 (100.0%)" ]] || fail "γ = 0 '$zero', want 24/24 at λ 20"
[[ $delta =~ ^[0-9.e+-]+\ /\ [0-9.e+-]+$ ]] || fail "max|Δlogit| cell '$delta'"
[[ $argmax == "0 / 200" ]] || fail "argmax cell '$argmax', want 0 / 200"
[[ $onnx =~ ^[0-9.e+-]+$ || $onnx == n/a ]] || fail "ONNX cell '$onnx'"
awk -v m="$macs" 'BEGIN { exit !(m > 0 && m < 1) }' || fail "MAC ratio '$macs' not below 1"
[[ $time_r =~ ^[0-9.]+$ && $lat_r =~ ^[0-9.]+$ ]] || fail "time ratios '$time_r' '$lat_r'"
[[ $peer =~ %\ →\ [0-9.]+%\ \(9[0-9.]+%\)$ ]] || fail "peer cell '$peer'"
[[ $notes == – ]] || fail "notes '$notes' on a clean run"
grep -q "^- vgg11-cifar: skipped" "$out/zoo.md" || fail "zoo.md lacks the skip line"

# A failing step: the model's row says where and why, the table is still
# written, the exit status is 1.
fake=$TMP/fake-slim
printf '#!/bin/sh\n[ "$1" = export ] && { echo "slim: error: broken on purpose" >&2; exit 1; }\nexec "%s" "$@"\n' \
    "$SLIM" >"$fake"
chmod +x "$fake"
rc=0
"$ZOO" --models lenet-bn --no-peer "${quick[@]}" --slim "$fake" --out "$TMP/bad" \
    >"$TMP/bad.log" 2>&1 || rc=$?
[[ $rc -eq 1 ]] || fail "exit $rc with a failing export, want 1"
grep -q '^| lenet-bn |.*FAILED at export: .*broken on purpose' "$TMP/bad/zoo.md" \
    || fail "row does not report the failed export: $(cat "$TMP/bad/zoo.md")"
grep -q '^zoo: error: 1 of 1 model' "$TMP/bad.log" || fail "no 'zoo: error:' summary"

# Usage errors.
for args in "--bogus" "--models nosuch" "--lambda 5e-3" "--epochs 0" "--lambda lenet-bn=-1"; do
    rc=0
    # shellcheck disable=SC2086
    "$ZOO" $args --slim "$SLIM" --out "$TMP/usage" >"$TMP/u.log" 2>&1 || rc=$?
    [[ $rc -eq 2 ]] || fail "'$args': exit $rc, want 2"
    grep -q '^zoo: error: ' "$TMP/u.log" || fail "'$args': no 'zoo: error:' line"
done
"$ZOO" --help >"$TMP/help.txt" || fail "--help exited $?"
grep -q "usage: tools/zoo" "$TMP/help.txt" || fail "--help prints no usage"
echo "ok: tools/zoo pipeline, failure row, skip line, usage errors"
