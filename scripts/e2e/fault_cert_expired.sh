#!/usr/bin/env bash
# fault_cert_expired.sh: docs/reliability.md §6b F13, the clock passes a certificate's notAfter (file
# mode, a short-lived certificate and no renewal written, as when the agent is down). Node 2's
# server identity gets a 12 s certificate; past its notAfter node 2 logs the expiry, counts it
# (ztunnel_certificate_events_total{event="expired"}), shows it in /config_dump and readiness,
# and new handshakes for that identity fail as ztunnel's do when its certificate is Unavailable:
# node 1 cannot connect to the server over a new HBONE connection, and the failure is logged.
# A peer presenting an expired certificate of its own is refused. Node 2 stays up, and a fresh
# certificate written afterwards is taken and traffic flows again. Node 1 pools nothing
# (POOL_MAX_STREAMS_PER_CONNECTION=1), so every connection is a new handshake.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_CERT_MODE=files
MESH_ZT1_ENV="POOL_MAX_STREAMS_PER_CONNECTION=1"
mesh_up certexp

cert_state() { # N SA
    zt_in "$(zt_ns_node "$1")" curl -s http://127.0.0.1:15000/config_dump |
        jq -r --arg id "spiffe://cluster.local/ns/default/sa/$2" \
            '.certificates[] | select(.identity == $id) | .state'
}
expired_count() {
    mesh_metrics 2 | grep -F 'ztunnel_certificate_events_total{event="expired"}' | awk '{print $NF}' || true
}
direct() { # CERT_DIR: an independent mTLS client straight to the server's 15008
    zt_in "$(zt_ns_pod 1 plain)" timeout 20 $HBONE_PEER client --connect 198.18.2.2:15008 \
        --authority 198.18.2.2:8080 --cert "$1/cert-chain.pem" --key "$1/key.pem" \
        --ca "$MESH_WORK/ca/root-cert.pem" --expect-id spiffe://cluster.local/ns/default/sa/server \
        --random-bytes 4096 --seed "$RANDOM"
}

# An independent client whose own certificate expires in 2 s: refused once it has expired.
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyclient \
    --ttl 2s --out "$MESH_WORK/py-short" >/dev/null
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyclient \
    --out "$MESH_WORK/py-good" >/dev/null

# The server identity moves to a 12 s certificate, as an agent would write it.
tmp="$MESH_WORK/short"
out=$("$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/server \
    --ttl 12s --out "$tmp")
serial=$(echo "$out" | sed -nE 's/.*\(serial ([0-9]+),.*/\1/p')
mv "$tmp/key.pem" "$MESH_WORK/certs/default/server/key.pem"
mv "$tmp/cert-chain.pem" "$MESH_WORK/certs/default/server/cert-chain.pem"
issued_at=$SECONDS
mesh_wait_cert_serial 2 server "$serial" || mesh_fail "node2 did not take the short-lived certificate"
out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "before expiry: $out"
sleep 2.5
if out=$(direct "$MESH_WORK/py-short"); then
    mesh_fail "node2 accepted a peer with an expired certificate: $out"
fi
out=$(direct "$MESH_WORK/py-good") || mesh_fail "a peer with a valid certificate: $out"
echo "before expiry: traffic flows; an expired peer certificate is refused"

# Past the server certificate's notAfter.
while [ $((SECONDS - issued_at)) -lt 13 ]; do sleep 0.5; done
mesh_wait_log 2 'certificate expired with no replacement.*sa/server' 5 ||
    mesh_fail "node2 did not log the expiry"
state=$(cert_state 2 server)
[ "$state" = "Unavailable: cert_expired" ] || mesh_fail "server certificate state: $state"
[ "$(expired_count)" = 1 ] || mesh_fail "expiry not counted: $(expired_count)"
ready=$(zt_in "$(zt_ns_node 2)" curl -s http://127.0.0.1:15021/healthz/ready)
case $ready in
    *"certificate spiffe://cluster.local/ns/default/sa/server"*) ;;
    *) mesh_fail "readiness does not name the expired identity: $ready" ;;
esac
for i in 1 2; do
    if out=$(mesh_xfer 1 client 198.18.2.2:8080 1024); then
        mesh_fail "a new HBONE connection to an identity without a valid certificate: $out"
    fi
done
mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.2:15008.*error=' 5 ||
    mesh_fail "node1 did not log the failed connection"
kill -0 "$MESH_ZT2_PID" || mesh_fail "node2 exited"
echo "expired: $state, counted, readiness: $ready; new connections fail"

# A fresh certificate heals it.
serial=$(mesh_issue_cert server)
mesh_wait_cert_serial 2 server "$serial" || mesh_fail "node2 did not take the fresh certificate"
[ "$(cert_state 2 server)" = Available ] || mesh_fail "state after renewal: $(cert_state 2 server)"
mesh_wait_ready 2 || mesh_fail "node2 not ready after renewal"
out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "after renewal: $out"
echo "certificate expiry: ok"
