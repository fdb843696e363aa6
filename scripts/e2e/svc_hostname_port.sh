#!/usr/bin/env bash
# svc_hostname_port.sh: an HBONE CONNECT whose :authority is a service hostname (ztunnel's
# test_svc_hostname_port and test_svc_hostname_named_port). An independent HBONE client
# (tests/peers/hbone_peer.py, python3-h2 + OpenSSL, certificate from `ztunnel ca issue`) in an
# uncaptured pod connects straight to the server pod's 15008 with authority
# server.default.svc.cluster.local:80 while the config is rewritten under it:
#   service 80->8080, endpoint map 80->8080              200, byte-exact echo on 8080
#   service 80->8080, endpoint map empty                 200 (the service's target port)
#   service 80->0 (named), endpoint map 80->8080         200 (the endpoint's own map)
#   service 80->0 (named), endpoint map empty            503 (no port to resolve to)
#   a port the service does not have (:81)               503
# The application sees the client pod's address, and the server's ztunnel logs the hostname
# authority with the service and the identities.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up svchost

certs=$MESH_WORK/peer-certs
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyclient \
    --out "$certs" >/dev/null || mesh_fail "ca issue"
host=server.default.svc.cluster.local
# peer WANT_EXIT AUTHORITY BYTES: one CONNECT from the uncaptured pod; checks the exit code (0 = 200
# and a clean end, 3 = another status) and, on 0, that the echo is byte-exact.
peer() {
    local want=$1 authority=$2 bytes=$3 rc=0
    zt_in "$(zt_ns_pod 1 plain)" timeout 30 $HBONE_PEER client --connect 198.18.2.2:15008 \
        --authority "$authority" --ca "$MESH_WORK/ca/root-cert.pem" \
        --cert "$certs/cert-chain.pem" --key "$certs/key.pem" \
        --expect-id spiffe://cluster.local/ns/default/sa/server --random-bytes "$bytes" \
        --seed "$RANDOM" >"$MESH_WORK/peer.out" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || mesh_fail "$authority: exit $rc, want $want: $(cat "$MESH_WORK/peer.out")"
    if [ "$want" = 0 ]; then
        /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); n=int(sys.argv[2]); assert r["status"]==200 and r["sent"]==n and r["received"]==n and r["sha256_sent"]==r["sha256_received"], r' \
            "$MESH_WORK/peer.out" "$bytes" || mesh_fail "$authority: not a byte-exact echo: $(cat "$MESH_WORK/peer.out")"
    fi
    cat "$MESH_WORK/peer.out"
}
status_is() { grep -q "\"status\": $1" "$MESH_WORK/peer.out" || mesh_fail "status: $(cat "$MESH_WORK/peer.out")"; }
echoes() { if [ -f "$MESH_WORK/peers-server.log" ]; then wc -l <"$MESH_WORK/peers-server.log"; else echo 0; fi; }

echo "== service 80->8080, endpoint 80->8080"
peer 0 "$host:80" 1048576
[ "$(echoes)" = 1 ] || mesh_fail "the application did not see exactly one connection"
grep -Eq '"peer": "(::ffff:)?198.18.1.4"' "$MESH_WORK/peers-server.log" || mesh_fail "source address not kept"
peer 3 "$host:81" 1024
status_is 503

echo "== service 80->8080, no endpoint map"
MESH_SERVER_PORTS='{}'
mesh_reconfig || mesh_fail "reconfig"
peer 0 "$host:80" 65536

echo "== named port: service 80->0, endpoint 80->8080"
MESH_SERVICE_PORTS='{"80": 0}'
MESH_SERVER_PORTS='{"80": 8080}'
mesh_reconfig || mesh_fail "reconfig"
peer 0 "$host:80" 1048576
peer 3 "$host:81" 1024
status_is 503

echo "== named port without an endpoint mapping"
MESH_SERVER_PORTS='{}'
mesh_reconfig || mesh_fail "reconfig"
peer 3 "$host:80" 1024
status_is 503
[ "$(echoes)" = 3 ] || mesh_fail "the application saw $(echoes) connections, want 3"

mesh_wait_log 2 "connection complete.*dst.hbone_addr=$host:80.*dst.service=\"$host\".*direction=\"inbound\"" ||
    mesh_fail "access log with the hostname authority"
grep -q "src.identity=\"spiffe://cluster.local/ns/default/sa/pyclient\".*dst.hbone_addr=$host:80.*bytes_sent=1048576 bytes_recv=1048576" \
    "$MESH_WORK/zt2.log" || mesh_fail "access log identity/bytes"
mesh_wait_log 2 "unknown service $host:81" || mesh_fail "log for the missing port"
echo "service hostname authority: ok"
