#!/usr/bin/env bash
# ca_root_removed.sh: file mode, root-cert.pem replaced by a bundle that no longer holds the CA
# that signed the identities' leaves (an agent rotating the root before the leaves, or a
# compromised root being pulled). Node 2's server identity must stop trusting the removed root at
# once: a peer with an old-CA certificate is refused on its next handshake; the identity's own
# old-CA leaf no longer verifies, so the identity is unavailable (logged, counted in
# ztunnel_certificate_events_total{event="roots_mismatch"}, /config_dump and readiness say so)
# instead of going on with the old roots. When a leaf from the new CA is written, it is available
# again and new-CA peers are accepted. Before the fix the old roots stayed in use silently.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_CERT_MODE=files
mesh_up carm

direct() { # CERT_DIR CA_FILE: an independent mTLS client straight to the server's 15008
    zt_in "$(zt_ns_pod 1 plain)" timeout 20 $HBONE_PEER client --connect 198.18.2.2:15008 \
        --authority 198.18.2.2:8080 --cert "$1/cert-chain.pem" --key "$1/key.pem" --ca "$2" \
        --expect-id spiffe://cluster.local/ns/default/sa/server --random-bytes 4096 --seed "$RANDOM"
}
cert_state() { # N SA: the state of SA's certificate in node N's /config_dump
    zt_in "$(zt_ns_node "$1")" curl -s http://127.0.0.1:15000/config_dump |
        jq -r --arg id "spiffe://cluster.local/ns/default/sa/$2" \
            '.certificates[] | select(.identity == $id) | .state'
}
metric() { # N LINE-PREFIX: the value of node N's first metric line starting with LINE-PREFIX
    mesh_metrics "$1" | grep -F "$2" | awk '{print $NF}' | head -n 1
}

"$ZT_BIN" ca init "$MESH_WORK/ca2" >/dev/null
for ca in ca ca2; do
    "$ZT_BIN" ca issue --ca-dir "$MESH_WORK/$ca" --identity spiffe://cluster.local/ns/default/sa/pyclient \
        --out "$MESH_WORK/py-$ca" >/dev/null
done
out=$(direct "$MESH_WORK/py-ca" "$MESH_WORK/ca/root-cert.pem") || mesh_fail "old-CA peer before: $out"
echo "before: an old-CA peer is accepted"

# The old root goes away while every leaf is still from it.
cp "$MESH_WORK/ca2/root-cert.pem" "$MESH_WORK/certs/root-cert.pem.tmp"
mv "$MESH_WORK/certs/root-cert.pem.tmp" "$MESH_WORK/certs/root-cert.pem"
mesh_wait_log 2 'does not chain to the new root certificates.*sa/server' 5 ||
    mesh_fail "node2 did not notice that its server leaf no longer chains to the roots"
state=$(cert_state 2 server)
case $state in
    Unavailable*) ;;
    *) mesh_fail "server certificate state after the root left: $state" ;;
esac
ready=$(zt_in "$(zt_ns_node 2)" curl -s http://127.0.0.1:15021/healthz/ready)
case $ready in
    *"certificate spiffe://cluster.local/ns/default/sa/server"*) ;;
    *) mesh_fail "readiness does not name the identity: $ready" ;;
esac
if out=$(direct "$MESH_WORK/py-ca" "$MESH_WORK/ca/root-cert.pem"); then
    mesh_fail "node2 still accepts a peer of the removed root: $out"
fi
[ "$(metric 2 'ztunnel_certificate_events_total{event="roots_mismatch"}')" = 1 ] ||
    mesh_fail "roots_mismatch not counted: $(mesh_metrics 2 | grep certificate_events)"
echo "root removed: server identity $state, readiness: $ready, old-CA peer refused"

# A leaf from the new CA arrives.
serial=$(mesh_issue_cert server "$MESH_WORK/ca2")
mesh_wait_cert_serial 2 server "$serial" || mesh_fail "node2 did not take the new-CA server certificate"
[ "$(cert_state 2 server)" = Available ] || mesh_fail "server state: $(cert_state 2 server)"
mesh_wait_ready 2 || mesh_fail "node2 not ready with the new-CA certificate"
out=$(direct "$MESH_WORK/py-ca2" "$MESH_WORK/ca2/root-cert.pem") || mesh_fail "new-CA peer: $out"
if out=$(direct "$MESH_WORK/py-ca" "$MESH_WORK/ca/root-cert.pem"); then
    mesh_fail "the old-CA peer is accepted again: $out"
fi
echo "new-CA leaf $serial: available, new-CA peer accepted, old-CA peer refused"
echo "ca root removed: ok"
