#!/usr/bin/env bash
# load_ci.sh: the CI load case (issue 8 item 3). From the captured client on node 1 to the captured
# server on node 2, over HBONE through both ztunnels: 200 concurrent tunnels echoing 4 MiB each
# way, then 5,000 short connections (1 KiB each way, 16 at a time), every byte checked by
# tests/peers/load_peer.py. Afterwards: the server application saw every connection, each
# ztunnel counted 5,200 opened and as many closed, and both ztunnels' open fds are back to their
# baseline except for the pooled HBONE connections (counted independently with ss).
# timeout: 180
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up loadci

tunnels=200
short=5000
total=$((tunnels + short))
fds1=$(mesh_fds 1)
fds2=$(mesh_fds 2)
served() {
    if [ -f "$MESH_WORK/peers-server.log" ]; then wc -l <"$MESH_WORK/peers-server.log"; else echo 0; fi
}
served_before=$(served)

started=$SECONDS
out=$(zt_in "$(zt_ns_pod 1 client)" timeout 120 /usr/bin/python3 "$here_mesh/tests/peers/load_peer.py" \
    --connect 198.18.2.2:8080 --tunnels "$tunnels" --bytes 4194304 --short "$short" \
    --short-bytes 1024 --concurrency 16 --seed "$RANDOM") || mesh_fail "load: $out"
echo "load: $out ($((SECONDS - started)) s)"

served=$(($(served) - served_before))
[ "$served" = "$total" ] || mesh_fail "the server application saw $served connections, want $total"

# Every connection is counted once opened and once closed, on both sides (closing is logged after
# the last byte, so allow a moment).
mesh_expect_counted "$total"
for n in 1 2; do
    failed=$(mesh_metrics $n | awk '/^istio_tcp_connections_failed_total\{/ {s+=$NF} END {print s+0}')
    [ "$failed" = 0 ] || mesh_fail "node$n counted $failed failed connections"
done

# fds: back to the baseline, plus the HBONE connections the pool keeps (by design) and nothing
# else. The pool's sockets live in the pods' namespaces, where ss sees them.
pooled1=$(zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l)
pooled2=$(zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l)
after1=$fds1
after2=$fds2
for i in $(seq 50); do
    after1=$(mesh_fds 1)
    after2=$(mesh_fds 2)
    [ "$after1" -le $((fds1 + pooled1)) ] && [ "$after2" -le $((fds2 + pooled2)) ] && break
    sleep 0.1
done
echo "fds: node1 $fds1 -> $after1 ($pooled1 pooled), node2 $fds2 -> $after2 ($pooled2 pooled)"
[ "$after1" -le $((fds1 + pooled1)) ] || mesh_fail "node1 leaked fds: $fds1 -> $after1 with $pooled1 pooled"
[ "$after2" -le $((fds2 + pooled2)) ] || mesh_fail "node2 leaked fds: $fds2 -> $after2 with $pooled2 pooled"
[ "$pooled1" -ge 1 ] && [ "$pooled1" -le 4 ] || mesh_fail "node1 keeps $pooled1 pooled HBONE connections"
echo "load: ok"
