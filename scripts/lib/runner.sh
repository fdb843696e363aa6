# runner.sh: shared by scripts/run-tests.sh and scripts/e2e/run.sh. Runs script tests one at a
# time with a per-test timeout (liburing's runtests.sh idea) and keeps the counts. Exit code 0 is
# a pass, 77 a skip (not root, feature missing), anything else a failure. A script may raise its
# own timeout with a line `# timeout: SECONDS` near the top (scaled by $RUN_TIMEOUT_SCALE, for
# sanitizer builds). Output goes to $LOG_DIR/NAME.log and is shown only when the test fails. With
# $ZT_SANITIZER_DIR set (scripts/e2e-asan.sh), a sanitizer report written there while a test ran
# fails the test and is shown.

: "${LOG_DIR:=${BUILD:-build}/test-logs}"
mkdir -p "$LOG_DIR"
RUN_PASSED=${RUN_PASSED:-0}
RUN_FAILED=${RUN_FAILED:-0}
RUN_SKIPPED=${RUN_SKIPPED:-0}
RUN_FAILED_NAMES=${RUN_FAILED_NAMES:-}

# run_script PATH [ARGS...]: runs one script test and counts its outcome.
run_script() {
    local script=$1
    shift
    local name
    name=$(basename "$script" .sh)
    local limit
    limit=$(sed -n 's/^# timeout: *\([0-9]\+\).*/\1/p' "$script" | head -n 1)
    limit=$(( ${limit:-300} * ${RUN_TIMEOUT_SCALE:-1} ))
    local log="$LOG_DIR/$name.log"
    local start=$SECONDS
    local rc=0
    local reports_before=0
    if [ -n "${ZT_SANITIZER_DIR:-}" ]; then
        reports_before=$(ls "$ZT_SANITIZER_DIR" | wc -l)
    fi
    timeout --kill-after=10 "$limit" bash "$script" "$@" >"$log" 2>&1 </dev/null || rc=$?
    local took=$((SECONDS - start))
    if [ -n "${ZT_SANITIZER_DIR:-}" ] && [ "$(ls "$ZT_SANITIZER_DIR" | wc -l)" -gt "$reports_before" ]; then
        local report
        for report in $(ls -t "$ZT_SANITIZER_DIR" | head -n $(( $(ls "$ZT_SANITIZER_DIR" | wc -l) - reports_before ))); do
            mv "$ZT_SANITIZER_DIR/$report" "$ZT_SANITIZER_DIR/$name.$report"
            { echo "--- sanitizer report $name.$report"; cat "$ZT_SANITIZER_DIR/$name.$report"; } >>"$log"
        done
        [ "$rc" = 0 ] && rc=99
    fi
    case $rc in
        0)
            RUN_PASSED=$((RUN_PASSED + 1))
            printf '  PASS  %-40s %4ss\n' "$name" "$took"
            ;;
        77)
            RUN_SKIPPED=$((RUN_SKIPPED + 1))
            printf '  SKIP  %-40s %s\n' "$name" "$(tail -n 1 "$log")"
            ;;
        99)
            RUN_FAILED=$((RUN_FAILED + 1))
            RUN_FAILED_NAMES="$RUN_FAILED_NAMES $name"
            printf '  FAIL  %-40s sanitizer report after %ss\n' "$name" "$took"
            grep -A25 -- '--- sanitizer report' "$log" | head -n 60 | sed 's/^/        /'
            ;;
        124|137)
            RUN_FAILED=$((RUN_FAILED + 1))
            RUN_FAILED_NAMES="$RUN_FAILED_NAMES $name"
            printf '  FAIL  %-40s timed out after %ss\n' "$name" "$limit"
            tail -n 40 "$log" | sed 's/^/        /'
            ;;
        *)
            RUN_FAILED=$((RUN_FAILED + 1))
            RUN_FAILED_NAMES="$RUN_FAILED_NAMES $name"
            printf '  FAIL  %-40s exit %s after %ss\n' "$name" "$rc" "$took"
            # The scenario's own verdict first: the logs it prints after it may push it out of
            # the tail (CI shows only part of the output).
            grep -E '^ *FAIL' "$log" | head -n 10 | sed 's/^/        /'
            echo "        --- the last 40 lines of $log"
            tail -n 40 "$log" | sed 's/^/        /'
            ;;
    esac
}

# run_summary prints the plain closing line CI reads and returns non-zero on any failure.
run_summary() {
    if [ -n "$RUN_FAILED_NAMES" ]; then
        echo "failed:$RUN_FAILED_NAMES"
    fi
    if [ "$RUN_SKIPPED" -gt 0 ]; then
        echo "$RUN_PASSED passed, $RUN_FAILED failed, $RUN_SKIPPED skipped"
    else
        echo "$RUN_PASSED passed, $RUN_FAILED failed"
    fi
    [ "$RUN_FAILED" -eq 0 ]
}
