#!/usr/bin/env bash
# The `slim` command line's surface: `slim --help` lists every command, each
# `slim <cmd> --help` exits 0 and lists every option with its default, and
# usage errors (unknown command, unknown option, bad number, missing value,
# missing argument) exit 2 with a `slim: error:` line naming the problem.
# Needs no data.
set -euo pipefail

SLIM=${SLIM:?SLIM must point to the slim program}
[[ -x "$SLIM" ]] || { echo "FAIL: $SLIM not built" >&2; exit 1; }
TMP=$(mktemp -d /tmp/slim_cli_usage.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- slim --help / --version ----------------------------------------------------
"$SLIM" --help >"$TMP/help.txt" || fail "slim --help exited non-zero"
for cmd in train eval info prune export infer report; do
    grep -qE "^  $cmd +[a-z]" "$TMP/help.txt" || fail "slim --help does not list '$cmd'"
done
"$SLIM" --version | grep -qE '^slim [0-9]+\.[0-9]+\.[0-9]+$' || fail "slim --version"
rc=0
"$SLIM" >/dev/null 2>"$TMP/none.txt" || rc=$?
[[ $rc -eq 2 ]] || fail "slim without a command: exit $rc, want 2"
grep -q 'usage: slim <command>' "$TMP/none.txt" || fail "slim without a command prints no usage"

# --- every option of every command, with its default ---------------------------
declare -A OPTIONS=(
    [train]="model data epochs batch lr schedule momentum weight-decay limit test-limit augment
             flip seed threads backend penalty lambda progress quiet out resume init val-split val
             resize crop-scale cache-mib workers skip-bad cost target-macs target-params target-latency
             latency-from budget-trim bn-sync dist-check live-prune live-prune-after"
    [eval]="data limit batch backend threads logits resize"
    [info]="json"
    [prune]="out threshold percent target-macs target-params check data backend threads"
    [export]="out format name"
    [infer]="top threads backend resize"
    [report]="data limit threads repeats"
)
for cmd in "${!OPTIONS[@]}"; do
    "$SLIM" "$cmd" --help >"$TMP/$cmd.txt" 2>"$TMP/$cmd.err" || fail "slim $cmd --help exited non-zero"
    [[ ! -s "$TMP/$cmd.err" ]] || fail "slim $cmd --help wrote to stderr"
    grep -q "^usage: slim $cmd" "$TMP/$cmd.txt" || fail "slim $cmd --help: no usage line"
    for opt in ${OPTIONS[$cmd]}; do
        grep -qE -- "^  --$opt[ ,]" "$TMP/$cmd.txt" || fail "slim $cmd --help does not list --$opt"
    done
    # Every option line (but --help) shows its default; the count of option
    # lines equals the expected list (no undocumented extras, none missing).
    n_lines=$(grep -cE -- '^  --' "$TMP/$cmd.txt")
    n_expected=$(($(wc -w <<<"${OPTIONS[$cmd]}") + 1))
    [[ $n_lines -eq $n_expected ]] || fail "slim $cmd --help: $n_lines option lines, want $n_expected"
    if grep -E -- '^  --' "$TMP/$cmd.txt" | grep -v -- '^  --help$' | grep -v '(default: '; then
        fail "slim $cmd --help: option lines above lack a default"
    fi
    # `slim help <cmd>` is the same text.
    "$SLIM" help "$cmd" | cmp -s - "$TMP/$cmd.txt" || fail "slim help $cmd differs from --help"
done
grep -q -- '--epochs N *(default: 1)' "$TMP/train.txt" || fail "train --epochs default"
grep -q -- '--batch N *(default: 128)' "$TMP/train.txt" || fail "train --batch default"
grep -q -- '--lr X *(default: 0.05)' "$TMP/train.txt" || fail "train --lr default"
grep -q -- '--schedule constant|step|cosine *(default: cosine)' "$TMP/train.txt" || fail "schedule"
grep -q -- '--batch N *(default: 256)' "$TMP/eval.txt" || fail "eval --batch default"
grep -q -- '--top K *(default: 3)' "$TMP/infer.txt" || fail "infer --top default"
grep -q -- '--check N *(default: 256)' "$TMP/prune.txt" || fail "prune --check default"
# The documented promises of train --help.
tr '\n' ' ' <"$TMP/train.txt" | tr -s ' ' >"$TMP/train1.txt"
for phrase in "COUPLED L2 as in PyTorch's SGD" "BN gets no weight decay" "would change the proximal" \
    "except --epochs" "and --threads" "fresh optimizer state" "penalty can stay on"; do
    grep -qF "$phrase" "$TMP/train1.txt" || fail "train --help does not say '$phrase'"
done

# --- usage errors: exit 2 and a 'slim: error:' line naming the problem -----------
expect_usage() {
    local what=$1 pattern=$2
    shift 2
    local rc=0
    "$SLIM" "$@" >"$TMP/out.txt" 2>"$TMP/err.txt" || rc=$?
    [[ $rc -eq 2 ]] || fail "$what: exit $rc, want 2 ($(cat "$TMP/err.txt"))"
    grep -q '^slim: error: ' "$TMP/err.txt" || fail "$what: no 'slim: error:' line"
    grep -qF -- "$pattern" "$TMP/err.txt" || fail "$what: message lacks '$pattern': $(cat "$TMP/err.txt")"
}
expect_usage "unknown command" "unknown command 'frobnicate' (see slim --help)" frobnicate
expect_usage "help of an unknown command" "unknown command 'nope'" help nope
expect_usage "unknown option" "unknown option '--bogus' (see slim train --help)" train --bogus 1
expect_usage "unknown option with =" "unknown option '--bogus'" eval --bogus=3 x.ckpt
expect_usage "unknown short option" "unknown option '-x'" info -x m.net
expect_usage "bad integer" "--batch: 'ten' is not an integer" train --batch ten
expect_usage "bad integer with =" "--epochs: '2x' is not an integer" train --epochs=2x
expect_usage "bad float" "--lr: 'fast' is not a finite number" train --lr fast
expect_usage "non-finite float" "--lambda: 'nan' is not a finite number" train --lambda nan
expect_usage "bad choice" "--schedule: unknown value 'linear'" train --schedule linear
expect_usage "missing value" "--out needs a value" train --model m.net --out
expect_usage "flag with a value" "--json takes no value" info --json=yes m.net
expect_usage "negating a non-negatable flag" "unknown option '--no-json'" info --no-json m.net
expect_usage "missing argument" "missing argument" eval
expect_usage "extra argument" "unexpected argument 'b.ckpt'" eval a.ckpt b.ckpt
expect_usage "train without --out" "--out RUN.ckpt is required" train --model m.net
expect_usage "train without a model" "--model M.net is required" train --out x.ckpt

# --opt=value and mixed positional/option order parse: the error is then
# about the (missing) file, not the command line.
rc=0
"$SLIM" eval --batch=16 "$TMP/none.ckpt" --limit=5 >/dev/null 2>"$TMP/err.txt" || rc=$?
[[ $rc -eq 1 ]] || fail "eval of a missing file: exit $rc, want 1"
grep -qF "$TMP/none.ckpt" "$TMP/err.txt" || fail "eval of a missing file: $(cat "$TMP/err.txt")"

echo "cli usage: all checks passed"
