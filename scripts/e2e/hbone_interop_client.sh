#!/usr/bin/env bash
# hbone_interop_client.sh: an independent HBONE client (python3-h2 over Python's OpenSSL,
# tests/peers/hbone_peer.py) connects straight to the server pod's 15008 with certificates from
# the mesh CA and checks what our inbound side answers (ztunnel's test_policy, hbone_ip_mismatch,
# trust_domain_mismatch_rejected and the abuse guards): an allowed CONNECT gets 200 and a
# byte-exact echo; a denied identity 401; an authority that is not the pod's IP 400; a port of
# ztunnel's own 503; a port nothing listens on 503; a client of another trust domain, of an
# unknown CA, or without a certificate fails the TLS handshake.
# timeout: 180
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
MESH_POLICIES='[{"name": "deny-robot", "namespace": "default", "scope": "Namespace", "action": "Deny",
  "rules": [[[{"principals": [{"Suffix": "/sa/robot"}]}]]]}]'
mesh_up interopc

certs=$MESH_WORK/peer-certs
issue() { # dir id [ca]
    "$ZT_BIN" ca issue --ca-dir "${3:-$MESH_WORK/ca}" --identity "$2" --out "$certs/$1" >/dev/null
}
issue good spiffe://cluster.local/ns/default/sa/pyclient
issue robot spiffe://cluster.local/ns/default/sa/robot
# Our CA refuses to issue outside its trust domain, so the foreign-domain client is signed by
# hand with openssl: it chains to the mesh root, and only its trust domain is wrong.
mkdir -p "$certs/foreign"
cat >"$certs/foreign/ext.cnf" <<'CNF'
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=critical,URI:spiffe://clusterset.local/ns/default/sa/pyclient
CNF
openssl ecparam -name prime256v1 -genkey -noout -out "$certs/foreign/key.pem"
openssl req -new -key "$certs/foreign/key.pem" -subj / -out "$certs/foreign/csr.pem" 2>/dev/null
openssl x509 -req -in "$certs/foreign/csr.pem" -CA "$MESH_WORK/ca/ca-cert.pem" \
    -CAkey "$MESH_WORK/ca/ca-key.pem" -CAcreateserial -days 1 -extfile "$certs/foreign/ext.cnf" \
    -extensions leaf -out "$certs/foreign/cert-chain.pem" 2>/dev/null
"$ZT_BIN" ca init "$MESH_WORK/otherca" >/dev/null
issue stranger spiffe://cluster.local/ns/default/sa/pyclient "$MESH_WORK/otherca"

headers=(--header 'baggage=k8s.namespace.name=default,service.name=pyclient'
         --header 'forwarded=for="198.18.1.4:40000"'
         --header 'traceparent=00-0123456789abcdef0123456789abcdef-0123456789abcdef-00')
peer() { # expected-exit certdir authority [args...]
    local want=$1 dir=$2 authority=$3 rc=0
    shift 3
    local cert_args=()
    [ -n "$dir" ] && cert_args=(--cert "$certs/$dir/cert-chain.pem" --key "$certs/$dir/key.pem")
    zt_in "$(zt_ns_pod 1 plain)" timeout 30 $HBONE_PEER client --connect 198.18.2.2:15008 \
        --authority "$authority" --ca "$MESH_WORK/ca/root-cert.pem" "${cert_args[@]}" \
        --expect-id spiffe://cluster.local/ns/default/sa/server "${headers[@]}" "$@" \
        >"$MESH_WORK/peer.out" 2>&1 || rc=$?
    [ "$rc" -eq "$want" ] || mesh_fail "authority $authority with $dir: exit $rc, want $want: $(cat "$MESH_WORK/peer.out")"
    cat "$MESH_WORK/peer.out"
}
status_is() { grep -q "\"status\": $1" "$MESH_WORK/peer.out" || mesh_fail "status: $(cat "$MESH_WORK/peer.out")"; }

peer 0 good 198.18.2.2:8080 --random-bytes 4194304
/usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["sha256_sent"]==r["sha256_received"] and r["received"]==4194304, r' "$MESH_WORK/peer.out" ||
    mesh_fail "echo not byte-exact"
grep -Eq '"peer": "(::ffff:)?198.18.1.4"' "$MESH_WORK/peers-server.log" || mesh_fail "spoofed source"
peer 3 robot 198.18.2.2:8080; status_is 401
peer 3 good 198.18.2.3:8080; status_is 400
peer 3 good 127.0.0.1:8080; status_is 400
peer 3 good 198.18.2.2:15000; status_is 503
peer 3 good 198.18.2.2:15008; status_is 503
peer 3 good 198.18.2.2:9999; status_is 503
peer 0 good server.default.svc.cluster.local:80 --random-bytes 1024
peer 4 foreign 198.18.2.2:8080
peer 4 stranger 198.18.2.2:8080
peer 4 "" 198.18.2.2:8080
mesh_wait_log 2 'ip mismatch: 198.18.2.3 != 198.18.2.2' || mesh_fail "ip mismatch log"
mesh_wait_log 2 'explicitly denied by: default/deny-robot' || mesh_fail "deny log"
echo "independent HBONE client: ok"
