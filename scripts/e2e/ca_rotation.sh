#!/usr/bin/env bash
# ca_rotation.sh: a root CA rotated in file mode, the way an agent does it (docs/contract.md §4:
# root-cert.pem holds one or more roots). Step 1: both nodes trust the old and the new root.
# Step 2: the server gets a certificate from the new CA; a client still on the old CA connects
# to it over a fresh HBONE connection (node 1 verifies the new chain). Step 3: the client gets a
# new-CA certificate too, and its fresh connection is accepted by node 2. Step 4: the old root is
# dropped: a peer still holding an old-CA certificate is refused by node 2, and new-CA traffic
# keeps flowing. Every transfer is byte-exact.
# timeout: 90
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_CERT_MODE=files
mesh_up carot

roots_loaded() { grep -c "loaded root certificates.*roots=$2" "$MESH_WORK/zt$1.log" || true; }
write_roots() { # FILE... -> DIR/root-cert.pem, atomically; waits until both nodes loaded N roots
    local n=$# b1 b2
    b1=$(roots_loaded 1 "$n")
    b2=$(roots_loaded 2 "$n")
    cat "$@" >"$MESH_WORK/certs/root-cert.pem.tmp"
    mv "$MESH_WORK/certs/root-cert.pem.tmp" "$MESH_WORK/certs/root-cert.pem"
    local i
    for i in $(seq 50); do
        [ "$(roots_loaded 1 "$n")" -gt "$b1" ] && [ "$(roots_loaded 2 "$n")" -gt "$b2" ] && return 0
        sleep 0.1
    done
    return 1
}
direct() { # CERT_DIR CA_FILE: an independent mTLS client straight to the server's 15008
    zt_in "$(zt_ns_pod 1 plain)" timeout 20 $HBONE_PEER client --connect 198.18.2.2:15008 \
        --authority 198.18.2.2:8080 --cert "$1/cert-chain.pem" --key "$1/key.pem" --ca "$2" \
        --expect-id spiffe://cluster.local/ns/default/sa/server --random-bytes 4096 --seed "$RANDOM"
}

out=$(mesh_xfer 1 client 198.18.2.2:8080 1048576) || mesh_fail "before: $out"
"$ZT_BIN" ca init "$MESH_WORK/ca2" >/dev/null
for ca in ca ca2; do
    "$ZT_BIN" ca issue --ca-dir "$MESH_WORK/$ca" --identity spiffe://cluster.local/ns/default/sa/pyclient \
        --out "$MESH_WORK/py-$ca" >/dev/null
done
cat "$MESH_WORK/ca/root-cert.pem" "$MESH_WORK/ca2/root-cert.pem" >"$MESH_WORK/both-roots.pem"

# 1. Trust both roots.
write_roots "$MESH_WORK/ca/root-cert.pem" "$MESH_WORK/ca2/root-cert.pem" || mesh_fail "roots=2 not loaded"
echo "step 1: both nodes trust two roots"

# 2. The server moves to the new CA; client2 (old CA, no pooled connection yet) dials it.
serial=$(mesh_issue_cert server "$MESH_WORK/ca2")
mesh_wait_cert_serial 2 server "$serial" || mesh_fail "node2 did not take the new-CA server certificate: $(mesh_cert_serial 2 server)"
out=$(mesh_xfer 1 client2 198.18.2.2:8080 1048576) || mesh_fail "old-CA client to new-CA server: $out"
out=$(direct "$MESH_WORK/py-ca" "$MESH_WORK/both-roots.pem") || mesh_fail "direct, old-CA client: $out"
echo "$out" | grep >/dev/null "\"peer_serial\": \"$serial\"" || mesh_fail "server presents another certificate: $out"
echo "step 2: new-CA server certificate $serial accepted by old-CA clients"

# 3. The client moves too; a new destination (IPv6) means a fresh HBONE connection.
serial=$(mesh_issue_cert client "$MESH_WORK/ca2")
mesh_wait_cert_serial 1 client "$serial" || mesh_fail "node1 did not take the new-CA client certificate"
out=$(mesh_xfer 1 client "[2001:db8:2::2]:8080" 1048576) || mesh_fail "new-CA client: $out"
echo "step 3: new-CA client certificate $serial accepted by node2"

# 4. The old root goes away (client2 moves first, as an agent would).
serial=$(mesh_issue_cert client2 "$MESH_WORK/ca2")
mesh_wait_cert_serial 1 client2 "$serial" || mesh_fail "node1 did not take the new-CA client2 certificate"
write_roots "$MESH_WORK/ca2/root-cert.pem" || mesh_fail "roots=1 not loaded"
if out=$(direct "$MESH_WORK/py-ca" "$MESH_WORK/both-roots.pem"); then
    mesh_fail "node2 still accepts an old-CA client certificate: $out"
fi
echo "old-CA client after the old root was dropped: $out"
out=$(direct "$MESH_WORK/py-ca2" "$MESH_WORK/ca2/root-cert.pem") || mesh_fail "direct, new-CA client: $out"
out=$(mesh_xfer 1 client "[2001:db8:2::2]:8080" 1048576) || mesh_fail "new-CA traffic after the old root left: $out"
echo "step 4: old root dropped, new-CA traffic flows"
echo "ca rotation: ok"
