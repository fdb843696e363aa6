#!/usr/bin/env bash
# proxy_pool_streams.sh: POOL_MAX_STREAMS_PER_CONNECTION (ztunnel's pool size knob). With 1 on
# node 1, each new connection from the client pod opens its own HBONE connection (a full mTLS
# handshake) and that connection closes after its one stream; after a restart with the default
# (100), the same connections share one pooled HBONE connection that stays open. HBONE
# connections are counted as the client pod's TCP sockets to :15008 (any state: the ones node 1
# closed wait in TIME_WAIT there; one worker per ztunnel, as each worker has its own pool). The
# repeated handshakes are served by the peer-chain verification cache (metrics). A bad value
# stops the start with a message naming it.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_ZT1_ENV="POOL_MAX_STREAMS_PER_CONNECTION=1"
MESH_ZT_ARGS="--workers 1"
mesh_up pool

client_ns=$(zt_ns_pod 1 client)
# hbone_sockets [STATE]: the client pod's sockets to port 15008 (all states by default).
hbone_sockets() {
    zt_in "$client_ns" ss -Htan state "${1:-all}" 'dport = :15008' | grep -c . || true
}

for i in 1 2 3 4 5; do
    out=$(mesh_xfer 1 client 198.18.2.2:8080 1000) || mesh_fail "transfer $i: $out"
done
mesh_expect_counted 5
[ "$(hbone_sockets)" = 5 ] || mesh_fail "max 1: want 5 HBONE connections, got: $(zt_in "$client_ns" ss -tan 'dport = :15008')"
# Each closed after its stream (ztunnel closes a connection that left the pool once unused).
for i in $(seq 50); do
    [ "$(hbone_sockets established)" = 0 ] && break
    sleep 0.1
done
[ "$(hbone_sockets established)" = 0 ] || mesh_fail "max 1: HBONE connections left open: $(zt_in "$client_ns" ss -tan 'dport = :15008')"
echo "POOL_MAX_STREAMS_PER_CONNECTION=1: 5 connections, 5 HBONE connections, all closed"
# Five handshakes with the same peer: its chain was path-validated once, then came from the
# verification cache, on both sides.
for n in 1 2; do
    hits=$(mesh_metrics $n | awk '/^ztunnel_certificate_verify_cache_hits_total /{print $2}')
    [ "${hits:-0}" -ge 4 ] || mesh_fail "node$n verification cache hits: ${hits:-none}"
done

MESH_ZT1_ENV=
mesh_zt_restart 1 || mesh_fail "restart node1"
before=$(hbone_sockets)
for i in 1 2 3 4 5; do
    out=$(mesh_xfer 1 client 198.18.2.2:8080 1000) || mesh_fail "pooled transfer $i: $out"
done
[ "$(hbone_sockets)" = $((before + 1)) ] || mesh_fail "default: want 1 more HBONE connection than $before, got: $(zt_in "$client_ns" ss -tan 'dport = :15008')"
[ "$(hbone_sockets established)" = 1 ] || mesh_fail "default: the pooled connection should stay open"
echo "default pool: 5 connections over 1 HBONE connection, kept open"

if out=$(POOL_MAX_STREAMS_PER_CONNECTION=0 timeout 10 "$ZT_BIN" run --config "$MESH_WORK/node1.json" \
    --ca-dir "$MESH_WORK/ca" 2>&1); then
    mesh_fail "POOL_MAX_STREAMS_PER_CONNECTION=0 was accepted"
fi
echo "$out" | grep >/dev/null 'POOL_MAX_STREAMS_PER_CONNECTION: invalid value "0"' || mesh_fail "bad value message: $out"
echo "pool streams: ok"
