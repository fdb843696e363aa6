#!/usr/bin/env bash
# e2e-asan.sh is `make e2e-asan`: the network-namespace scenarios of scripts/e2e/ (all of them,
# or the named ones) against the ASan + UBSan build in build-asan/. Every instrumented process a
# scenario starts (ztunnel, zt_relay) writes any sanitizer report to build-asan/sanitizer/, and a
# report written while a scenario runs fails that scenario even if the scenario itself passed:
# leaks at exit (LSan), memory errors (ASan), undefined behaviour (UBSan, which aborts). Timeouts
# are scaled by 3 for the slower binaries. Ends with the usual summary line and the wall time.
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=build-asan
[ -x "$BUILD/ztunnel" ] || { echo "missing $BUILD/ztunnel: run make e2e-asan" >&2; exit 2; }
export ZT_SANITIZER_DIR="$PWD/$BUILD/sanitizer"
rm -rf "$ZT_SANITIZER_DIR"
mkdir -p "$ZT_SANITIZER_DIR"
export ASAN_OPTIONS="detect_leaks=1:log_path=$ZT_SANITIZER_DIR/asan:abort_on_error=0:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$ZT_SANITIZER_DIR/ubsan"
export LSAN_OPTIONS="log_path=$ZT_SANITIZER_DIR/lsan"
export RUN_TIMEOUT_SCALE=3
export LOG_DIR="$BUILD/test-logs"
start=$SECONDS
rc=0
scripts/e2e/run.sh "$@" || rc=$?
echo "e2e-asan wall time: $((SECONDS - start)) s"
exit "$rc"
