#!/usr/bin/env bash
# run-tests.sh is what `make test` runs: the doctest unit tests (each test case counts), a replay
# of every fuzz target's corpus, the script tests in tests/scripts/, and, as root, the
# network-namespace scenarios in scripts/e2e/. It ends with the plain line
# `N passed, N failed[, N skipped]` and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
. scripts/lib/runner.sh

echo "unit tests ($BUILD/zt_tests)"
unit_log="$LOG_DIR/unit.log"
"$BUILD/zt_tests" --no-intro=true --duration=false >"$unit_log" 2>&1
unit_rc=$?
summary=$(grep -E '^\[doctest\] test cases:' "$unit_log" | tail -n 1)
if [ -z "$summary" ]; then
    echo "  FAIL  unit tests crashed (exit $unit_rc)"
    tail -n 60 "$unit_log" | sed 's/^/        /'
    RUN_FAILED=$((RUN_FAILED + 1))
    RUN_FAILED_NAMES="$RUN_FAILED_NAMES zt_tests"
else
    # [doctest] test cases: 12 | 11 passed | 1 failed | 0 skipped
    p=$(echo "$summary" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
    f=$(echo "$summary" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
    s=$(echo "$summary" | sed -E 's/.*\| *([0-9]+) skipped.*/\1/')
    RUN_PASSED=$((RUN_PASSED + p))
    RUN_FAILED=$((RUN_FAILED + f))
    RUN_SKIPPED=$((RUN_SKIPPED + s))
    echo "  $summary"
    if [ "$f" -ne 0 ] || [ "$unit_rc" -ne 0 ]; then
        grep -B2 -A12 'ERROR\|FATAL' "$unit_log" | head -n 120 | sed 's/^/        /'
        RUN_FAILED_NAMES="$RUN_FAILED_NAMES zt_tests"
        if [ "$f" -eq 0 ]; then
            RUN_FAILED=$((RUN_FAILED + 1))
        fi
    fi
fi

# The in-process proxy cases (two workers speaking HBONE on loopback) ran with the unit tests
# above; name them, since they stand for the proxy when the netns scenarios cannot run.
echo "  in-process proxy cases (tests/proxy_inprocess_test.cc), among the unit tests:"
"$BUILD/zt_tests" --list-test-cases --no-intro=true -tc='proxy_inprocess*' 2>/dev/null |
    grep '^proxy_inprocess' | sed 's/^/    /'

echo "fuzz corpus replays"
for replay in "$BUILD"/replay/*; do
    [ -x "$replay" ] || continue
    name=$(basename "$replay")
    corpus="tests/corpus/$name"
    log="$LOG_DIR/replay-$name.log"
    if [ ! -d "$corpus" ]; then
        echo "  FAIL  replay-$name: no corpus at $corpus"
        RUN_FAILED=$((RUN_FAILED + 1))
        RUN_FAILED_NAMES="$RUN_FAILED_NAMES replay-$name"
        continue
    fi
    if timeout 300 "$replay" "$corpus" >"$log" 2>&1; then
        RUN_PASSED=$((RUN_PASSED + 1))
        printf '  PASS  %-40s %s\n' "replay-$name" "$(tail -n 1 "$log")"
    else
        RUN_FAILED=$((RUN_FAILED + 1))
        RUN_FAILED_NAMES="$RUN_FAILED_NAMES replay-$name"
        printf '  FAIL  %-40s\n' "replay-$name"
        tail -n 30 "$log" | sed 's/^/        /'
    fi
done

echo "script tests (tests/scripts)"
for script in tests/scripts/*.sh; do
    [ -f "$script" ] || continue
    run_script "$script"
done

echo "network-namespace scenarios (scripts/e2e)"
for script in scripts/e2e/*.sh; do
    [ -f "$script" ] || continue
    [ "$(basename "$script")" = run.sh ] && continue
    run_script "$script"
done

run_summary
