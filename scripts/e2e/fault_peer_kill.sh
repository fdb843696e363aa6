#!/usr/bin/env bash
# fault_peer_kill.sh: F6 of docs/reliability.md §6b, the peer ztunnel SIGKILLed with its packets
# dropped (a node that vanished: no FIN, no RST ever reaches us). A tunnel from node 1's client
# to node 2's server is open and exchanging bytes when node 2's server pod starts dropping
# everything to and from 15008 and node 2's ztunnel is SIGKILLed. Node 1 must notice through its
# HTTP/2 PING alone (10 s interval, 20 s timeout, as ztunnel): the link closes within 30 s, the
# tunnel's application connection is reset and logged with the keepalive error, and the link
# leaves the pool. Once the peer is back (rules removed, ztunnel restarted), a new connection
# from the same pod succeeds byte-exact over a new link.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
# One worker, so one pool: each worker pools its own links, and with two the warm-up and the held
# tunnel may each open one (which worker accepts a connection is the kernel's choice).
MESH_ZT_ARGS="--workers 1"
mesh_up peerkill

links() { # established HBONE connections from node 1's client pod
    zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l
}

out=$(mesh_xfer 1 client 198.18.2.2:8080 65536) || mesh_fail "warm-up: $out"
zt_bg "$(zt_ns_pod 1 client)" "$MESH_WORK/hold.out" $PEER hold --connect 198.18.2.2:8080 \
    --seconds 60 --interval 0.2 --timeout 50
hold_pid=$ZT_BG_LAST
sleep 1
[ "$(links)" = 1 ] || mesh_fail "expected one pooled link, got $(links)"

server_ns=$(zt_ns_pod 2 server)
zt_in "$server_ns" iptables -I INPUT 1 -p tcp --dport 15008 -j DROP
zt_in "$server_ns" iptables -I OUTPUT 1 -p tcp --sport 15008 -j DROP
kill -9 "$MESH_ZT2_PID"
wait "$MESH_ZT2_PID" 2>/dev/null || true
killed=$SECONDS

# The held connection ends by the remote side (exit 0) once node 1's PING times out.
wait "$hold_pid" || mesh_fail "the held connection did not end: $(cat "$MESH_WORK/hold.out")"
took=$((SECONDS - killed))
[ "$took" -le 35 ] || mesh_fail "the dead link was noticed after ${took}s (PING: 10 s + 20 s)"
grep -qE 'reset|closed' "$MESH_WORK/hold.out" || mesh_fail "hold: $(cat "$MESH_WORK/hold.out")"
mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.2:15008.*error="HBONE keepalive or handshake timed out"' ||
    mesh_fail "node 1 did not log the PING timeout"
for i in $(seq 50); do [ "$(links)" = 0 ] && break; sleep 0.1; done
[ "$(links)" = 0 ] || mesh_fail "node 1 still holds $(links) link(s) to the dead peer"

# The peer comes back: the pool dials a new link.
zt_in "$server_ns" iptables -D INPUT -p tcp --dport 15008 -j DROP
zt_in "$server_ns" iptables -D OUTPUT -p tcp --sport 15008 -j DROP
mesh_zt_start 2
mesh_wait_ready 2 || mesh_fail "node 2 did not come back"
out=$(mesh_xfer 1 client 198.18.2.2:8080 1048576) || mesh_fail "after the peer returned: $out"
[ "$(links)" = 1 ] || mesh_fail "expected one new link, got $(links)"
echo "dead peer noticed after ${took}s by PING; the pool reconnected once it returned"
echo "fault_peer_kill: ok"
