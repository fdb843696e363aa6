#!/usr/bin/env bash
# load_attack.sh: load L6 of the test plan (issue 14 item 3). Legitimate load flows from the
# captured client on node 1 to the server on node 2 over HBONE (50 tunnels × 4 MiB each way, then
# 1,000 short connections, every byte checked by tests/peers/load_peer.py) while two attackers
# holding valid mesh certificates hit the server pod's :15008 from the uncaptured pod for the
# whole run (tests/peers/hbone_peer.py attack): Rapid Reset (B11, HEADERS CONNECT + RST_STREAM
# as fast as Python sends them, reconnecting whenever node 2 ends the connection) and a PING flood
# that never reads (B13).
# Passes when the legitimate load lost nothing (0 mismatches, every connection counted opened and
# closed, none failed), node 2 counted the attack as HTTP/2 glitches and ended the attackers'
# connections, the application saw few of the reset streams' CONNECTs (fewer than one in ten:
# most are refused or cancelled before any upstream connect), and afterwards both ztunnels' fds
# are back to the baseline.
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up attack

"$ZT_BIN" ca issue --ca-dir "$MESH_WORK/ca" --identity spiffe://cluster.local/ns/default/sa/attacker \
    --out "$MESH_WORK/attacker" >/dev/null
fds1=$(mesh_fds 1)
fds2=$(mesh_fds 2)
served() { # connections the server application saw from the attacker's pod
    grep -c '198\.18\.1\.4' "$MESH_WORK/peers-server.log" 2>/dev/null || true
}
attack_served_before=$(served)

attack() { # KIND
    zt_in "$(zt_ns_pod 1 plain)" timeout $((200 * ${RUN_TIMEOUT_SCALE:-1})) $HBONE_PEER attack --kind "$1" \
        --connect 198.18.2.2:15008 --authority 198.18.2.2:8080 --seconds 600 \
        --stop-file "$MESH_WORK/attack.stop" \
        --ca "$MESH_WORK/ca/root-cert.pem" --cert "$MESH_WORK/attacker/cert-chain.pem" \
        --key "$MESH_WORK/attacker/key.pem" >"$MESH_WORK/attack-$1.out" 2>&1 &
}
attack reset
reset_pid=$!
attack ping
ping_pid=$!
# Let the attack start before the load does.
sleep 1

# How long one read may wait: a sanitizer build (RUN_TIMEOUT_SCALE) is slower.
scale=${RUN_TIMEOUT_SCALE:-1}
started=$SECONDS
out=$(zt_in "$(zt_ns_pod 1 client)" timeout $((180 * scale)) /usr/bin/python3 "$here_mesh/tests/peers/load_peer.py" \
    --connect 198.18.2.2:8080 --tunnels 50 --bytes 4194304 --short 1000 --short-bytes 1024 \
    --concurrency 16 --timeout $((60 * scale)) --seed "$RANDOM") || mesh_fail "load under attack: $out"
echo "load under attack: $out ($((SECONDS - started)) s)"

# The attack ran during the whole load: stop it (by a file: the attackers then print their totals;
# a PING flooder blocked in a write notices within its 5 s socket timeout).
for pid in $reset_pid $ping_pid; do
    kill -0 "$pid" 2>/dev/null || mesh_fail "an attacker ended early: $(cat "$MESH_WORK"/attack-*.out)"
done
touch "$MESH_WORK/attack.stop"
wait "$reset_pid" "$ping_pid" 2>/dev/null || true
echo "attack reset: $(cat "$MESH_WORK/attack-reset.out")"
echo "attack ping: $(cat "$MESH_WORK/attack-ping.out")"

# Counted: the legitimate connections, opened and closed, on both sides (node 2's series of the
# client's identity only: the attacker's streams are node 2's to count as it sees fit).
counted() { # NODE REPORTER
    mesh_metrics "$1" | grep '^istio_tcp_connections_\(opened\|closed\)_total{' |
        grep "reporter=\"$2\"" | grep 'source_principal="spiffe://cluster.local/ns/default/sa/client"' |
        awk '/_opened_/ {o+=$NF} /_closed_/ {c+=$NF} END {print o+0, c+0}'
}
for i in $(seq 50); do
    [ "$(counted 1 source)" = "1050 1050" ] && [ "$(counted 2 destination)" = "1050 1050" ] && break
    sleep 0.1
done
[ "$(counted 1 source)" = "1050 1050" ] && [ "$(counted 2 destination)" = "1050 1050" ] ||
    mesh_fail "opened/closed: node1 $(counted 1 source), node2 $(counted 2 destination), want 1050 each"
for n in 1 2; do
    failed=$(mesh_metrics $n | awk '/^istio_tcp_connections_failed_total\{/ {s+=$NF} END {print s+0}')
    echo "node$n failed connections: $failed"
done
failed1=$(mesh_metrics 1 | awk '/^istio_tcp_connections_failed_total\{/ {s+=$NF} END {print s+0}')
[ "$failed1" = 0 ] || mesh_fail "node1 counted $failed1 failed connections (the legitimate ones)"
glitches=$(mesh_metrics 2 | awk '/^ztunnel_h2_glitches_total\{/ {s+=$NF} END {print s+0}')
echo "node2 HTTP/2 glitches: $glitches"
mesh_metrics 2 | grep '^ztunnel_h2_glitches_total{' || true
[ "$glitches" -gt 0 ] || mesh_fail "node2 counted no HTTP/2 glitches under attack"
attack_served=$(($(served) - attack_served_before))
resets=$(grep -o '"frames": [0-9]*' "$MESH_WORK/attack-reset.out" | awk '{print int($2 / 2)}')
echo "the application saw $attack_served connections from the attacker's $resets reset streams"
[ -n "$resets" ] && [ "$resets" -gt 0 ] || mesh_fail "the Rapid Reset attacker sent nothing"
[ "$attack_served" -le $((resets / 10)) ] ||
    mesh_fail "the application saw $attack_served connects for $resets reset streams"

pooled1=$(zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l)
pooled2=$(zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l)
for i in $(seq 100); do
    after1=$(mesh_fds 1)
    after2=$(mesh_fds 2)
    [ "$after1" -le $((fds1 + pooled1)) ] && [ "$after2" -le $((fds2 + pooled2)) ] && break
    sleep 0.1
done
echo "fds: node1 $fds1 -> $after1 ($pooled1 pooled), node2 $fds2 -> $after2 ($pooled2 pooled)"
[ "$after1" -le $((fds1 + pooled1)) ] || mesh_fail "node1 leaked fds: $fds1 -> $after1"
[ "$after2" -le $((fds2 + pooled2)) ] || mesh_fail "node2 leaked fds: $fds2 -> $after2"
echo "load under attack: ok"
