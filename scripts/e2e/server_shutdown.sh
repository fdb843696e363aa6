#!/usr/bin/env bash
# server_shutdown.sh: the server pod leaves its node (ztunnel's test_server_shutdown, where ZDS
# deletes the pod; here node 2's config file drops it, docs/contract.md §2). While the captured client on
# node 1 holds a connection to the captured server on node 2 over HBONE, node 2's `pods` loses
# the server: the open connection fails within 2 s, node 2 logs why, and then new connections
# from the client are still accepted by node 1's ztunnel (the client is captured) but carry no
# data: the server application never sees them, and node 1 logs the refused HBONE connect. When
# the pod is added back, traffic flows again.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up srvshut

served() { wc -l <"$MESH_WORK/peers-server.log"; }

out=$(mesh_xfer 1 client 198.18.2.2:8080 1048576) || mesh_fail "before removal: $out"

zt_in "$(zt_ns_pod 1 client)" timeout 30 $PEER hold --connect 198.18.2.2:8080 --seconds 20 \
    --interval 0.1 --ready-file "$MESH_WORK/hold.ready" >"$MESH_WORK/hold.out" 2>&1 &
hold_pid=$!
timeout 10 bash -c "until [ -e '$MESH_WORK/hold.ready' ]; do sleep 0.05; done" || mesh_fail "hold did not connect"
sleep 0.5

MESH_NODE2_PODS=" "
mesh_config '[]'
removed=$SECONDS
mesh_wait_log 2 'config applied.*pods=0' 5 || mesh_fail "node2 did not apply the removal"
hold_rc=0
timeout 5 tail --pid="$hold_pid" -f /dev/null || mesh_fail "the open connection survived the server pod's removal"
wait "$hold_pid" || hold_rc=$?
echo "hold: $(cat "$MESH_WORK/hold.out") after $((SECONDS - removed))s"
[ "$hold_rc" = 0 ] || mesh_fail "the held connection did not end by the remote side (rc $hold_rc)"
[ $((SECONDS - removed)) -le 2 ] || mesh_fail "the open connection took $((SECONDS - removed))s to fail"
grep -q 'connection closed: pod removed' "$MESH_WORK/zt2.log" || mesh_fail "node2 did not log the drain"

# New connections: node 1 still captures and accepts them, but nothing reaches the server.
before=$(served)
for i in 1 2 3; do
    if out=$(mesh_xfer 1 client 198.18.2.2:8080 65536); then
        mesh_fail "new connection $i reached the removed server: $out"
    fi
    echo "new connection $i: $out"
    echo "$out" | grep >/dev/null '"error": "connect"' && mesh_fail "node 1 did not accept connection $i"
    echo "$out" | grep >/dev/null '"received": 0,' || mesh_fail "data flowed on connection $i: $out"
done
[ "$(served)" = "$before" ] || mesh_fail "the removed server's application saw a new connection"
# Node 1 says why: the removed pod's 15008 no longer listens.
sleep 0.3
refused=$(grep -c 'direction="outbound".*error="Connection refused' "$MESH_WORK/zt1.log" || true)
[ "$refused" -ge 3 ] || mesh_fail "node1 logged $refused refused HBONE connects, want 3"

# The pod comes back: node 1's pooled connection to it is gone, so it dials afresh and data flows.
MESH_NODE2_PODS="{\"uid\": \"c1//v1/Pod/default/server\", \"netns\": \"$(zt_ns_path "$(zt_ns_pod 2 server)")\"}"
ups() { grep -c 'pod listeners up.*default/server' "$MESH_WORK/zt2.log" || true; }
ups_before=$(ups)
mesh_config '[]'
timeout 5 bash -c "until [ \$(grep -c 'pod listeners up.*default/server' '$MESH_WORK/zt2.log') -gt $ups_before ]; do sleep 0.05; done" ||
    mesh_fail "node2 did not bring the re-added pod's listeners up"
mesh_wait_ready 2 || mesh_fail "node2 not ready after re-adding the server"
out=$(mesh_xfer 1 client 198.18.2.2:8080 1048576) || mesh_fail "after re-adding the server: $out"
[ "$(served)" = $((before + 1)) ] || mesh_fail "the re-added server did not see the connection"
echo "server shutdown: ok"
