#!/usr/bin/env bash
# hbone_interop_server.sh: an independent HBONE server (python3-h2 over Python's OpenSSL) stands
# in for a remote node's ztunnel: a captured client on node 1 connects to the HBONE workload
# `pyhbone`, our outbound side dials its 15008, and the peer checks TLS 1.3, ALPN h2, our
# client certificate's SPIFFE ID, the CONNECT :authority and the shape of baggage, forwarded and
# traceparent before echoing. A server presenting the wrong identity is refused by our client.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up interops

"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyhbone \
    --out "$MESH_WORK/pyhbone" >/dev/null
start_peer() { # cert-dir log
    zt_bg "$(zt_ns_pod 2 pyhbone)" "$2.out" $HBONE_PEER server --listen 0.0.0.0:15008 \
        --cert "$1/cert-chain.pem" --key "$1/key.pem" --ca "$MESH_WORK/ca/root-cert.pem" \
        --expect-client-id spiffe://cluster.local/ns/default/sa/client \
        --expect-authority 198.18.2.4:8080 --log "$2"
    PEER_PID=$ZT_BG_LAST
    zt_wait_listen "$(zt_ns_pod 2 pyhbone)" 15008 10 || mesh_fail "peer not listening"
}
start_peer "$MESH_WORK/pyhbone" "$MESH_WORK/pyhbone.log"
out=$(mesh_xfer 1 client 198.18.2.4:8080 2097152) || mesh_fail "through the python server: $out"
/usr/bin/python3 - "$MESH_WORK/pyhbone.log" <<'PY' || mesh_fail "peer's checks: $(cat "$MESH_WORK/pyhbone.log")"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
requests = [r for r in records if r["event"] == "request"]
assert requests, records
r = requests[0]
assert r["problems"] == [], r["problems"]
assert r["tls"]["version"] == "TLSv1.3", r["tls"]
assert r["tls"]["alpn"] == "h2", r["tls"]
assert r["tls"]["client_ids"] == ["spiffe://cluster.local/ns/default/sa/client"], r["tls"]
assert r["headers"][":authority"] == "198.18.2.4:8080", r["headers"]
assert r["headers"]["forwarded"].startswith('for="198.18.1.2:'), r["headers"]
done = [x for x in records if x["event"] == "stream_done"]
assert done and done[0]["bytes"] == 2097152, records
PY

# A server that proves another identity: our client must refuse it before sending anything.
kill "$PEER_PID"; wait "$PEER_PID" 2>/dev/null || true
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/impostor \
    --out "$MESH_WORK/impostor" >/dev/null
start_peer "$MESH_WORK/impostor" "$MESH_WORK/impostor.log"
if mesh_xfer 1 client 198.18.2.4:8080 1024 >/dev/null; then
    mesh_fail "our client accepted a server with the wrong identity"
fi
if grep -q '"event": "request"' "$MESH_WORK/impostor.log" 2>/dev/null; then
    mesh_fail "a CONNECT reached the impostor"
fi
mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.4:15008.*error=' || mesh_fail "failure not logged"

# TLS 1.3 suites, as ztunnel: AES-GCM only. An OpenSSL server that picks ChaCha20-Poly1305 is
# refused by node 1's client, and an OpenSSL client offering only ChaCha20-Poly1305 is refused by
# node 2's server; each counts ztunnel_tls_handshake_failures_total{reason="tls_cipher"}.
kill "$PEER_PID"; wait "$PEER_PID" 2>/dev/null || true
if openssl ciphers -s -tls1_3 2>/dev/null | grep >/dev/null TLS_CHACHA20_POLY1305_SHA256; then
    p="$MESH_WORK/pyhbone"
    zt_in "$(zt_ns_pod 2 pyhbone)" bash -c "sleep 20 | exec openssl s_server -accept 15008 -tls1_3 \
        -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -alpn h2 -cert $p/cert-chain.pem -key $p/key.pem \
        -CAfile $MESH_WORK/ca/root-cert.pem -Verify 1 -naccept 1" >"$MESH_WORK/s_server.out" 2>&1 &
    zt_wait_listen "$(zt_ns_pod 2 pyhbone)" 15008 10 || mesh_fail "s_server not listening"
    if mesh_xfer 1 client 198.18.2.4:8080 1024 >/dev/null; then
        mesh_fail "our client went through a ChaCha20 server"
    fi
    grep -q 'PRI \* HTTP/2.0' "$MESH_WORK/s_server.out" && mesh_fail "our client sent HTTP/2 over ChaCha20"
    cipher_failures() { mesh_metrics "$1" | grep -F 'ztunnel_tls_handshake_failures_total{reason="tls_cipher"}' | awk '{print $NF}'; }
    for i in $(seq 30); do [ "$(cipher_failures 1)" = 1 ] && break; sleep 0.1; done
    [ "$(cipher_failures 1)" = 1 ] || mesh_fail "node1 did not count the ChaCha20 server: $(cipher_failures 1)"
    out=$(zt_in "$(zt_ns_pod 1 plain)" timeout 10 openssl s_client -connect 198.18.2.2:15008 -tls1_3 \
        -ciphersuites TLS_CHACHA20_POLY1305_SHA256 -alpn h2 -cert "$p/cert-chain.pem" -key "$p/key.pem" \
        -CAfile "$MESH_WORK/ca/root-cert.pem" -brief </dev/null 2>&1 | tr -d '\0' || true)
    echo "$out" | grep >/dev/null 'CONNECTION ESTABLISHED' && mesh_fail "node2 accepted a ChaCha20-only client: $out"
    for i in $(seq 30); do [ "$(cipher_failures 2)" = 1 ] && break; sleep 0.1; done
    [ "$(cipher_failures 2)" = 1 ] || mesh_fail "node2 did not count the ChaCha20 client: $(cipher_failures 2)"
    echo "ChaCha20-Poly1305 refused by our client and our server, counted on both nodes"
fi
echo "independent HBONE server: ok"
