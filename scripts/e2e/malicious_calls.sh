#!/usr/bin/env bash
# malicious_calls.sh: calls aimed at ztunnel's own ports from inside the mesh (ztunnel's
# malicious_calls_inpod). From a captured pod (client) and an uncaptured one (plain), both on
# node 1, to 15001, 15006, 15008, 15000, 15020, 15021, 15053 and 15080 of (a) the other node's
# captured server pod, (b) the pod's own IP, (c) 127.0.0.1 inside the pod and (d) node 1's own
# address (ztunnel's network namespace, "ztunnel-node" in ztunnel's test). Each cell sends
# ztunnel's probe bytes "hello world\r\n\r\n" and its outcome is pinned in the table below, from
# docs/ztunnel-reference.md §1 (illegal ports; docs/contract.md §3 "loops are refused"):
#   - outbound (15001) refuses a loopback destination on a ztunnel port ("recursive call"), and
#     any other destination that is a workload goes through HBONE, where the server's inbound
#     refuses a target port of ztunnel's (503): the client sees its connection closed, no byte;
#   - inbound plaintext (15006) refuses an original destination on a ztunnel port: closed;
#   - 15008 without TLS gets a TLS alert and the end of the connection;
#   - admin (15000) listens on node loopback only: no cell may get an answer from it;
#   - stats (15020) and readiness (15021) listen on the node's wildcard: they answer the garbage
#     with HTTP 400 when reached (directly, or through outbound passthrough from a captured pod);
#   - nothing listens on the pods' own 15000/15020/15021/15080 (no SOCKS5), nor on 15053 of the
#     pod's IP; the DNS proxy listens on 127.0.0.1:15053 of captured pods only, and takes the
#     probe's first two bytes as a DNS-over-TCP length (26725): it waits for the rest, silent,
#     past the probe's wait (its 5 s request timeout closes it later).
# Then a peer with a valid mesh certificate misbehaves at the HTTP/2 level on the server's 15008
# (tests/peers/hbone_peer.py misbehave: a second SETTINGS, PRIORITY frames, a GET answered 400).
# Afterwards: the refusals were logged, and counted by the protection counters README.md names
# (connections refused and TLS handshake failures on both nodes, HTTP/2 glitches on the server's),
# the matrix caused a bounded number of connection records (a loop would multiply them), fds are
# back to their baseline, opened == closed on both nodes, and normal traffic still flows
# byte-exact (captured and uncaptured clients) with admin still local.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up malicious

# from target port outcome
table=$(cat <<'TABLE'
client server 15001 closed
client server 15006 closed
client server 15008 closed
client server 15000 closed
client server 15020 closed
client server 15021 closed
client server 15053 closed
client server 15080 closed
client self 15001 closed
client self 15006 closed
client self 15008 tls_alert
client self 15000 refused
client self 15020 refused
client self 15021 refused
client self 15053 refused
client self 15080 refused
client localhost 15001 closed
client localhost 15006 closed
client localhost 15008 tls_alert
client localhost 15000 refused
client localhost 15020 refused
client localhost 15021 refused
client localhost 15053 open
client localhost 15080 refused
client node 15001 closed
client node 15006 closed
client node 15008 closed
client node 15000 closed
client node 15020 http400
client node 15021 http400
client node 15053 closed
client node 15080 closed
plain server 15001 closed
plain server 15006 closed
plain server 15008 tls_alert
plain server 15000 closed
plain server 15020 closed
plain server 15021 closed
plain server 15053 closed
plain server 15080 closed
plain self 15001 refused
plain self 15006 refused
plain self 15008 refused
plain self 15000 refused
plain self 15020 refused
plain self 15021 refused
plain self 15053 refused
plain self 15080 refused
plain localhost 15001 refused
plain localhost 15006 refused
plain localhost 15008 refused
plain localhost 15000 refused
plain localhost 15020 refused
plain localhost 15021 refused
plain localhost 15053 refused
plain localhost 15080 refused
plain node 15001 refused
plain node 15006 refused
plain node 15008 refused
plain node 15000 refused
plain node 15020 http400
plain node 15021 http400
plain node 15053 refused
plain node 15080 refused
TABLE
)
address() { # from target
    case $2 in
        server) echo 198.18.2.2 ;;
        self) [ "$1" = client ] && echo 198.18.1.2 || echo 198.18.1.4 ;;
        localhost) echo 127.0.0.1 ;;
        node) zt_node_ip 1 ;;
    esac
}

# fd_kinds N: node N's ztunnel fds as "sockets pipes others".
fd_kinds() {
    local pid
    eval "pid=\$MESH_ZT${1}_PID"
    ls -l "/proc/$pid/fd" | awk 'NR > 1 { if (index($NF, "socket:")) s++; else if (index($NF, "pipe:")) p++; else o++ }
        END { print s + 0, p + 0, o + 0 }'
}
# pooled N POD...: ztunnel's established HBONE sockets (either end on 15008) in those pods, the
# connections a pool keeps by design.
pooled() {
    local n=$1 pod total=0 c
    shift
    for pod in "$@"; do
        c=$(zt_in "$(zt_ns_pod "$n" "$pod")" ss -Htnp state established '( sport = :15008 or dport = :15008 )' |
            grep -c '"ztunnel"' || true)
        total=$((total + c))
    done
    echo "$total"
}
read -r sock1 pipe1 other1 < <(fd_kinds 1)
read -r sock2 pipe2 other2 < <(fd_kinds 2)
records() { grep -Ec 'connection (complete|failed)' "$MESH_WORK/zt$1.log" || true; }
before1=$(records 1)
before2=$(records 2)

failures=0
cells=0
for from in client plain; do
    args=()
    while read -r f target port want; do
        [ "$f" = "$from" ] && args+=(--target "$(address "$from" "$target"):$port")
    done <<<"$table"
    zt_in "$(zt_ns_pod 1 "$from")" timeout 60 $PEER probe --wait 3 "${args[@]}" \
        >"$MESH_WORK/probe-$from.out" || mesh_fail "probe from $from: $(cat "$MESH_WORK/probe-$from.out")"
    while read -r f target port want; do
        [ "$f" = "$from" ] || continue
        addr=$(address "$from" "$target"):$port
        got=$(grep -F "\"target\": \"$addr\"" "$MESH_WORK/probe-$from.out" |
            sed -nE 's/.*"outcome": "([a-z0-9_]+)".*/\1/p')
        cells=$((cells + 1))
        if [ "$got" = "$want" ]; then
            printf '  %-6s -> %-9s %-17s %s\n' "$from" "$target" "$addr" "$got"
        else
            printf '  %-6s -> %-9s %s  got %s, want %s: %s\n' "$from" "$target" "$addr" "$got" "$want" \
                "$(grep -F "\"$addr\"" "$MESH_WORK/probe-$from.out")" >&2
            failures=$((failures + 1))
        fi
    done <<<"$table"
done
[ "$cells" = 64 ] || mesh_fail "checked $cells cells, want 64"
[ "$failures" = 0 ] || mesh_fail "$failures of $cells cells differ from the table"

# The refusals are ztunnel's, and logged: outbound loopback, inbound HBONE and inbound plaintext.
mesh_wait_log 1 'connection failed.*dst.addr=127.0.0.1:15001.*attempted recursive call to ourselves' ||
    mesh_fail "node1 did not log the outbound self call"
mesh_wait_log 2 'connection failed.*attempted recursive call to ourselves' ||
    mesh_fail "node2 did not log the inbound refusal"

# An authenticated peer that misbehaves at the HTTP/2 level.
"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/rogue \
    --out "$MESH_WORK/rogue" >/dev/null
zt_in "$(zt_ns_pod 1 plain)" timeout 30 $HBONE_PEER misbehave --connect 198.18.2.2:15008 \
    --authority 198.18.2.2:8080 --ca "$MESH_WORK/ca/root-cert.pem" \
    --cert "$MESH_WORK/rogue/cert-chain.pem" --key "$MESH_WORK/rogue/key.pem" \
    >"$MESH_WORK/misbehave.out" 2>&1 || mesh_fail "misbehaving peer: $(cat "$MESH_WORK/misbehave.out")"
echo "misbehaving peer: $(cat "$MESH_WORK/misbehave.out")"

# The protection counters saw all of it (`sum` adds a family's samples; grep -c counts series).
sum() { echo "$1" | grep "^$2{" | awk '{s+=$NF} END {print s+0}'; }
for n in 1 2; do
    m=$(mesh_metrics "$n")
    for family in ztunnel_connections_refused_total ztunnel_tls_handshake_failures_total; do
        [ "$(sum "$m" $family)" -gt 0 ] || mesh_fail "node$n $family is 0: $(echo "$m" | grep ztunnel_)"
        echo "node$n $family: $(echo "$m" | grep -c "^$family{") series, $(sum "$m" $family) in all"
    done
done
m=$(mesh_metrics 2)
[ "$(sum "$m" ztunnel_h2_glitches_total)" -gt 0 ] ||
    mesh_fail "node2 counted no HTTP/2 glitch: $(echo "$m" | grep ztunnel_)"
echo "node2 ztunnel_h2_glitches_total: $(echo "$m" | grep '^ztunnel_h2_glitches_total{' | tr '\n' ' ')"
echo "$m" | grep >/dev/null '^ztunnel_connections_refused_total{reason="self_call"}' ||
    mesh_fail "node2 did not count the inbound self call"

# No loop: each cell that reached a ztunnel accounts for at most a few connection records.
sleep 0.5
n1=$(($(records 1) - before1))
n2=$(($(records 2) - before2))
echo "connection records during the matrix: node1 $n1, node2 $n2"
[ "$n1" -le 80 ] && [ "$n2" -le 40 ] || mesh_fail "too many connection records, a loop?"
for n in 1 2; do
    m=$(mesh_metrics "$n")
    [ "$(sum "$m" istio_tcp_connections_opened_total)" = "$(sum "$m" istio_tcp_connections_closed_total)" ] ||
        mesh_fail "node$n opened != closed: $(echo "$m" | grep connections_)"
done
# fds: every new socket is a pooled HBONE connection (to server, and client's pool to its own
# 15008 with the accepted end), pipes are at most each worker's cached splice pair (2 x 2 x 2).
read -r s p o < <(fd_kinds 1)
echo "node1 fds: sockets $sock1 -> $s, pipes $pipe1 -> $p, others $other1 -> $o, pooled $(pooled 1 client client2)"
[ "$s" = $((sock1 + $(pooled 1 client client2))) ] && [ "$p" -le $((pipe1 + 8)) ] && [ "$o" = "$other1" ] ||
    mesh_fail "node1 fds: $(zt_in "$(zt_ns_pod 1 client)" ss -tanp)"
read -r s p o < <(fd_kinds 2)
echo "node2 fds: sockets $sock2 -> $s, pipes $pipe2 -> $p, others $other2 -> $o, pooled $(pooled 2 server)"
[ "$s" = $((sock2 + $(pooled 2 server))) ] && [ "$p" -le $((pipe2 + 8)) ] && [ "$o" = "$other2" ] ||
    mesh_fail "node2 fds: $(zt_in "$(zt_ns_pod 2 server)" ss -tanp)"

# ztunnel still serves: byte-exact through HBONE and through inbound plaintext; admin still local.
out=$(mesh_xfer 1 client 198.18.2.2:8080 1048576) || mesh_fail "captured transfer after the matrix: $out"
echo "captured after: $out"
out=$(mesh_xfer 1 plain 198.18.2.2:8080 1048576) || mesh_fail "uncaptured transfer after the matrix: $out"
echo "uncaptured after: $out"
zt_in "$(zt_ns_node 1)" curl -sf -o /dev/null http://127.0.0.1:15000/config_dump || mesh_fail "admin"
echo "malicious calls: ok ($cells cells)"
