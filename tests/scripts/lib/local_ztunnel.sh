# local_ztunnel.sh: a real `ztunnel run` for script tests that need no network namespace: no
# pods (so no root), a local CA, the operator servers on free loopback ports. Source it after
# setting BIN (the ztunnel binary) and WORK (a scratch directory the caller removes).
#   lz_free_port                  prints a TCP port free on 127.0.0.1 right now
#   lz_config [POLICIES_JSON]     (re)writes $WORK/config.json atomically: no pods, the policies
#   lz_start [ARGS...]            starts ztunnel (log $WORK/zt.log, pid LZ_PID, ports LZ_ADMIN,
#                                 LZ_METRICS, LZ_READY) and waits until /healthz/ready is 200
#   lz_stop                       SIGKILL if still running (for a trap)
#   lz_applied                    how many "config applied" lines the log has

lz_free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

lz_config() {
    cat >"$WORK/config.json.tmp" <<JSON
{"workloads": [], "services": [], "policies": ${1:-[]}, "pods": []}
JSON
    mv "$WORK/config.json.tmp" "$WORK/config.json"
}

lz_start() {
    [ -d "$WORK/ca" ] || "$BIN" ca init "$WORK/ca" >/dev/null
    [ -f "$WORK/config.json" ] || lz_config
    LZ_ADMIN=$(lz_free_port)
    LZ_METRICS=$(lz_free_port)
    LZ_READY=$(lz_free_port)
    "$BIN" run --config "$WORK/config.json" --ca-dir "$WORK/ca" --node local --workers 1 \
        --admin-addr "127.0.0.1:$LZ_ADMIN" --metrics-addr "127.0.0.1:$LZ_METRICS" \
        --readiness-addr "127.0.0.1:$LZ_READY" "$@" >>"$WORK/zt.log" 2>&1 </dev/null &
    LZ_PID=$!
    local i
    for i in $(seq 100); do
        if curl --noproxy '*' -sf -o /dev/null --max-time 1 "http://127.0.0.1:$LZ_READY/healthz/ready"; then
            return 0
        fi
        kill -0 "$LZ_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "ztunnel did not become ready:" >&2
    tail -n 20 "$WORK/zt.log" >&2
    return 1
}

lz_stop() {
    if [ -n "${LZ_PID:-}" ] && kill -0 "$LZ_PID" 2>/dev/null; then
        kill -9 "$LZ_PID" 2>/dev/null || true
        wait "$LZ_PID" 2>/dev/null || true
    fi
}

lz_applied() {
    grep -c 'config applied' "$WORK/zt.log" || true
}
