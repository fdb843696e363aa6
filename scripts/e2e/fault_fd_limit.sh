#!/usr/bin/env bash
# fault_fd_limit.sh: docs/reliability.md F14 and issue 14's "one authenticated peer takes every file
# descriptor". Node 2's ztunnel runs with ZTUNNEL_MAX_PEER_STREAMS=40 and is then lowered to
# `prlimit --nofile=256` while running (its workers re-read the limit each second), so 64
# descriptors (--fd-reserve) stay for listeners and the operator servers.
#   1. One peer identity (pod client) opens 200 connections to the server and holds them: at most
#      40 per node-2 worker are served, the rest refused (503) and counted as
#      `peer_streams_limit`; meanwhile another identity (client2) still gets through, readiness
#      answers 200 and /metrics is served.
#   2. An uncaptured pod opens 400 plaintext connections to the server (no identity to cap):
#      the data path reaches the reserve, the excess is closed at once and counted as
#      `fd_reserve`, no accept spins (node 2 uses well under a core), readiness and /metrics
#      keep answering, and client's held connections still echo.
#   3. Everything closed: node 2's fds other than pipes (the relay's reuse pool) are back to their
#      baseline (2 more allowed: a pooled link of node 1's other worker) and new connections
#      succeed.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_ZT2_ENV="ZTUNNEL_MAX_PEER_STREAMS=40"
mesh_up fdlim
HOLD="/usr/bin/python3 $here_mesh/tests/peers/conn_hold.py"

refused() { # refused N REASON: node N's refusals with that reason
    mesh_metrics "$1" | awk -v r="reason=\"$2\"" '/^ztunnel_connections_refused_total\{/ && index($0, r) {s+=$NF} END {print s+0}'
}
ready2() { zt_in "$(zt_ns_node 2)" curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:15021/healthz/ready" || true; }
# fds2_kept: node 2's descriptors other than pipes (the plaintext relay keeps up to 64 empty pipes
# per worker for reuse, by design).
fds2_kept() { ls -l "/proc/$MESH_ZT2_PID/fd" | grep -vc 'pipe:'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$MESH_ZT2_PID/stat"; }
wait_open() { # wait_open FILE: until conn_hold printed its "open" line (60 s at most)
    local i
    for i in $(seq 600); do
        grep -q '"phase": "open"' "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    mesh_fail "conn_hold did not finish opening: $(cat "$1")"
}

# Warm: one transfer each, so the pool links exist in the baseline.
mesh_xfer 1 client 198.18.2.2:8080 1024 >/dev/null || mesh_fail "warm-up client"
mesh_xfer 1 client2 198.18.2.2:8080 1024 >/dev/null || mesh_fail "warm-up client2"
sleep 1
fds2=$(fds2_kept)
prlimit --pid "$MESH_ZT2_PID" --nofile=256:256 || mesh_fail "prlimit"
sleep 2 # a tick re-reads the limit
echo "node2: $fds2 fds, limit 256"

# 1. One identity cannot take more than its share.
zt_in "$(zt_ns_pod 1 client)" $HOLD --connect 198.18.2.2:8080 --count 200 --hold 25 \
    >"$MESH_WORK/hold-client.out" 2>&1 &
hold_client=$!
wait_open "$MESH_WORK/hold-client.out"
echoed=$(sed -n 's/.*"phase": "open", "echoed": \([0-9]*\).*/\1/p' "$MESH_WORK/hold-client.out")
echo "client: $echoed of 200 served"
[ "$echoed" -ge 40 ] && [ "$echoed" -le 80 ] || mesh_fail "client got $echoed connections, want 40..80"
limited=$(refused 2 peer_streams_limit)
[ "$limited" -ge $((200 - echoed)) ] || mesh_fail "peer_streams_limit counted $limited, want >= $((200 - echoed))"
mesh_xfer 1 client2 198.18.2.2:8080 65536 >/dev/null || mesh_fail "client2 starved by client"
[ "$(ready2)" = 200 ] || mesh_fail "readiness failed while one peer is at its cap"

# 2. Plaintext connections (no identity) up to the descriptor limit.
cpu_before=$(cpu_ticks)
zt_in "$(zt_ns_pod 1 plain)" $HOLD --connect 198.18.2.2:8080 --count 400 --hold 6 --wait 2 \
    >"$MESH_WORK/hold-plain.out" 2>&1 &
hold_plain=$!
wait_open "$MESH_WORK/hold-plain.out"
cpu_after=$(cpu_ticks)
plain=$(sed -n 's/.*"phase": "open", "echoed": \([0-9]*\).*/\1/p' "$MESH_WORK/hold-plain.out")
reserve=$(refused 2 fd_reserve)
echo "plain: $plain of 400 served, fd_reserve refusals $reserve, node2 fds $(mesh_fds 2)"
[ "$plain" -lt 400 ] || mesh_fail "400 plaintext connections fit under a limit of 256"
[ "$reserve" -ge 1 ] || mesh_fail "no refusal counted at the fd reserve"
[ "$(ready2)" = 200 ] || mesh_fail "readiness failed at the fd limit"
mesh_metrics 2 | grep >/dev/null '^process_open_fds' || mesh_fail "/metrics failed at the fd limit"
# No spin: node 2 used less than half a core while the excess was refused.
hz=$(getconf CLK_TCK)
echo "node2 cpu while refusing: $((cpu_after - cpu_before)) ticks of $hz/s"
sleep 2
cpu_idle=$(($(cpu_ticks) - cpu_after))
echo "node2 cpu over 2 s at the limit: $cpu_idle ticks"
[ "$cpu_idle" -lt "$hz" ] || mesh_fail "node2 spins at the fd limit: $cpu_idle ticks in 2 s"

# 3. The held flows survived; then everything closes and the node is back to its baseline.
wait "$hold_client" "$hold_plain" || true
grep -q '"phase": "end", "still_open": '"$echoed" "$MESH_WORK/hold-client.out" ||
    mesh_fail "client's held connections did not survive: $(tail -1 "$MESH_WORK/hold-client.out")"
for i in $(seq 100); do
    [ "$(fds2_kept)" -le $((fds2 + 2)) ] && break
    sleep 0.1
done
echo "node2 fds besides pipes: $fds2 -> $(fds2_kept)"
if [ "$(fds2_kept)" -gt $((fds2 + 2)) ]; then
    ls -l "/proc/$MESH_ZT2_PID/fd" | awk '{print $NF}' | sed 's/[0-9]*\]$/]/' | sort | uniq -c
    zt_in "$(zt_ns_pod 2 server)" ss -Htan | awk '{print $1, $4, $5}' | sort | uniq -c | sort -rn | head
fi
[ "$(fds2_kept)" -le $((fds2 + 2)) ] || mesh_fail "node2 fds not back to baseline: $fds2 -> $(fds2_kept)"
mesh_xfer 1 client 198.18.2.2:8080 65536 >/dev/null || mesh_fail "client after the limit"
mesh_xfer 1 plain 198.18.2.2:8080 65536 >/dev/null || mesh_fail "plain after the limit"
echo "fault_fd_limit: ok"
