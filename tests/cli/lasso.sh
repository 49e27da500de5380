#!/usr/bin/env bash
# Runs the built examples/lasso program and checks its output format, its
# answers on the synthetic problem, a CSV run and its error handling.
# Needs SLIM_BINARY_DIR (set by ctest). Exits non-zero on the first failure.
set -euo pipefail

LASSO="${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must point to the build directory}/examples/lasso"
[[ -x "$LASSO" ]] || { echo "FAIL: $LASSO not built" >&2; exit 1; }

TMP=$(mktemp -d /tmp/slim_lasso_cli.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# --- single λ on the synthetic problem --------------------------------------
# Output: '# true support' line, '(intercept) V', 500 'xJ V' lines in order,
# 'kkt_violation V' with V < 1e-6.
check_single() {
    local out=$1 p=$2
    awk -v p="$p" '
        /^#/ { next }
        NF != 2 { print "not NAME VALUE: " $0; bad = 1; exit }
        $2 !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/ { print "not a number: " $0; bad = 1; exit }
        { lines[++n] = $1; vals[n] = $2 }
        END {
            if (bad) exit 1
            if (n != p + 2) { print "expected " p + 2 " lines, got " n; exit 1 }
            if (lines[1] != "(intercept)") { print "first line is not (intercept)"; exit 1 }
            if (lines[n] != "kkt_violation") { print "last line is not kkt_violation"; exit 1 }
            if (!(vals[n] + 0 < 1e-6)) { print "kkt_violation " vals[n] " >= 1e-6"; exit 1 }
        }' "$out" || fail "format of $out"
}

"$LASSO" --lambda 0.1 --true-support >"$TMP/fista.txt" 2>"$TMP/fista.err" || fail "--lambda run failed"
check_single "$TMP/fista.txt" 500
# Names x0..x499 in order.
awk '!/^#/ && $1 != "(intercept)" && $1 != "kkt_violation" { if ($1 != "x" n++) exit 1 }' \
    "$TMP/fista.txt" || fail "feature names are not x0..x499 in order"
# At λ = 0.1 the nonzero coefficients are exactly the true support
# (the documented window is about 0.03 .. 0.77).
truth=$(sed -n 's/^# true support ([0-9]* of [0-9]*): //p' "$TMP/fista.txt" | tr ' ' '\n' | sort)
found=$(awk '!/^#/ && $1 ~ /^x/ && $2 + 0 != 0 { print $1 }' "$TMP/fista.txt" | sort)
[[ -n "$truth" && "$truth" == "$found" ]] || fail "support at lambda 0.1: got [$found], want [$truth]"

# ISTA gives the same coefficients to the printed precision (1e-6 here).
"$LASSO" --lambda 0.1 --method ista >"$TMP/ista.txt" 2>/dev/null || fail "ista run failed"
check_single "$TMP/ista.txt" 500
paste -d' ' <(grep -v '^#' "$TMP/fista.txt") "$TMP/ista.txt" | awk '
    $1 != "kkt_violation" { d = $2 - $4; if (d < 0) d = -d; if ($1 != $3 || d > 1e-6) exit 1 }' ||
    fail "ista and fista disagree"

# --- the path ------------------------------------------------------------------
"$LASSO" --points 6 >"$TMP/path.txt" 2>/dev/null || fail "path run failed"
head -1 "$TMP/path.txt" | grep -qx 'lambda nonzeros objective kkt_violation iterations' ||
    fail "path header"
awk 'NR > 1 {
        n++
        if (NF != 5) exit 1
        if (NR == 2 && $2 != 0) exit 1          # λ_max: all zero
        if (NR > 2 && $1 >= prev) exit 1        # λ decreasing
        if (!($4 + 0 < 1e-6)) exit 1           # converged
        prev = $1
    }
    END { if (n != 6) exit 1 }' "$TMP/path.txt" || fail "path lines: $(cat "$TMP/path.txt")"

# Group lasso path: nonzeros come in whole groups of 5.
"$LASSO" --group-size 5 --points 4 >"$TMP/group.txt" 2>/dev/null || fail "group run failed"
awk 'NR > 1 { n++; if ($2 % 5 != 0 || !($4 + 0 < 1e-6)) exit 1 } END { if (n != 4) exit 1 }' \
    "$TMP/group.txt" || fail "group path: $(cat "$TMP/group.txt")"

# --- a CSV ---------------------------------------------------------------------
# y = 1 + 2*a - 3*b (exactly, no noise); 'k' is constant.
cat >"$TMP/tiny.csv" <<'EOF'
a,b,k,y
1,0,5,3
2,1,5,2
3,0,5,7
4,2,5,3
5,1,5,8
6,3,5,4
EOF
"$LASSO" --csv "$TMP/tiny.csv" --target y --lambda 0.001 >"$TMP/csv.txt" 2>"$TMP/csv.err" ||
    fail "csv run failed: $(cat "$TMP/csv.err")"
check_single "$TMP/csv.txt" 3
cut -d' ' -f1 "$TMP/csv.txt" | tr '\n' ' ' | grep -qx '(intercept) a b k kkt_violation ' ||
    fail "csv names: $(cat "$TMP/csv.txt")"
grep -qx 'k 0' "$TMP/csv.txt" || fail "constant column not 0"
grep -q "column 'k' is constant" "$TMP/csv.err" || fail "no note about the constant column"
# A small λ nearly recovers the exact fit: a ≈ 2, b ≈ -3, intercept ≈ 1.
awk '$1 == "a" && ($2 < 1.95 || $2 > 2.05) { exit 1 }
     $1 == "b" && ($2 < -3.05 || $2 > -2.95) { exit 1 }
     $1 == "(intercept)" && ($2 < 0.9 || $2 > 1.1) { exit 1 }' "$TMP/csv.txt" ||
    fail "csv coefficients: $(cat "$TMP/csv.txt")"

# --- errors: 'lasso: error:' on stderr and exit status != 0 ------------------
expect_error() {
    local what=$1 pattern=$2
    shift 2
    local rc=0
    "$LASSO" "$@" >"$TMP/err.out" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -ne 0 ]] || fail "$what: exit status 0"
    grep -q '^lasso: error: ' "$TMP/err.txt" || fail "$what: no 'lasso: error:' line"
    grep -qF -- "$pattern" "$TMP/err.txt" || fail "$what: message lacks '$pattern': $(cat "$TMP/err.txt")"
}
printf 'a,b,y\n1,2,3\n4,5\n' >"$TMP/ragged.csv"
expect_error "ragged csv" "$TMP/ragged.csv:3:" --csv "$TMP/ragged.csv" --target y --lambda 0.1
printf 'a,b,y\n1,2,3\n4,five,6\n' >"$TMP/badnum.csv"
expect_error "bad number" "$TMP/badnum.csv:3: column 'b': bad number 'five'" \
    --csv "$TMP/badnum.csv" --target y
expect_error "unknown target" "no column named 'zz'" --csv "$TMP/tiny.csv" --target zz
expect_error "missing file" "$TMP/none.csv" --csv "$TMP/none.csv" --target y
expect_error "unknown option" "--bogus" --bogus
expect_error "bad method" "--method" --method newton
expect_error "negative lambda" "--lambda" --lambda -1
expect_error "csv without target" "--target" --csv "$TMP/tiny.csv"

# --- help lists every option ---------------------------------------------------
"$LASSO" --help >"$TMP/help.txt" || fail "--help failed"
for opt in --lambda --method --points --min-ratio --group-size --seed --csv --target --tol \
    --max-iter --no-restart --true-support --png --help; do
    grep -q -- "^  $opt" "$TMP/help.txt" || fail "--help does not list $opt"
done

# --- the path plot ---------------------------------------------------------------
"$LASSO" --points 5 --png "$TMP/path.png" >/dev/null 2>&1 || fail "png run failed"
[[ "$(head -c 8 "$TMP/path.png" | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] ||
    fail "path.png is not a PNG"

echo "lasso cli: all checks passed"
