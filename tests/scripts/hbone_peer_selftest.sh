#!/usr/bin/env bash
# hbone_peer_selftest.sh checks the independent HBONE peer (tests/peers/hbone_peer.py) against
# itself on loopback, with certificates made by openssl at run time: an allowed CONNECT echoes 5 MB
# byte-exact; a missing client certificate, a client from an unknown CA and a server with an
# unexpected identity are handshake failures; a CONNECT without HBONE's headers gets 400. The
# interop tests against our ztunnel rely on this peer telling these cases apart.
# timeout: 120
set -euo pipefail
here_pki=$(cd "$(dirname "$0")/../.." && pwd)
here=$(cd "$(dirname "$0")/../.." && pwd)
peer="/usr/bin/python3 $here/tests/peers/hbone_peer.py"
/usr/bin/python3 -c 'import h2' 2>/dev/null || { echo "python3-h2 missing"; exit 77; }
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

. "$here_pki/tests/scripts/lib/openssl_pki.sh"
pki_make_ca ca
pki_make_ca otherca
pki_make_leaf ca server spiffe://cluster.local/ns/default/sa/server
pki_make_leaf ca client spiffe://cluster.local/ns/default/sa/client
pki_make_leaf otherca stranger spiffe://cluster.local/ns/default/sa/client

port=$((20000 + RANDOM % 10000))
$peer server --listen "127.0.0.1:$port" --cert server.pem --key server.key --ca ca.pem \
    --expect-client-id spiffe://cluster.local/ns/default/sa/client \
    --expect-authority 198.18.1.2:8080 --log server.log >server.out 2>&1 &
server_pid=$!
timeout 10 bash -c "until grep -q listening server.out; do sleep 0.1; done"

hbone_headers=(--header 'baggage=k8s.namespace.name=default,service.name=client'
               --header 'forwarded=for="198.18.1.3:40000"'
               --header 'traceparent=00-0123456789abcdef0123456789abcdef-0123456789abcdef-00')
client() { # expected-exit args...
    local want=$1 rc=0
    shift
    timeout 30 $peer client --connect "127.0.0.1:$port" --ca ca.pem "$@" >client.out || rc=$?
    if [ "$rc" -ne "$want" ]; then
        echo "expected exit $want, got $rc for: $*"
        cat client.out server.out
        exit 1
    fi
}

client 0 --authority 198.18.1.2:8080 --cert client.pem --key client.key \
    --expect-id spiffe://cluster.local/ns/default/sa/server "${hbone_headers[@]}" --random-bytes 5000000
/usr/bin/python3 - client.out <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["status"] == 200 and r["sent"] == r["received"] == 5000000, r
assert r["sha256_sent"] == r["sha256_received"], r
PY
client 4 --authority 198.18.1.2:8080 "${hbone_headers[@]}"
client 4 --authority 198.18.1.2:8080 --cert stranger.pem --key stranger.key "${hbone_headers[@]}"
client 4 --authority 198.18.1.2:8080 --cert client.pem --key client.key \
    --expect-id spiffe://cluster.local/ns/default/sa/someone-else "${hbone_headers[@]}"
client 3 --authority 198.18.1.2:8080 --cert client.pem --key client.key
client 3 --authority 198.18.1.9:8080 --cert client.pem --key client.key "${hbone_headers[@]}"
grep -q '"problems": \[\]' server.log
grep -q 'stream_done' server.log
echo "hbone peer self-test: ok"
