#!/usr/bin/env bash
# load_short_conns.sh: load L2 of the test plan (docs/reliability.md §6c, issue 14 item 3). From the
# captured client on node 1 to the captured server's echo application on node 2, over HBONE
# through both ztunnels: L2_CONNS (20,000) short connections, L2_CONCURRENCY (64) at a time, each
# sending 1 KiB, half-closing and checking its 1 KiB echo byte for byte (tests/peers/load_peer.py).
# A warm-up of 1,000 such connections comes first, so the baselines are the warm ones.
# Nothing is lost: the application saw every connection; node 1 (source) and node 2 (destination)
# each counted every one opened and closed and none failed; both ztunnels' fds are back to their
# warm baseline except for the pooled HBONE connections (counted independently with ss) and their
# RSS is within 10 % (plus 8 MiB) of it.
# TIME_WAIT: the client closes first, so its pod keeps one TIME_WAIT socket per connection for
# 60 s (as does node 2's ztunnel towards the application, which closes first there too). Both use
# the namespace's ephemeral ports (32768-60999 in a new namespace; ztunnel binds with
# IP_BIND_ADDRESS_NO_PORT so the port is chosen at connect), so the scenario checks that the
# TIME_WAIT sockets it leaves stay below that range: a connection failing for want of a port
# would fail the run anyway, this says why.
# timeout: 240
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up shortconns

conns=${L2_CONNS:-20000}
concurrency=${L2_CONCURRENCY:-64}
warmup=1000
rss_kib() {
    local pid
    eval "pid=\$MESH_ZT${1}_PID"
    awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"
}
served() {
    if [ -f "$MESH_WORK/peers-server.log" ]; then wc -l <"$MESH_WORK/peers-server.log"; else echo 0; fi
}
short_conns() { # short_conns N: N short connections from the client pod; prints load_peer's line
    zt_in "$(zt_ns_pod 1 client)" timeout $((180 * ${RUN_TIMEOUT_SCALE:-1})) /usr/bin/python3 \
        "$here_mesh/tests/peers/load_peer.py" --connect 198.18.2.2:8080 --tunnels 0 --short "$1" \
        --short-bytes 1024 --concurrency "$concurrency" --seed "$RANDOM"
}
links1() { zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l; }
links2() { zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l; }
time_wait() { zt_in "$(zt_ns_pod "$1" "$2")" ss -Htn state time-wait | wc -l; }

fds1=$(mesh_fds 1)
fds2=$(mesh_fds 2)
out=$(short_conns "$warmup") || mesh_fail "warm-up: $out"
mesh_expect_counted "$warmup"
warm1=$(rss_kib 1)
warm2=$(rss_kib 2)
served_before=$(served)
echo "warm: RSS node1 $warm1 KiB, node2 $warm2 KiB; fds node1 $fds1, node2 $fds2 (before warm-up)"

started=$SECONDS
out=$(short_conns "$conns") || mesh_fail "L2: $out"
echo "L2: $out ($((SECONDS - started)) s)"

served=$(($(served) - served_before))
[ "$served" = "$conns" ] || mesh_fail "the server application saw $served connections, want $conns"
total=$((warmup + conns))
mesh_expect_counted "$total"
for n in 1 2; do
    failed=$(mesh_metrics $n | awk '/^istio_tcp_connections_failed_total\{/ {s+=$NF} END {print s+0}')
    [ "$failed" = 0 ] || mesh_fail "node$n counted $failed failed connections"
done

# Ports: the TIME_WAIT sockets left behind fit in each namespace's ephemeral range.
for pod in "1 client" "2 server"; do
    # shellcheck disable=SC2086
    set -- $pod
    read -r low high < <(zt_in "$(zt_ns_pod "$1" "$2")" cat /proc/sys/net/ipv4/ip_local_port_range)
    tw=$(time_wait "$1" "$2")
    echo "TIME_WAIT in pod $2: $tw, ephemeral ports $low-$high"
    [ "$tw" -lt $((high - low + 1)) ] || mesh_fail "pod $2: $tw TIME_WAIT sockets fill its $low-$high ports"
done

# fds: back to the baseline, plus the HBONE connections the pool keeps (by design) and nothing else.
pooled1=$(links1)
pooled2=$(links2)
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

# RSS: within 10 % (plus 8 MiB) of the warm baseline.
for n in 1 2; do
    eval "warm=\$warm$n"
    now=$(rss_kib $n)
    echo "RSS node$n: warm $warm KiB, after L2 $now KiB"
    [ "$now" -le $((warm * 11 / 10 + 8192)) ] || mesh_fail "node$n RSS $now KiB, warm baseline $warm KiB"
done
echo "load short conns: ok"
