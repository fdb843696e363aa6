#!/usr/bin/env bash
# ztunnel_shutdown.sh: graceful shutdown of the client-side ztunnel (ztunnel's
# test_ztunnel_shutdown, docs/contract.md §6). While a long-lived echo connection (tcp_peer hold) and a
# paced byte-exact transfer run from the captured client through both ztunnels, node 1's ztunnel
# gets SIGTERM: it stops accepting at once (a new connection from the captured pod fails during
# the drain), both open connections keep working until they end by themselves well inside the
# drain deadline, the ztunnel then exits with status 0 on "drain complete" (not the deadline),
# and afterwards new connections from the captured pod still fail (nothing bypasses the mesh).
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
drain_s=12
MESH_ZT_ARGS="--drain-timeout ${drain_s}s"
mesh_up zshut

served() { wc -l <"$MESH_WORK/peers-server.log"; }

# Long-lived connections: a hold exchanging a message every 100 ms for 4 s, and 3 MiB paced in
# 64 KiB steps every 60 ms (about 3 s), both ended by the client itself.
zt_in "$(zt_ns_pod 1 client)" timeout 30 $PEER hold --connect 198.18.2.2:8080 --seconds 4 \
    --interval 0.1 --ready-file "$MESH_WORK/hold.ready" >"$MESH_WORK/hold.out" 2>&1 &
hold_pid=$!
timeout 10 bash -c "until [ -e '$MESH_WORK/hold.ready' ]; do sleep 0.05; done" || mesh_fail "hold did not connect"
zt_in "$(zt_ns_pod 1 client)" timeout 30 $PEER client --connect 198.18.2.2:8080 \
    --bytes 3145728 --pace-ms 60 --seed 7 >"$MESH_WORK/paced.out" 2>&1 &
paced_pid=$!
zt_wait_line "$MESH_WORK/peers-server.log" '.' 5 || mesh_fail "no connection reached the server"
timeout 5 bash -c "until [ \$(wc -l <'$MESH_WORK/peers-server.log') -ge 2 ]; do sleep 0.05; done" ||
    mesh_fail "both long-lived connections did not reach the server"
sleep 0.5

kill -TERM "$MESH_ZT1_PID"
term_at=$SECONDS
mesh_wait_log 1 'shutting down' 5 || mesh_fail "no shutdown log line"
sleep 0.3

# Draining: no new connection is accepted from the captured pod (its redirect rules lead to a
# closed listener), and none reaches the server.
before=$(served)
if out=$(zt_in "$(zt_ns_pod 1 client)" timeout 10 $PEER client --connect 198.18.2.2:8080 --bytes 1024 --timeout 3); then
    mesh_fail "a new connection went through a draining ztunnel: $out"
fi
echo "new connection while draining: $out"
[ "$(served)" = "$before" ] || mesh_fail "the server saw a connection made during the drain"

# The open connections keep working and end by themselves.
hold_rc=0
wait "$hold_pid" || hold_rc=$?
paced_rc=0
wait "$paced_pid" || paced_rc=$?
echo "hold: $(cat "$MESH_WORK/hold.out")"
echo "paced: $(cat "$MESH_WORK/paced.out")"
# hold exits 3 when the connection was still open at its own deadline (nobody else closed it).
[ "$hold_rc" = 3 ] || mesh_fail "the held connection was ended by someone else (rc $hold_rc)"
grep -q '"ended": "still-open"' "$MESH_WORK/hold.out" || mesh_fail "hold"
exchanges=$(sed -nE 's/.*"exchanges": ([0-9]+).*/\1/p' "$MESH_WORK/hold.out")
# About 10 exchanges happened before SIGTERM, about 38 in all.
[ "$exchanges" -ge 25 ] || mesh_fail "the held connection stopped exchanging during the drain ($exchanges)"
[ "$paced_rc" = 0 ] || mesh_fail "the paced transfer was not byte-exact through the drain"

# With nothing open, the drain completes early and the process exits 0.
zt_rc=0
timeout $((drain_s + 5)) tail --pid="$MESH_ZT1_PID" -f /dev/null || mesh_fail "ztunnel did not exit"
wait "$MESH_ZT1_PID" || zt_rc=$?
took=$((SECONDS - term_at))
echo "ztunnel exited with $zt_rc, ${took}s after SIGTERM"
[ "$zt_rc" = 0 ] || mesh_fail "exit status $zt_rc after SIGTERM"
[ "$took" -lt "$drain_s" ] || mesh_fail "the drain waited for its deadline (${took}s)"
grep -q 'drain complete' "$MESH_WORK/zt1.log" || mesh_fail "no 'drain complete'"
if grep -q 'drain deadline' "$MESH_WORK/zt1.log"; then
    mesh_fail "connections were force-closed at the deadline"
fi
# Both connections completed normally on the server's side too.
mesh_wait_log 2 'connection complete.*direction="inbound".*bytes_sent=3145728 bytes_recv=3145728' ||
    mesh_fail "node2 did not log the paced transfer complete"

# After the shutdown, the captured pod's new connections still fail and reach nobody.
before=$(served)
if out=$(zt_in "$(zt_ns_pod 1 client)" timeout 10 $PEER client --connect 198.18.2.2:8080 --bytes 1024 --timeout 3); then
    mesh_fail "a new connection went through after shutdown: $out"
fi
echo "new connection after shutdown: $out"
[ "$(served)" = "$before" ] || mesh_fail "the server saw a connection after shutdown"
echo "ztunnel shutdown: ok"
