#!/usr/bin/env bash
# fault_blackhole.sh: F5 of docs/reliability.md §6b, a destination that drops every packet (a netns
# DROP rule: no RST, no ICMP, the connect just hangs). Both of ztunnel's 10 s connect deadlines:
#   - outbound: the HBONE workload pyhbone's 15008 is blackholed. Node 1's dial gives up after
#     10 s with ztunnel's `connection timed out, maybe a NetworkPolicy is blocking HBONE port
#     15008`; meanwhile the pool is unaffected: transfers to the server pod over their own link
#     keep succeeding, and the dead dial leaves no link behind;
#   - inbound: the server pod's port 9090 is blackholed. Node 2 answers the CONNECT 503 after
#     10 s (`connection timed out`, flag CONNECT); node 1 logs `http status: 503`.
# Both client connections are closed within 10 s + the 1 s tick (bounded at 20 s here), and
# both ztunnels' fd counts are back to their baseline afterwards.
# timeout: 120
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up blackhole

zt_in "$(zt_ns_pod 2 pyhbone)" iptables -I INPUT 1 -p tcp --dport 15008 -j DROP
zt_in "$(zt_ns_pod 2 server)" iptables -I INPUT 1 -p tcp --dport 9090 -j DROP

# fds N: node N's fds but its pooled HBONE links to the server pod, which each worker keeps by
# design (one per worker that served a connection).
fds() {
    local pooled
    if [ "$1" = 1 ]; then
        pooled=$(zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l)
    else
        pooled=$(zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l)
    fi
    echo $(( $(mesh_fds "$1") - pooled ))
}
out=$(mesh_xfer 1 client 198.18.2.2:8080 65536) || mesh_fail "warm-up: $out"
sleep 0.5
fds1=$(fds 1)
fds2=$(fds 2)

# Each client prints how long it took to fail (bash's SECONDS, counted from its own start).
timed_client() { # NAME DEST
    zt_bg "$(zt_ns_pod 1 client)" "$MESH_WORK/$1.out" timeout 30 bash -c \
        "$PEER client --connect $2 --bytes 1024 --timeout 25; rc=\$?; echo elapsed=\$SECONDS; exit \$rc"
}
timed_client dial 198.18.2.4:8080
dial_pid=$ZT_BG_LAST
timed_client app 198.18.2.2:9090
app_pid=$ZT_BG_LAST

# While both hang: the pooled link to the server pod still carries new connections.
for i in 1 2 3 4 5; do
    out=$(mesh_xfer 1 client 198.18.2.2:8080 262144) || mesh_fail "the pool was affected ($i): $out"
    sleep 1
done

if wait "$dial_pid"; then mesh_fail "a transfer through a blackholed peer succeeded"; fi
if wait "$app_pid"; then mesh_fail "a transfer to a blackholed application succeeded"; fi
took=
for name in dial app; do
    t=$(sed -n 's/^elapsed=//p' "$MESH_WORK/$name.out")
    [ -n "$t" ] && [ "$t" -le 20 ] && [ "$t" -ge 9 ] ||
        mesh_fail "$name: failed after '${t}'s, not at the 10 s deadline: $(cat "$MESH_WORK/$name.out")"
    took="$took $name ${t}s"
done

mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.4:15008.*error="connection timed out, maybe a NetworkPolicy is blocking HBONE port 15008"' ||
    mesh_fail "node 1 did not log the dial timeout"
mesh_wait_log 2 'connection complete.*direction="inbound".*error="connection timed out"' ||
    mesh_fail "node 2 did not log the application connect timeout"
mesh_wait_log 1 'connection complete.*dst.addr=198.18.2.2:15008.*error="http status: 503"' ||
    mesh_fail "node 1 did not log the 503"
mesh_metrics 2 | grep '^istio_tcp_connections_failed_total{' | grep 'response_flags="CONNECT"' |
    grep >/dev/null 'reporter="destination"' || mesh_fail "node 2 did not count the timeout with flag CONNECT"

# Nothing left behind: both nodes back to their baseline, pooled links aside.
for i in $(seq 50); do
    [ "$(fds 1)" -le "$fds1" ] && [ "$(fds 2)" -le "$fds2" ] && break
    sleep 0.1
done
[ "$(fds 1)" -le "$fds1" ] || mesh_fail "node 1 fds: $(fds 1) (pooled links aside), baseline $fds1"
[ "$(fds 2)" -le "$fds2" ] || mesh_fail "node 2 fds: $(fds 2) (pooled links aside), baseline $fds2"
echo "blackholed peer and application failed at the deadline ($took), pool unaffected, fds at baseline"
echo "fault_blackhole: ok"
