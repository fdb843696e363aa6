#!/usr/bin/env bash
# soak.sh [DURATION]: `make soak` (not in CI), load L7 of the test plan for DURATION (`1h` by
# default; `10m`, `90s` or plain seconds too) against the ASan + UBSan ztunnel of build-asan/, in
# the two-node netns mesh of scripts/e2e/lib/mesh.sh with certificates in file mode:
#
#   - 2,000 idle tunnels from the client pod through both ztunnels (HBONE) to an echo server in
#     the server pod, each echoing one byte again every minute and at the end (none may be lost);
#   - 50 new connections a second beside them, each echoing 1 B to 16 KiB checked byte for byte
#     (tests/peers/soak_peer.py, both ends);
#   - a config rewrite every 10 s (a workload added and removed, a policy on client2 toggled, so
#     each reload re-evaluates every open connection), each waited for until both nodes apply it;
#   - a certificate rotation every 5 min (new leaves for client, client2 and server, written as an
#     agent does; the new serial must show in /config_dump);
#   - every 10 s, each ztunnel's RSS, open fds, threads and CPU are sampled.
#
# At the end both ztunnels are stopped with SIGTERM (LeakSanitizer checks at exit) and
# scripts/soak_report.py writes SOAK_OUT (docs/bench/soak.md by default) and a plot beside it
# (same name, .png): a table, the least-squares slopes of RSS and fds after warm-up (the first
# 20 % of the run, at least one minute), mismatches, lost tunnels and sanitizer reports. Exits 0
# only when nothing was lost, every reload and rotation applied and no sanitizer report was
# written. Needs root (exits 77 otherwise).
#
# The whole script is one function, read completely before it starts, so editing this file
# while an hour-long soak runs does not change the running one.
main() {
    set -euo pipefail
    cd "$(dirname "$0")/.."
    local repo=$PWD
    local duration_text=${1:-1h}
    local duration
    case $duration_text in
        *h) duration=$((${duration_text%h} * 3600)) ;;
        *m) duration=$((${duration_text%m} * 60)) ;;
        *s) duration=${duration_text%s} ;;
        *) duration=$duration_text ;;
    esac
    [ "$duration" -ge 60 ] 2>/dev/null || { echo "soak: DURATION $duration_text: want at least 60 s" >&2; exit 2; }
    local out=${SOAK_OUT:-$repo/docs/bench/soak.md}
    case $out in /*) ;; *) out=$repo/$out ;; esac
    local idle=${SOAK_IDLE:-2000} rate=${SOAK_RATE:-50}

    # SOAK_BUILD and SOAK_ROTATE_TICKS (rotate every N 10-s ticks) exist to try the script quickly.
    export BUILD=${SOAK_BUILD:-build-asan}
    local rotate_ticks=${SOAK_ROTATE_TICKS:-30}
    [ -x "$BUILD/ztunnel" ] || { echo "soak: missing $BUILD/ztunnel (make soak builds it)" >&2; exit 2; }
    if [ "$(id -u)" != 0 ]; then
        echo "soak: needs root (network namespaces); skipped"
        exit 77
    fi

    # Sanitizer reports go to files of their own, so they are counted rather than lost in logs.
    local sanitizer_dir
    sanitizer_dir=$(mktemp -d /tmp/zt-soak-sanitizer.XXXXXX)
    # A 16 MiB quarantine (ASan keeps freed memory aside, 256 MiB by default) so RSS shows the
    # proxy's memory within minutes instead of the quarantine filling for most of the hour.
    export ASAN_OPTIONS="detect_leaks=1:quarantine_size_mb=16:log_path=$sanitizer_dir/asan:abort_on_error=0"
    export UBSAN_OPTIONS="print_stacktrace=1:log_path=$sanitizer_dir/ubsan"
    export LSAN_OPTIONS="log_path=$sanitizer_dir/lsan"

    MESH_CERT_MODE=files
    # Only warnings, and the config reader's "config applied" that mesh_reconfig waits for (an
    # access-log line per connection would be 180,000 lines an hour).
    MESH_LOG_LEVEL=warn,config=info
    . scripts/e2e/lib/mesh.sh
    mesh_up soak
    local work=$MESH_WORK
    echo "soak: $duration_text ($duration s), $idle idle tunnels, $rate new connections/s; work dir $work"

    zt_bg "$(zt_ns_pod 2 server)" "$work/echo_server.log" /usr/bin/python3 tests/peers/soak_peer.py \
        serve --listen 0.0.0.0:9000
    zt_wait_listen "$(zt_ns_pod 2 server)" 9000 10 || mesh_fail "echo_server not listening"

    # The config rewrite: revision R adds workload soak-R (and drops soak-(R-1)) and toggles a
    # Deny policy on client2, which the soak's traffic (from client) never matches.
    local revision=0
    soak_rewrite() {
        revision=$((revision + 1))
        MESH_EXTRA_WORKLOADS="{\"uid\": \"c1//v1/Pod/default/soak-$revision\", \"name\": \"soak-$revision\",
         \"namespace\": \"default\", \"serviceAccount\": \"soak\",
         \"workloadIps\": [\"198.18.3.$((revision % 200 + 10))\"], \"protocol\": \"HBONE\",
         \"node\": \"node3\", \"services\": {}},"
        local policies='[]'
        if [ $((revision % 2)) = 1 ]; then
            policies='[{"name": "soak-deny", "namespace": "default", "scope": "Namespace",
              "action": "Deny", "rules": [[[{"principals":
                [{"Exact": "cluster.local/ns/default/sa/client2"}]}]]]}]'
        fi
        mesh_reconfig "$policies"
    }
    local rotations=0 rotation_failures=0 reloads=0 reload_failures=0
    soak_rotate() {
        local sa serial
        rotations=$((rotations + 1))
        for sa in client client2 server; do
            serial=$(mesh_issue_cert "$sa") || { rotation_failures=$((rotation_failures + 1)); continue; }
            local n=1
            [ "$sa" = server ] && n=2
            mesh_wait_cert_serial "$n" "$sa" "$serial" ||
                { echo "soak: node$n did not load $sa's serial $serial" >&2; rotation_failures=$((rotation_failures + 1)); }
        done
    }
    # sample T: one line per ztunnel: t node rss_kib fds threads cpu_ticks.
    local samples=$work/samples.tsv
    soak_sample() { # T [FILE]
        local n pid file=${2:-$samples}
        for n in 1 2; do
            eval "pid=\$MESH_ZT${n}_PID"
            [ -d "/proc/$pid" ] || { echo "soak: node$n's ztunnel is gone" >&2; continue; }
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$n" \
                "$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")" \
                "$(ls "/proc/$pid/fd" | wc -l)" \
                "$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")" \
                "$(awk '{print $14 + $15}' "/proc/$pid/stat")" >>"$file"
        done
    }

    printf 't\tnode\trss_kib\tfds\tthreads\tcpu_ticks\n' >"$samples"
    local start=$SECONDS
    soak_sample 0
    zt_in "$(zt_ns_pod 1 client)" /usr/bin/python3 tests/peers/soak_peer.py \
        --connect 198.18.2.2:9000 --idle "$idle" --rate "$rate" --seconds "$duration" \
        --stats "$work/peer-stats.jsonl" --seed "$RANDOM" >"$work/peer.out" 2>&1 &
    local peer=$!
    zt_wait_line "$work/peer.out" 'idle_ready' 600 || mesh_fail "idle tunnels not up: $(cat "$work/peer.out")"
    echo "soak: $(head -1 "$work/peer.out") after $((SECONDS - start)) s"

    local tick=0 next=$((start + 10))
    while kill -0 "$peer" 2>/dev/null; do
        while [ "$SECONDS" -lt "$next" ] && kill -0 "$peer" 2>/dev/null; do
            sleep 0.5
        done
        kill -0 "$peer" 2>/dev/null || break
        tick=$((tick + 1))
        next=$((next + 10))
        soak_sample "$((SECONDS - start))"
        reloads=$((reloads + 1))
        soak_rewrite || reload_failures=$((reload_failures + 1))
        if [ $((tick % rotate_ticks)) = 0 ]; then
            soak_rotate
        fi
        if [ $((tick % 6)) = 0 ]; then
            echo "soak: $((SECONDS - start)) s: $(tail -1 "$work/peer-stats.jsonl" 2>/dev/null)"
        fi
    done
    local peer_rc=0
    wait "$peer" || peer_rc=$?
    # After the load (the idle tunnels closed too): what each ztunnel keeps, apart from the slopes.
    sleep 5
    printf 't\tnode\trss_kib\tfds\tthreads\tcpu_ticks\n' >"$work/after.tsv"
    soak_sample "$((SECONDS - start))" "$work/after.tsv"
    echo "soak: peer exit $peer_rc: $(tail -1 "$work/peer.out")"

    # Stop both ztunnels as a kubelet would, so LeakSanitizer checks each at exit.
    local n pid stop_failures=0
    for n in 1 2; do
        eval "pid=\$MESH_ZT${n}_PID"
        kill -TERM "$pid" 2>/dev/null || true
    done
    for n in 1 2; do
        eval "pid=\$MESH_ZT${n}_PID"
        local i
        for i in $(seq 300); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "soak: node$n's ztunnel did not exit within 30 s of SIGTERM" >&2
            stop_failures=$((stop_failures + 1))
        fi
        wait "$pid" 2>/dev/null || true
    done

    local report_rc=0
    /usr/bin/python3 scripts/soak_report.py --samples "$samples" --after "$work/after.tsv" --peer-stats "$work/peer-stats.jsonl" \
        --peer-summary "$work/peer.out" --sanitizer-dir "$sanitizer_dir" --out "$out" \
        --duration "$duration_text" --idle "$idle" --rate "$rate" --reloads "$reloads" \
        --reload-failures "$reload_failures" --rotations "$rotations" \
        --rotation-failures "$rotation_failures" --stop-failures "$stop_failures" \
        --peer-exit "$peer_rc" || report_rc=$?
    if [ -n "$(ls -A "$sanitizer_dir")" ]; then
        mkdir -p "$repo/build-asan/soak-sanitizer"
        cp "$sanitizer_dir"/* "$repo/build-asan/soak-sanitizer/"
        echo "soak: sanitizer reports copied to build-asan/soak-sanitizer/"
    fi
    rm -rf "$sanitizer_dir"
    echo "soak: wrote $out (wall time $((SECONDS - start)) s)"
    exit "$report_rc"
}
main "$@"
