#!/usr/bin/env bash
# tools/compare-penalties end to end on its smoke profile (1 epoch on 512
# images per run), with the programs of the build under test (--bin): every
# method is trained, pruned, fine-tuned, exported and timed, RESULTS.md, its
# plots and results.json are written, a second run keeps what the first
# trained, and --replot rewrites the report from results.json alone; the
# same comparison spread over 2 MPI ranks (--mpi 2) gives the same figures.
set -euo pipefail
source "$(dirname "$0")/common.bash"
cli_test_setup compare_penalties
BIN=${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must point to the build directory}
TOOL="$SRC/tools/compare-penalties"
OUT="$TMP/cmp"

/usr/bin/python3 -c 'import matplotlib' 2>/dev/null ||
    fail "python3-matplotlib is missing (tools/install-deps installs it)"

"$TOOL" --profile smoke --bin "$BIN" --out "$OUT" >"$TMP/out1.txt" 2>"$TMP/log1.txt" ||
    fail "first run: $(tail -5 "$TMP/log1.txt")"

python3 - "$OUT" <<'PY' || fail "results.json or RESULTS.md is not what it should be"
import json, os, sys
out = sys.argv[1]
with open(os.path.join(out, "results.json")) as f:
    saved = json.load(f)
res = saved["results"]
methods = [r["method"] + (" pct" if r["suffix"] else "") for r in res]
want = ["none", "weight-l1", "filter-l1", "gamma-l1", "gamma-l1-subgrad", "gamma-l1-subgrad pct"]
assert methods == want, methods
for r in res:
    for f in ("ckpt", "pruned", "tuned", "model"):
        assert os.path.getsize(r[f]) > 0, (r["tag"], f)
    assert r["ips"] > 0, r["tag"]
    for acc in ("acc_before", "acc_pruned", "acc_tuned"):
        assert 0 <= r[acc] <= 100, (r["tag"], acc, r[acc])
    # too short for any λ to silence a channel: pruning removes none, and
    # the pruned model's figures are the trained one's
    assert r["pinfo"]["channels"] == r["info"]["channels"], r["tag"]
    assert r["pinfo"]["macs"] == r["info"]["macs"], r["tag"]
    # every trained model keeps its channels (no live pruning): the
    # table's columns count against the full model
    assert r["info"]["meta"].get("live_prune.remove", "0") == "0", r["tag"]
by = {m: r for m, r in zip(methods, res)}
def median_gamma(r):
    g = sorted(l["gamma_median"] for l in r["info"]["layers"] if l["kind"] == "bn")
    return g[len(g) // 2]
# the penalties act: Γ-L1's soft threshold shrinks γ far below the
# unpenalised run's, and weight-L1 zeroes weights that none does not
assert median_gamma(by["gamma-l1"]) < 0.5 * median_gamma(by["none"]), \
    (median_gamma(by["gamma-l1"]), median_gamma(by["none"]))
assert by["weight-l1"]["info"]["weights_zero"] > by["none"]["info"]["weights_zero"]
text = open(os.path.join(out, "RESULTS.md")).read()
rows = [l for l in text.splitlines() if l.startswith("| ") and not l.startswith("| run")]
for m in want:
    assert any(l.startswith(f"| {m} |") for l in rows), m
for png in ("accuracy_vs_macs", "channels_per_layer", "gamma_hist", "weight_hist"):
    with open(os.path.join(out, png + ".png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", png
PY

# A second run keeps every trained run (an interrupted comparison resumes).
"$TOOL" --profile smoke --bin "$BIN" --out "$OUT" >"$TMP/out2.txt" 2>"$TMP/log2.txt" ||
    fail "second run: $(tail -5 "$TMP/log2.txt")"
kept=$(grep -c 'done by an earlier run, kept' "$TMP/log2.txt" || true)
[[ $kept -eq 5 ]] || fail "second run kept $kept of 5 trained runs: $(cat "$TMP/log2.txt")"

# --replot: the report and plots again, from results.json alone.
rm "$OUT/RESULTS.md" "$OUT"/*.png
"$TOOL" --profile smoke --bin "$BIN" --out "$OUT" --replot >/dev/null 2>"$TMP/log3.txt" ||
    fail "--replot: $(cat "$TMP/log3.txt")"
[[ -s "$OUT/RESULTS.md" && -s "$OUT/gamma_hist.png" ]] || fail "--replot wrote no report"

# Errors: a --bin without the programs, and contradicting profiles.
if "$TOOL" --profile smoke --bin "$TMP/nowhere" --out "$OUT" 2>"$TMP/err.txt"; then
    fail "--bin without programs succeeded"
fi
grep -q 'is not a built program' "$TMP/err.txt" || fail "--bin error: $(cat "$TMP/err.txt")"
if "$TOOL" --quick --profile smoke --bin "$BIN" --out "$TMP/x" 2>"$TMP/err.txt"; then
    fail "--quick --profile smoke succeeded"
fi
grep -q 'different profiles' "$TMP/err.txt" || fail "profile error: $(cat "$TMP/err.txt")"
# Under mpirun a rank builds nothing: it needs --bin.
if OMPI_COMM_WORLD_RANK=0 OMPI_COMM_WORLD_SIZE=2 "$TOOL" --profile smoke --out "$TMP/x" \
    2>"$TMP/err.txt"; then
    fail "a rank without --bin succeeded"
fi
grep -q 'under mpirun, give --bin' "$TMP/err.txt" || fail "rank error: $(cat "$TMP/err.txt")"

# The sweep over 2 MPI ranks (docs/SCALE.md): each rank trains its share of
# the grid as one-process runs, so every figure but speed is the serial
# run's, and both ranks trained.
if "$BIN/slim" --version | grep -q 'MPI: not built in'; then
    echo "compare-penalties: smoke profile, resume, replot and errors OK (no MPI: sweep skipped)"
    exit 0
fi
OMPI_MCA_btl_vader_single_copy_mechanism=none "$TOOL" --profile smoke --bin "$BIN" \
    --out "$TMP/mpi" --mpi 2 >/dev/null 2>"$TMP/log4.txt" || fail "--mpi 2: $(tail -5 "$TMP/log4.txt")"
grep -q 'rank 1: train ' "$TMP/log4.txt" || fail "--mpi 2: rank 1 trained nothing: $(cat "$TMP/log4.txt")"
python3 - "$OUT" "$TMP/mpi" <<'PY' || fail "--mpi 2 results differ from the serial run's"
import json, os, sys
a, b = (json.load(open(os.path.join(d, "results.json")))["results"] for d in sys.argv[1:3])
assert [r["tag"] + r["suffix"] for r in a] == [r["tag"] + r["suffix"] for r in b]
for x, y in zip(a, b):
    for k in ("acc_before", "acc_pruned", "acc_tuned"):
        assert x[k] == y[k], (x["tag"], k, x[k], y[k])
    assert x["info"]["weights_zero"] == y["info"]["weights_zero"], x["tag"]
PY
echo "compare-penalties: smoke profile, resume, replot, errors and the MPI sweep OK"
