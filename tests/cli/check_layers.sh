#!/usr/bin/env bash
# tools/check-layers on tiny synthetic trees: a clean tree passes; an upward
# include, an include into a peer, an unknown public header or directory, a
# circle of calls and a build without objects each fail, naming the culprit.
# So the check that ctest runs on the real tree cannot pass silently.
set -euo pipefail
SRC=${SLIM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
CHECK="$SRC/tools/check-layers"
CC=${CC:-cc}
TMP=$(mktemp -d /tmp/slim_check_layers.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# A tree with core < nn and the peers optim, data; objects compiled the way
# CMake lays them out.
make_tree() {
    rm -rf "$TMP/t" && mkdir -p "$TMP/t/include/slim" "$TMP/t/src/core" "$TMP/t/src/nn" \
        "$TMP/t/src/optim" "$TMP/t/src/data"
    cd "$TMP/t"
    printf '#pragma once\nint core_fn(void);\n' >include/slim/core.h
    printf '#pragma once\n#include "slim/core.h"\nint nn_b(void);\nint nn_c(void);\n' >include/slim/nn.h
    printf '#pragma once\n#include "slim/core.h"\nint opt_fn(void);\n' >include/slim/optim.h
    printf '#pragma once\n#include "slim/core.h"\nint data_fn(void);\n' >include/slim/data.h
    printf '#include "slim/core.h"\nint core_fn(void) { return 1; }\n' >src/core/a.c
    printf '#include "slim/nn.h"\nint nn_b(void) { return core_fn(); }\n' >src/nn/b.c
    printf '#include "slim/nn.h"\nint nn_c(void) { return nn_b() + 1; }\n' >src/nn/c.c
    printf '#include "slim/optim.h"\n#include "slim/nn.h"\nint opt_fn(void) { return nn_c(); }\n' \
        >src/optim/x.c
    printf '#include "slim/data.h"\nint data_fn(void) { return core_fn(); }\n' >src/data/y.c
    cd - >/dev/null
}
build_objects() {
    local f
    for f in $(cd "$TMP/t" && find src -name '*.c'); do
        mkdir -p "$TMP/t/build/CMakeFiles/slimlib.dir/$(dirname "$f")"
        "$CC" -c -I"$TMP/t/include" -I"$TMP/t/src" "$TMP/t/$f" \
            -o "$TMP/t/build/CMakeFiles/slimlib.dir/$f.o" 2>"$TMP/cc.txt" ||
            fail "compiling the synthetic $f: $(cat "$TMP/cc.txt")"
    done
}
run() { "$CHECK" --root "$TMP/t" --build "$TMP/t/build" --no-allow >"$TMP/out.txt" 2>&1; }
expect_pass() {
    run || fail "$1: failed: $(cat "$TMP/out.txt")"
    grep -q "check-layers: OK" "$TMP/out.txt" || fail "$1: no OK line: $(cat "$TMP/out.txt")"
}
expect_fail() {
    local what=$1 pattern=$2
    ! run || fail "$what: passed: $(cat "$TMP/out.txt")"
    grep -qF -- "$pattern" "$TMP/out.txt" || fail "$what: output lacks '$pattern': $(cat "$TMP/out.txt")"
}

make_tree && build_objects
expect_pass "clean tree"

make_tree && printf '#include "slim/nn.h"\n' >>"$TMP/t/src/core/a.c" && build_objects
expect_fail "upward include" "FAIL: src/core/a.c: core includes slim/nn.h of nn, a higher layer"

make_tree && printf '#include "slim/optim.h"\n' >>"$TMP/t/include/slim/core.h" && build_objects
expect_fail "upward include in a public header" "FAIL: include/slim/core.h: core includes slim/optim.h"

make_tree && printf '#include "slim/data.h"\n' >>"$TMP/t/src/optim/x.c" && build_objects
expect_fail "peer include" "FAIL: src/optim/x.c: optim includes slim/data.h of its peer data"

make_tree && printf '#include "slim/zzz.h"\n' >>"$TMP/t/src/nn/b.c" && : >"$TMP/t/include/slim/zzz.h" &&
    build_objects
expect_fail "unknown header" "add slim/zzz.h to the HEADERS table"

make_tree && mkdir "$TMP/t/src/foo" && printf 'int foo(void) { return 0; }\n' >"$TMP/t/src/foo/f.c" &&
    build_objects
expect_fail "unknown directory" "add src/foo to the LAYERS list"

make_tree && printf 'int nn_d(void) { return nn_c(); }\n' >>"$TMP/t/src/nn/b.c" &&
    printf 'int nn_d(void);\nint nn_e(void) { return nn_d(); }\n' >>"$TMP/t/src/nn/c.c" && build_objects
expect_fail "circle of calls" "FAIL: files call each other: src/nn/b.c -> src/nn/c.c -> src/nn/b.c"

make_tree
expect_fail "no objects" "no object files under"

echo "check_layers: clean tree passes; upward, peer and unknown includes, circles, no objects fail"
