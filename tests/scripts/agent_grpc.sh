#!/usr/bin/env bash
# agent_grpc.sh: the agent's own gRPC client (our TLS, our HTTP/2, the agent's io_uring loop;
# driven through build/tools/grpc_call) against an independent server, Debian's python3-grpcio
# (tests/peers/grpc_echo.py) with a certificate made here by openssl: unary and bidirectional
# calls, a 5 MiB answer across many frames and flow-control windows, the message size cap, a
# server status with an escaped message (trailers-only), a deadline, request metadata, an
# unknown method, a host name resolved off the loop, the PING keepalive against a server that
# stopped answering, and the connection-level failures an operator must be told about (wrong
# name, wrong root, nothing listening). Loopback only, port 0, no root needed.
# timeout: 120
set -euo pipefail
BUILD=${BUILD:-build}
TOOL=$BUILD/tools/grpc_call
[ -x "$TOOL" ] || { echo "missing $TOOL (run make)"; exit 1; }
/usr/bin/python3 -c 'import grpc' 2>/dev/null || { echo "python3-grpcio missing"; exit 1; }
here=$PWD
tmp=$(mktemp -d /tmp/zt-agent-grpc-XXXXXX)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }
. tests/scripts/lib/openssl_pki.sh
(cd "$tmp" && pki_make_ca root && pki_make_server root server "DNS:istiod.istio-system.svc,IP:127.0.0.1" &&
    pki_make_ca other)

/usr/bin/python3 tests/peers/grpc_echo.py --cert "$tmp/server.pem" --key "$tmp/server.key" \
    >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
    grep -q '^port ' "$tmp/server.log" && break
    sleep 0.1
done
port=$(sed -n 's/^port //p' "$tmp/server.log")
[ -n "$port" ] || fail "server did not start: $(cat "$tmp/server.log")"

call() { "$here/$TOOL" --host 127.0.0.1 --port "$port" --root "$tmp/root.pem" "$@"; }
expect() { # JSON JQ-EXPR WHAT
    echo "$1" | jq -e "$2" >/dev/null || fail "$3: $1"
}

out=$(call --method /test.Echo/Unary --data hello)
expect "$out" '.code == "OK" and .first == "hello" and .messages == 1 and .established' "unary"

out=$(call --method /test.Echo/Big --data 5242880)
expect "$out" '.code == "OK" and .bytes == 5242880' "5 MiB answer"

out=$(call --method /test.Echo/Big --data 3145728 --max-message 1048576)
expect "$out" '.code == "RESOURCE_EXHAUSTED" and (.from_server | not)' "message cap"

out=$(call --method /test.Echo/Fail --data "7:no way, é")
expect "$out" '.code == "PERMISSION_DENIED" and .message == "no way, é" and .from_server and
    (.established | not)' "server status"

out=$(call --method /test.Echo/Sleep --data 3000 --deadline-ms 400)
expect "$out" '.code == "DEADLINE_EXCEEDED"' "deadline"

out=$(call --method /test.Echo/Stream --data ping --messages 20)
expect "$out" '.code == "OK" and .messages == 20 and .bytes == 80' "bidirectional stream"

out=$(call --method /test.Echo/Headers --header x-test=yes --header clusterid=c1)
expect "$out" '.code == "OK" and (.first | contains("x-test=yes")) and
    (.first | contains("clusterid=c1")) and (.first | contains("user-agent=ztunnel-agent"))' "metadata"

out=$(call --method /test.Echo/Nope)
expect "$out" '.code == "UNIMPLEMENTED"' "unknown method"

out=$(call --method /test.Echo/Unary --data x --name istiod.istio-system.svc)
expect "$out" '.code == "OK"' "dialled by address, verified by name"

# A host name is resolved off the loop (getaddrinfo on a thread of its own); every address it
# has is tried in turn.
out=$("$here/$TOOL" --host localhost --port "$port" --root "$tmp/root.pem" \
    --name istiod.istio-system.svc --method /test.Echo/Unary --data resolved)
expect "$out" '.code == "OK" and .first == "resolved"' "dialled by name"

out=$(call --method /test.Echo/Unary --data x --name istiod.other.svc)
expect "$out" '.code == "UNAVAILABLE" and (.message | contains("not valid for \"istiod.other.svc\""))' \
    "wrong name"

out=$("$here/$TOOL" --host 127.0.0.1 --port "$port" --root "$tmp/other.pem" --method /test.Echo/Unary --data x)
expect "$out" '.code == "UNAVAILABLE" and (.message | contains("does not verify"))' "wrong root"

# A server that stops answering (stopped, its socket still open): the HTTP/2 PING keepalive
# ends the call instead of waiting forever.
call --method /test.Echo/Sleep --data 20000 --keepalive-ms 300 >"$tmp/keepalive.out" &
caller=$!
sleep 1
kill -STOP "$server_pid"
wait "$caller" || true
kill -CONT "$server_pid"
out=$(cat "$tmp/keepalive.out")
expect "$out" '.code == "UNAVAILABLE" and (.message | contains("keepalive PING"))' "keepalive"

kill "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=
out=$(call --method /test.Echo/Unary --data x)
expect "$out" '.code == "UNAVAILABLE" and (.message | contains("cannot connect"))' "nothing listening"
echo "agent grpc client: ok"
