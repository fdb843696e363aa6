#!/usr/bin/env bash
# cert_rotation.sh: certificates rotated in file mode under load (issue 8, docs/contract.md §4). Both
# ztunnels run with --cert-dir; an agent (mesh_issue_cert: `ztunnel ca issue`, then rename over
# the old files) replaces the server's and both clients' certificates three times while traffic
# flows: a paced 8 MiB transfer over the pooled HBONE connection, a loop of short connections
# through node 1 (client2 -> server) and a loop of fresh TLS handshakes straight to the server's
# 15008 from the independent HBONE client. Every short connection and handshake succeeds, the
# paced transfer is byte-exact, /config_dump shows each new serial, the independent client sees
# the server's new certificate, and a new HBONE connection from node 1 presents the client's. A
# certificate of another identity filed under the server's name is refused and the last good one
# stays in use.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_CERT_MODE=files
mesh_up certrot

# The independent peers' own certificates (not in the agent's directory).
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyclient \
    --out "$MESH_WORK/pyclient" >/dev/null
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyhbone \
    --out "$MESH_WORK/pyhbone" >/dev/null
zt_bg "$(zt_ns_pod 2 pyhbone)" "$MESH_WORK/pyhbone.out" $HBONE_PEER server --listen 0.0.0.0:15008 \
    --cert "$MESH_WORK/pyhbone/cert-chain.pem" --key "$MESH_WORK/pyhbone/key.pem" \
    --ca "$MESH_WORK/ca/root-cert.pem" --expect-client-id spiffe://cluster.local/ns/default/sa/client \
    --expect-authority 198.18.2.4:8080 --log "$MESH_WORK/pyhbone.log"
zt_wait_listen "$(zt_ns_pod 2 pyhbone)" 15008 10 || mesh_fail "python HBONE server not listening"

first_server=$(mesh_cert_serial 2 server)
first_client=$(mesh_cert_serial 1 client)
[ -n "$first_server" ] && [ -n "$first_client" ] || mesh_fail "no serials in /config_dump"
echo "serials at start: server $first_server, client $first_client"

direct() { # one fresh mTLS handshake + CONNECT + 4 KiB echo from the uncaptured pod
    zt_in "$(zt_ns_pod 1 plain)" timeout 20 $HBONE_PEER client --connect 198.18.2.2:15008 \
        --authority 198.18.2.2:8080 --cert "$MESH_WORK/pyclient/cert-chain.pem" \
        --key "$MESH_WORK/pyclient/key.pem" --ca "$MESH_WORK/ca/root-cert.pem" \
        --expect-id spiffe://cluster.local/ns/default/sa/server --random-bytes 4096 --seed "$RANDOM"
}
out=$(direct) || mesh_fail "direct HBONE before rotation: $out"
echo "$out" | grep >/dev/null "\"peer_serial\": \"$first_server\"" || mesh_fail "direct client saw another serial: $out"

# Load: the paced transfer (about 5 s) and two loops of short connections until told to stop.
zt_in "$(zt_ns_pod 1 client)" timeout 60 $PEER client --connect 198.18.2.2:8080 \
    --bytes 8388608 --pace-ms 40 --seed 11 >"$MESH_WORK/paced.out" 2>&1 &
paced_pid=$!
stop=$MESH_WORK/stop
(
    while [ ! -e "$stop" ]; do
        if out=$(direct); then echo "ok $out"; else echo "FAILED $out"; fi
    done
) >"$MESH_WORK/direct.out" 2>&1 &
direct_pid=$!
(
    while [ ! -e "$stop" ]; do
        if out=$(mesh_xfer 1 client2 198.18.2.2:8080 65536); then echo "ok $out"; else echo "FAILED $out"; fi
    done
) >"$MESH_WORK/short.out" 2>&1 &
short_pid=$!

sleep 0.5
for round in 1 2 3; do
    server_serial=$(mesh_issue_cert server)
    client_serial=$(mesh_issue_cert client)
    client2_serial=$(mesh_issue_cert client2)
    mesh_wait_cert_serial 2 server "$server_serial" || mesh_fail "round $round: node2 still shows $(mesh_cert_serial 2 server)"
    mesh_wait_cert_serial 1 client "$client_serial" || mesh_fail "round $round: node1 still shows $(mesh_cert_serial 1 client)"
    mesh_wait_cert_serial 1 client2 "$client2_serial" || mesh_fail "round $round: node1 client2 $(mesh_cert_serial 1 client2)"
    echo "round $round: server $server_serial, client $client_serial, client2 $client2_serial in use"
    sleep 0.5
done
# One more handshake of each loop surely after the last rotation, then stop.
sleep 0.5
touch "$stop"
paced_rc=0
wait "$paced_pid" || paced_rc=$?
wait "$direct_pid" "$short_pid" || true
echo "paced: $(cat "$MESH_WORK/paced.out")"
[ "$paced_rc" = 0 ] || mesh_fail "the in-flight transfer did not survive the rotations"

direct_ok=$(grep -c '^ok ' "$MESH_WORK/direct.out" || true)
short_ok=$(grep -c '^ok ' "$MESH_WORK/short.out" || true)
echo "short connections: $short_ok through node 1, $direct_ok fresh handshakes to node 2"
if grep -v '^ok ' "$MESH_WORK/direct.out" "$MESH_WORK/short.out"; then
    mesh_fail "a short connection or handshake failed during the rotations"
fi
[ "$direct_ok" -ge 5 ] && [ "$short_ok" -ge 5 ] || mesh_fail "too little load to prove anything"
# The fresh handshakes saw the server's certificates change under them.
seen=$(sed -nE 's/.*"peer_serial": "([0-9]+)".*/\1/p' "$MESH_WORK/direct.out" | sort -u | wc -l)
[ "$seen" -ge 2 ] || mesh_fail "the handshakes saw only $seen server certificate(s)"
# A bad rotation (the agent files another identity's certificate under sa/server) is refused
# and the last good certificate stays in use.
refusals() { grep -c 'refused certificate files; keeping the last good certificate.*sa/server' "$MESH_WORK/zt2.log" || true; }
refused_before=$(refusals)
bad=$(mktemp -d "$MESH_WORK/bad.XXXXXX")
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/impostor \
    --out "$bad" >/dev/null
mv "$bad/key.pem" "$MESH_WORK/certs/default/server/key.pem"
mv "$bad/cert-chain.pem" "$MESH_WORK/certs/default/server/cert-chain.pem"
timeout 5 bash -c "until [ \$(grep -c 'refused certificate files; keeping the last good certificate.*sa/server' '$MESH_WORK/zt2.log') -gt $refused_before ]; do sleep 0.05; done" ||
    mesh_fail "node2 did not refuse a certificate of another identity"
[ "$(mesh_cert_serial 2 server)" = "$server_serial" ] || mesh_fail "node2 dropped its last good certificate"

out=$(direct) || mesh_fail "direct HBONE after rotation: $out"
echo "$out" | grep >/dev/null "\"peer_serial\": \"$server_serial\"" || mesh_fail "server still presents an old certificate: $out"
[ "$server_serial" != "$first_server" ] && [ "$client_serial" != "$first_client" ] || mesh_fail "serials did not change"

# Node 1's first connection to the python server is a new HBONE connection: it must present the
# client's newest certificate.
out=$(mesh_xfer 1 client 198.18.2.4:8080 65536) || mesh_fail "to the python HBONE server: $out"
matched=$(jq -s --arg s "$client_serial" \
    'map(select(.event == "request" and .tls.client_serial == $s and .problems == [])) | length' \
    "$MESH_WORK/pyhbone.log")
[ "$matched" = 1 ] || mesh_fail "node1 presented another certificate: $(cat "$MESH_WORK/pyhbone.log")"

renewed=$(grep -c 'certificate renewed.*sa/server' "$MESH_WORK/zt2.log" || true)
[ "$renewed" -ge 3 ] || mesh_fail "node2 logged $renewed server renewals, want 3"
echo "certificate rotation: ok"
