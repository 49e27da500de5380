#!/usr/bin/env bash
# The installed package (issue 25, docs/DEPLOY.md): `cmake --install` into a
# temporary prefix puts the headers, libslim (shared and static), the slim
# program, slim.pc and the CMake package there; every installed header
# compiles on its own (C11 -pedantic, and as C++); the version is the same in
# CMakeLists.txt, slim/version.h, pkg-config, the CMake package and
# `slim --version`; examples/embed.c builds against the install through
# pkg-config (shared and static) and through find_package(slim) (slim::slim
# and slim::slim_static), and each build classifies pictures with an
# exported model exactly as `slim infer` does.
set -euo pipefail

# shellcheck source=common.bash
source "$(dirname "${BASH_SOURCE[0]}")/common.bash"
cli_test_setup install
BUILD=${SLIM_BINARY_DIR:?SLIM_BINARY_DIR must point to the build directory}
P="$TMP/prefix"
CC=${CC:-cc}
# A sanitizer build's library needs the sanitizers in the programs that link it.
SAN=()
if grep -q '^SLIM_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then SAN=(-fsanitize=address,undefined); fi

# --- install ------------------------------------------------------------------------------
cmake --install "$BUILD" --prefix "$P" >"$TMP/install.out" 2>&1 || fail "install: $(cat "$TMP/install.out")"
for f in bin/slim lib/libslim.a lib/libslim.so lib/pkgconfig/slim.pc include/slim/infer.h \
    include/slim/version.h include/slim/core.h include/slim/data.h lib/cmake/slim/slimConfig.cmake \
    lib/cmake/slim/slimConfigVersion.cmake lib/cmake/slim/slimTargets.cmake; do
    [[ -e "$P/$f" ]] || fail "not installed: $f"
done
# The shared library exports the public API only.
syms=$(nm -D --defined-only "$P/lib/libslim.so" | awk 'NF == 3 {print $3}')
other=$(grep -v '^slim_' <<<"$syms" || true)
[[ -z "$other" ]] || fail "libslim.so exports symbols without slim_: $other"
grep -qx 'slim_infer_run_image' <<<"$syms" || fail "libslim.so lacks slim_infer_run_image"

# --- every installed header on its own ----------------------------------------------------
for h in "$P"/include/slim/*.h; do
    b=$(basename "$h")
    printf '#include <slim/%s>\nint header_check_%s;\n' "$b" "${b%.h}" >"$TMP/h.c"
    "$CC" -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only -I"$P/include" "$TMP/h.c" \
        2>"$TMP/h.err" || fail "$b does not compile alone: $(cat "$TMP/h.err")"
    if command -v c++ >/dev/null; then
        c++ -Wall -Wextra -Werror -fsyntax-only -x c++ -I"$P/include" "$TMP/h.c" 2>"$TMP/h.err" ||
            fail "$b does not compile as C++: $(cat "$TMP/h.err")"
    fi
done

# --- one version --------------------------------------------------------------------------
want=$(sed -n 's/^project(slim VERSION \([0-9.]*\) .*/\1/p' "$SRC/CMakeLists.txt")
[[ -n "$want" ]] || fail "no project(slim VERSION ...) in CMakeLists.txt"
printf '#include <slim/version.h>\nSLIM_VERSION SLIM_VERSION_NUMBER\n' >"$TMP/v.c"
hdr=$("$CC" -E -P -I"$P/include" "$TMP/v.c" | tr -d '"' | grep -v '^$')
IFS=. read -r major minor patch <<<"$want"
[[ "$hdr" == "$want ($major * 10000 + $minor * 100 + $patch)" ]] || fail "version.h says '$hdr', want $want"
export PKG_CONFIG_PATH="$P/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
[[ "$(pkg-config --modversion slim)" == "$want" ]] || fail "pkg-config says $(pkg-config --modversion slim)"
[[ "$("$P/bin/slim" --version | head -n 1)" == "slim $want" ]] || fail "slim --version: $("$P/bin/slim" --version)"

# --- a model and pictures -----------------------------------------------------------------
"$P/bin/slim" train --model "$SRC/models/lenet-bn.net" --limit 512 --test-limit 64 --batch 32 \
    --lr 0.1 --epochs 1 --schedule constant --quiet --threads 1 --out "$TMP/run.ckpt" \
    >/dev/null 2>"$TMP/train.err" || fail "train: $(cat "$TMP/train.err")"
"$P/bin/slim" export "$TMP/run.ckpt" --out "$TMP/model.slim" >/dev/null || fail "export"
# Test images 0-3 as PNG: 0 and 1 at 28x28 gray, 2 and 3 at 56x56 RGB (each
# pixel 2x2, so the model's resize has work to do).
fmnist_pngs "$TMP" 0 2
fmnist_pngs "$TMP" 2 2 2
imgs=("$TMP"/img{0,1,2,3}.png)
"$P/bin/slim" infer "$TMP/model.slim" "${imgs[@]}" --top 1 --threads 1 >"$TMP/infer.out" ||
    fail "slim infer"
# "PATH: NAME (class K, ...)" lines, as embed prints them, from slim infer's.
python3 - "$TMP/infer.out" >"$TMP/want.txt" <<'EOF'
import re, sys
path = None
for line in open(sys.argv[1]):
    if line.endswith(".png\n"):
        path = line.strip()
    m = re.match(r"  1\. (.*?) +[0-9.]+%  \(class (\d+)\)$", line)
    if m and path:
        print("%s: %s (class %s" % (path, m.group(1), m.group(2)))
        path = None
EOF
[[ $(wc -l <"$TMP/want.txt") -eq 4 ]] || fail "slim infer output: $(cat "$TMP/infer.out")"

# check_embed NAME BINARY: classifies the pictures as slim infer did.
check_embed() {
    local name=$1 bin=$2
    "$bin" "$TMP/model.slim" "${imgs[@]}" >"$TMP/$name.out" 2>"$TMP/$name.err" ||
        fail "$name: $(cat "$TMP/$name.err")"
    [[ "$(head -1 "$TMP/$name.out")" == "slim $want (built with $want): input 1x28x28, 10 classes, resize crop"* ]] ||
        fail "$name: header line: $(head -1 "$TMP/$name.out")"
    tail -n +2 "$TMP/$name.out" | sed 's/, logit .*//' >"$TMP/$name.classes"
    diff "$TMP/want.txt" "$TMP/$name.classes" >/dev/null ||
        fail "$name disagrees with slim infer: $(diff "$TMP/want.txt" "$TMP/$name.classes")"
    # A picture that does not exist: exit 1, a message naming it.
    local rc=0
    "$bin" "$TMP/model.slim" "$TMP/none.png" >/dev/null 2>"$TMP/$name.err" || rc=$?
    [[ $rc -eq 1 ]] && grep -qF "embed: error: $TMP/none.png: cannot open" "$TMP/$name.err" || fail "$name on a missing picture: exit $rc, $(cat "$TMP/$name.err")"
}

# --- embed.c through pkg-config ----------------------------------------------------------
W=(-std=c11 -Wall -Wextra -Werror -pedantic "${SAN[@]}")
# shellcheck disable=SC2046
"$CC" "${W[@]}" "$SRC/examples/embed.c" -o "$TMP/embed_pc" $(pkg-config --cflags --libs slim) \
    -Wl,-rpath,"$P/lib" 2>"$TMP/cc.err" || fail "pkg-config build: $(cat "$TMP/cc.err")"
ldd "$TMP/embed_pc" >"$TMP/ldd.txt"
grep -qF "$P/lib/libslim.so" "$TMP/ldd.txt" || fail "embed_pc does not use the installed libslim.so"
check_embed embed_pc "$TMP/embed_pc"
# Static: the same flags with --static, libslim.a named instead of -lslim.
libs=$(pkg-config --static --libs slim)
# shellcheck disable=SC2046
"$CC" "${W[@]}" "$SRC/examples/embed.c" -o "$TMP/embed_pc_static" $(pkg-config --cflags slim) \
    ${libs/-lslim /-l:libslim.a } 2>"$TMP/cc.err" || fail "pkg-config --static build: $(cat "$TMP/cc.err")"
ldd "$TMP/embed_pc_static" >"$TMP/ldd.txt"
! grep -q libslim "$TMP/ldd.txt" || fail "embed_pc_static links libslim.so"
check_embed embed_pc_static "$TMP/embed_pc_static"

# --- embed.c through find_package(slim) ---------------------------------------------------
mkdir -p "$TMP/proj"
cat >"$TMP/proj/CMakeLists.txt" <<EOF
cmake_minimum_required(VERSION 3.18)
project(embed LANGUAGES C)
find_package(slim $want REQUIRED)
add_executable(embed_shared "$SRC/examples/embed.c")
target_link_libraries(embed_shared PRIVATE slim::slim)
add_executable(embed_static "$SRC/examples/embed.c")
target_link_libraries(embed_static PRIVATE slim::slim_static)
EOF
cmake -S "$TMP/proj" -B "$TMP/proj/build" -DCMAKE_PREFIX_PATH="$P" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_C_FLAGS="${SAN[*]}" \
    >"$TMP/cm.out" 2>&1 || fail "find_package(slim): $(cat "$TMP/cm.out")"
cmake --build "$TMP/proj/build" >"$TMP/cm.out" 2>&1 || fail "find_package build: $(cat "$TMP/cm.out")"
ldd "$TMP/proj/build/embed_shared" >"$TMP/ldd.txt"
grep -qF "$P/lib/libslim.so" "$TMP/ldd.txt" || fail "embed_shared: not the installed libslim.so"
ldd "$TMP/proj/build/embed_static" >"$TMP/ldd.txt"
! grep -q libslim "$TMP/ldd.txt" || fail "embed_static links libslim.so"
check_embed cmake_shared "$TMP/proj/build/embed_shared"
check_embed cmake_static "$TMP/proj/build/embed_static"
# A version the package does not offer is refused.
sed -i "s/find_package(slim $want REQUIRED)/find_package(slim $((major + 1)).0 REQUIRED)/" "$TMP/proj/CMakeLists.txt"
! cmake -S "$TMP/proj" -B "$TMP/proj/build2" -DCMAKE_PREFIX_PATH="$P" >/dev/null 2>&1 ||
    fail "find_package(slim $((major + 1)).0) succeeded"


echo "install: all checks passed"
