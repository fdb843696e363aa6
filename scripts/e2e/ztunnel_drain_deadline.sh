#!/usr/bin/env bash
# ztunnel_drain_deadline.sh: the other half of a graceful shutdown (docs/contract.md §6): a connection
# that outlives the drain deadline. Node 1's ztunnel runs with --drain-timeout 2s and is asked to
# stop through `POST /quitquitquit` while the captured client holds a connection to the server
# on node 2: the connection keeps exchanging until the deadline, is then closed by ztunnel (the
# client sees it end, node 2 logs it complete), and the process exits 0 right after.
# timeout: 60
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_ZT_ARGS="--drain-timeout 2s"
mesh_up zdead

zt_in "$(zt_ns_pod 1 client)" timeout 30 $PEER hold --connect 198.18.2.2:8080 --seconds 20 \
    --interval 0.1 --ready-file "$MESH_WORK/hold.ready" >"$MESH_WORK/hold.out" 2>&1 &
hold_pid=$!
timeout 10 bash -c "until [ -e '$MESH_WORK/hold.ready' ]; do sleep 0.05; done" || mesh_fail "hold did not connect"
sleep 0.5

asked=$(date +%s%N)
zt_in "$(zt_ns_node 1)" curl -sf -X POST http://127.0.0.1:15000/quitquitquit >/dev/null ||
    mesh_fail "/quitquitquit refused"
# Poll the client every 50 ms (tail --pid only looks once a second) to time the close.
for i in $(seq 200); do
    kill -0 "$hold_pid" 2>/dev/null || break
    sleep 0.05
done
ended_ms=$((($(date +%s%N) - asked) / 1000000))
kill -0 "$hold_pid" 2>/dev/null && mesh_fail "the connection outlived the drain deadline"
hold_rc=0
wait "$hold_pid" || hold_rc=$?
echo "hold: $(cat "$MESH_WORK/hold.out") ${ended_ms} ms after /quitquitquit"
[ "$hold_rc" = 0 ] || mesh_fail "the held connection did not end by ztunnel closing it (rc $hold_rc)"
# Kept open for the drain (2 s), closed soon after it.
[ "$ended_ms" -ge 1800 ] || mesh_fail "closed before the deadline (${ended_ms} ms)"
[ "$ended_ms" -le 4500 ] || mesh_fail "closed long after the deadline (${ended_ms} ms)"
exchanges=$(sed -nE 's/.*"exchanges": ([0-9]+).*/\1/p' "$MESH_WORK/hold.out")
[ "$exchanges" -ge 15 ] || mesh_fail "the connection stopped exchanging during the drain ($exchanges)"

zt_rc=0
timeout 5 tail --pid="$MESH_ZT1_PID" -f /dev/null || mesh_fail "ztunnel did not exit after its deadline"
wait "$MESH_ZT1_PID" || zt_rc=$?
[ "$zt_rc" = 0 ] || mesh_fail "exit status $zt_rc after the drain deadline"
grep -q 'drain deadline' "$MESH_WORK/zt1.log" || mesh_fail "node1 did not log the deadline"
mesh_wait_log 2 'connection complete.*src.addr=198.18.1.2.*direction="inbound"' 5 ||
    mesh_fail "node2 did not see the connection end"
echo "drain deadline: ok"
