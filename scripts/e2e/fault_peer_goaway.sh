#!/usr/bin/env bash
# fault_peer_goaway.sh: a peer "ztunnel" (tests/peers/hbone_peer.py server in the pyhbone pod)
# that ends our client's CONNECTs on purpose, and F7 of docs/reliability.md §6b.
#   1. It answers every CONNECT with RST_STREAM(REFUSED_STREAM) before any status: node 1 must log
#      the connection as failed with ztunnel's text (`h2 failed: stream error received: refused
#      stream before processing any application logic`) and count it with flag CONNECT, not as a
#      clean `connection complete`.
#   2. It answers with a GOAWAY whose last stream is below the request (left unprocessed):
#      `h2 failed: connection error received: not a result of an error`, counted the same way.
#   3. F7, GOAWAY mid-traffic: a graceful GOAWAY once a link received 1 MiB, while a 48 MiB
#      transfer runs on it; a transfer started after the GOAWAY must go on a new link (the peer
#      sees no stream opened on the old one after its GOAWAY), and both are byte-exact (the
#      in-flight stream finishes).
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up goaway

"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/pyhbone \
    --out "$MESH_WORK/pyhbone" >/dev/null
PEER_PID=
start_peer() { # log [server args...]
    local log=$1
    shift
    if [ -n "$PEER_PID" ]; then
        kill "$PEER_PID" 2>/dev/null || true
        wait "$PEER_PID" 2>/dev/null || true
    fi
    zt_bg "$(zt_ns_pod 2 pyhbone)" "$log.out" $HBONE_PEER server --listen 0.0.0.0:15008 \
        --cert "$MESH_WORK/pyhbone/cert-chain.pem" --key "$MESH_WORK/pyhbone/key.pem" \
        --ca "$MESH_WORK/ca/root-cert.pem" --expect-client-id spiffe://cluster.local/ns/default/sa/client \
        --expect-authority 198.18.2.4:8080 --log "$log" "$@"
    PEER_PID=$ZT_BG_LAST
    zt_wait_listen "$(zt_ns_pod 2 pyhbone)" 15008 10 || mesh_fail "peer not listening"
}
connect_failures() { # the source side's failed connections with flag CONNECT on node 1
    mesh_metrics 1 | awk '/^istio_tcp_connections_failed_total\{/ && /reporter="source"/ &&
        /response_flags="CONNECT"/ {s += $NF} END {print s + 0}'
}
refused_case() { # mode expected-error
    local mode=$1 error=$2 before after i
    start_peer "$MESH_WORK/refuse-$mode.log" --refuse "$mode"
    before=$(connect_failures)
    if out=$(mesh_xfer 1 client 198.18.2.4:8080 1024); then
        mesh_fail "$mode: the transfer went through a peer that refused it: $out"
    fi
    grep -q '"event": "refused"' "$MESH_WORK/refuse-$mode.log" || mesh_fail "$mode: the peer refused nothing"
    mesh_wait_log 1 "connection complete.*dst.addr=198.18.2.4:15008.*error=\"$error\"" ||
        mesh_fail "$mode: not logged as a failure with ztunnel's text"
    if grep 'connection complete' "$MESH_WORK/zt1.log" | grep 'dst.addr=198.18.2.4:15008' | grep >/dev/null -v 'error='; then
        mesh_fail "$mode: a refused CONNECT was logged as a clean connection complete"
    fi
    for i in $(seq 30); do
        after=$(connect_failures)
        [ "$after" -gt "$before" ] && break
        sleep 0.1
    done
    [ "$after" -eq $((before + 1)) ] || mesh_fail "$mode: counted $before -> $after failed (CONNECT)"
    echo "$mode before any answer: logged as '$error', counted with flag CONNECT"
}
refused_case rst 'h2 failed: stream error received: refused stream before processing any application logic'
refused_case goaway 'h2 failed: connection error received: not a result of an error'

# F7: GOAWAY in the middle of a transfer.
log=$MESH_WORK/goaway.log
start_peer "$log" --goaway-after-bytes 1048576
zt_bg "$(zt_ns_pod 1 client)" "$MESH_WORK/long.out" timeout 60 $PEER client \
    --connect 198.18.2.4:8080 --bytes 50331648 --seed 7
long_pid=$ZT_BG_LAST
zt_wait_line "$log" '"event": "goaway_sent"' 20 || mesh_fail "the peer sent no GOAWAY: $(cat "$log.out")"
out=$(mesh_xfer 1 client 198.18.2.4:8080 524288) || mesh_fail "a new connection after the GOAWAY failed: $out"
wait "$long_pid" || mesh_fail "the in-flight transfer did not finish: $(cat "$MESH_WORK/long.out")"
/usr/bin/python3 - "$log" <<'PY' || mesh_fail "links and streams: $(cat "$log")"
import json, sys
records = [json.loads(line) for line in open(sys.argv[1])]
requests = [r for r in records if r["event"] == "request"]
done = [r for r in records if r["event"] == "stream_done"]
goaway = [r for r in records if r["event"] == "goaway_sent"]
assert len(requests) == 2 and len(done) == 2 and len(goaway) == 1, records
assert all(r["problems"] == [] for r in requests), requests
old = goaway[0]["conn"]
# The in-flight stream finished on the old link; the new one went on another link.
assert requests[0]["conn"] == old and requests[1]["conn"] != old, requests
assert sorted(r["bytes"] for r in done) == [524288, 50331648], done
PY
grep -q 'connection complete.*dst.addr=198.18.2.4:15008.*bytes_sent=50331648' "$MESH_WORK/zt1.log" ||
    mesh_fail "the in-flight transfer is not logged complete"
echo "GOAWAY mid-traffic: the in-flight stream finished, the next one used a new link"
echo "fault_peer_goaway: ok"
