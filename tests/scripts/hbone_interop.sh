#!/usr/bin/env bash
# hbone_interop.sh runs our HBONE engines (build/tools/hbone_loopback: hbone::LinkEngine over
# loopback TCP) against the independent peer tests/peers/hbone_peer.py (OpenSSL + python3-h2),
# both ways, with certificates made by openssl at run time: 5 MB echoed byte-exact each way with
# HBONE's headers accepted by the peer; a client without a certificate, a client from an unknown
# CA and a server with an unexpected identity refused at TLS; a bad authority answered 400.
# Skips (77) without python3-h2 or the peer script.
# timeout: 120
set -euo pipefail
here_pki=$(cd "$(dirname "$0")/../.." && pwd)
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-build}
tool="$here/$build/tools/hbone_loopback"
peer_script=${HBONE_PEER:-$here/tests/peers/hbone_peer.py}
[ -f "$peer_script" ] || { echo "no independent peer at $peer_script"; exit 77; }
/usr/bin/python3 -c 'import h2' 2>/dev/null || { echo "python3-h2 missing"; exit 77; }
[ -x "$tool" ] || { echo "missing $tool (run make)"; exit 1; }
peer="/usr/bin/python3 $peer_script"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

. "$here_pki/tests/scripts/lib/openssl_pki.sh"
server_id=spiffe://cluster.local/ns/default/sa/server
client_id=spiffe://cluster.local/ns/default/sa/client
pki_make_ca ca
pki_make_ca otherca
pki_make_leaf ca server "$server_id"
pki_make_leaf ca client "$client_id"
pki_make_leaf otherca stranger "$client_id"

wait_listening() { timeout 10 bash -c "until grep -q listening $1; do sleep 0.1; done"; }
fail() { echo "FAIL: $*"; for f in *.out *.log; do [ -f "$f" ] && { echo "--- $f"; cat "$f"; }; done; exit 1; }

# 1. Our client -> independent server.
port1=$((20000 + RANDOM % 10000))
$peer server --listen "127.0.0.1:$port1" --cert server.pem --key server.key --ca ca.pem \
    --expect-client-id "$client_id" --expect-authority 198.18.1.2:8080 --log peer_server.log \
    >peer_server.out 2>&1 &
pids+=($!)
wait_listening peer_server.out
rc=0
timeout 30 "$tool" client --connect "127.0.0.1:$port1" --cert client.pem --key client.key --ca ca.pem \
    --id "$client_id" --expect-id "$server_id" --authority 198.18.1.2:8080 --bytes 5000000 \
    >our_client.out || rc=$?
[ "$rc" -eq 0 ] || fail "our client against the peer server exited $rc"
grep -q '"problems": \[\]' peer_server.log || fail "peer server found problems in our CONNECT"
grep -q '"bytes": 5000000' peer_server.log || fail "peer server did not get 5000000 bytes"
grep -qE '"cipher": "TLS_AES_(128_GCM_SHA256|256_GCM_SHA384)"' peer_server.log || fail "cipher is not AES-GCM"
rc=0
timeout 30 "$tool" client --connect "127.0.0.1:$port1" --cert client.pem --key client.key --ca ca.pem \
    --id "$client_id" --expect-id spiffe://cluster.local/ns/default/sa/other \
    --authority 198.18.1.2:8080 --bytes 10 >our_client_wrong.out || rc=$?
[ "$rc" -eq 4 ] || fail "our client accepted a server with an unexpected identity (exit $rc)"

# 2. Independent client -> our server.
port2=$((20000 + RANDOM % 10000))
[ "$port2" -ne "$port1" ] || port2=$((port1 + 1))
"$tool" server --listen "127.0.0.1:$port2" --cert server.pem --key server.key --ca ca.pem \
    --id "$server_id" >our_server.out 2>&1 &
pids+=($!)
wait_listening our_server.out
hbone_headers=(--header 'baggage=k8s.namespace.name=default,service.name=client'
               --header 'forwarded=for="198.18.1.3:40000"'
               --header 'traceparent=00-0123456789abcdef0123456789abcdef-0123456789abcdef-00')
peer_client() { # expected-exit args...
    local want=$1 rc=0
    shift
    timeout 30 $peer client --connect "127.0.0.1:$port2" --ca ca.pem --expect-id "$server_id" \
        "$@" >peer_client.out || rc=$?
    [ "$rc" -eq "$want" ] || fail "peer client exit $rc, expected $want: $*"
}
peer_client 0 --authority 198.18.1.2:8080 --cert client.pem --key client.key "${hbone_headers[@]}" \
    --random-bytes 5000000
/usr/bin/python3 - peer_client.out <<'PY' || fail "echo through our server was not byte-exact"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == 200 and r["sent"] == r["received"] == 5000000, r
assert r["sha256_sent"] == r["sha256_received"], r
PY
grep -q "\"peer\": \"$client_id\"" our_server.out || fail "our server did not see the client identity"
peer_client 4 --authority 198.18.1.2:8080 "${hbone_headers[@]}"
peer_client 4 --authority 198.18.1.2:8080 --cert stranger.pem --key stranger.key "${hbone_headers[@]}"
peer_client 3 --authority 127.1:80 --cert client.pem --key client.key "${hbone_headers[@]}"

# 3. TLS 1.3 suites (ztunnel allows AES-GCM only): OpenSSL peers that negotiate ChaCha20-Poly1305.
if openssl ciphers -s -tls1_3 2>/dev/null | grep >/dev/null TLS_CHACHA20_POLY1305_SHA256; then
    s_client() { # SUITES: an OpenSSL client with those TLS 1.3 suites against our server
        timeout 10 openssl s_client -connect "127.0.0.1:$port2" -tls1_3 -ciphersuites "$1" \
            -alpn h2 -cert client.pem -key client.key -CAfile ca.pem -brief </dev/null 2>&1 | tr -d '\0' || true
    }
    errors_before=$(grep -c '"error": "tls_cipher"' our_server.out || true)
    out=$(s_client TLS_CHACHA20_POLY1305_SHA256)
    echo "$out" | grep >/dev/null 'CONNECTION ESTABLISHED' && fail "a ChaCha20-only client was accepted: $out"
    echo "ChaCha20-only client: $(echo "$out" | grep -i alert | head -n 1)"
    out=$(s_client TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256)
    echo "ChaCha20-first client: $(echo "$out" | grep -iE 'alert|Ciphersuite' | head -n 2 | tr '\n' ' ')"
    timeout 5 bash -c "until [ \$(grep -c '\"error\": \"tls_cipher\"' our_server.out) -ge $((errors_before + 2)) ]; do sleep 0.1; done" ||
        fail "our server did not refuse both ChaCha20 clients as tls_cipher"
    out=$(s_client TLS_AES_256_GCM_SHA384)
    echo "$out" | grep >/dev/null 'Ciphersuite: TLS_AES_256_GCM_SHA384' || fail "an AES-256-GCM client was refused: $out"
    # An OpenSSL server that picks ChaCha20: our client refuses it before sending any HTTP/2.
    port3=$((port2 + 1))
    # (s_server quits when its stdin ends: keep one open.)
    sleep 15 | openssl s_server -accept "127.0.0.1:$port3" -tls1_3 -ciphersuites TLS_CHACHA20_POLY1305_SHA256 \
        -alpn h2 -cert server.pem -key server.key -CAfile ca.pem -Verify 1 -naccept 1 \
        >s_server.out 2>&1 &
    pids+=($!)
    timeout 10 bash -c "until grep -q ACCEPT s_server.out; do sleep 0.1; done" || fail "s_server did not start"
    rc=0
    timeout 30 "$tool" client --connect "127.0.0.1:$port3" --cert client.pem --key client.key \
        --ca ca.pem --id "$client_id" --expect-id "$server_id" --authority 198.18.1.2:8080 \
        --bytes 10 >our_client_chacha.out 2>&1 || rc=$?
    [ "$rc" -eq 4 ] || fail "our client accepted a ChaCha20 server (exit $rc): $(cat our_client_chacha.out)"
    grep -q 'PRI \* HTTP/2.0' s_server.out && fail "our client sent HTTP/2 over ChaCha20"
    echo "TLS 1.3 suites: ChaCha20 refused both ways, AES-GCM accepted"
else
    echo "openssl lacks TLS_CHACHA20_POLY1305_SHA256: suite checks skipped"
fi
echo "hbone interop with the independent peer: ok"
