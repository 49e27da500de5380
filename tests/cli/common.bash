# Sourced by the command-line tests (tests/cli/*.sh): the shared set-up.
# cli_test_setup NAME: checks $SLIM and $SLIM_SOURCE_DIR (from ctest), skips
# the test (exit 0 with a "skipped:" line) when Fashion-MNIST is not
# installed, makes $TMP (removed on exit) and defines fail().
cli_test_setup() {
    SLIM=${SLIM:?SLIM must point to the slim program}
    SRC=${SLIM_SOURCE_DIR:?SLIM_SOURCE_DIR must point to the source tree}
    [[ -x "$SLIM" ]] || { echo "FAIL: $SLIM not built" >&2; exit 1; }
    if [[ ! -d /usr/share/datasets/fashion-mnist ]]; then
        echo "skipped: /usr/share/datasets/fashion-mnist is missing"
        exit 0
    fi
    TMP=$(mktemp -d "/tmp/slim_cli_$1.XXXXXX")
    trap 'rm -rf "$TMP"' EXIT
}

fail() { echo "FAIL: $*" >&2; exit 1; }
