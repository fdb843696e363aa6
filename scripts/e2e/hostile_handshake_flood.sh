#!/usr/bin/env bash
# hostile_handshake_flood.sh: issue 14's "stalled handshakes hold memory". An uncaptured pod on
# node 1 floods node 2's server pod's 15008 three times with 4,000 connections that each send one
# real TLS 1.3 ClientHello and nothing more (tests/peers/handshake_flood.py), held 3 s, then
# closed. Checks, for node 2's ztunnel:
#   - at most --max-pending-handshakes (1024) per worker are kept; the excess is closed at once
#     and counted as ztunnel_connections_refused_total{reason="pending_handshakes_limit"};
#   - meanwhile readiness answers 200 and a byte-exact transfer from a captured pod succeeds;
#   - after each flood its RSS returns within 10 % of the warm baseline (a link in its handshake
#     holds no 128 KiB receive buffer, and the worker hands freed heap back to the kernel with
#     malloc_trim once its links fell far below their peak: glibc keeps it otherwise), and its
#     fds return to their baseline.
# Prints the baseline, the peak and the after-flood RSS of each round.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up hsflood
FLOOD="/usr/bin/python3 $here_mesh/tests/peers/handshake_flood.py"

# pooled: node 2's HBONE connections from node 1's pools (a transfer may open one more: node 1
# has two workers, each with its own pool), which the fd baseline allows for.
pooled() { zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l; }
rss2() { awk '/^VmRSS/ {print $2}' "/proc/$MESH_ZT2_PID/status"; } # KiB
refused() {
    mesh_metrics 2 | awk '/^ztunnel_connections_refused_total\{/ && /pending_handshakes_limit/ {s+=$NF} END {print s+0}'
}

# A warm baseline: transfers through both ztunnels until each of node 1's two workers holds a
# pooled link to node 2, then a quiet moment. The transfer during a flood must ride a pooled link:
# a new one would be a handshake beyond node 2's cap, refused like the flood's. The kernel picks
# the worker of each transfer, so three warm-up transfers could leave one worker without a link.
for i in $(seq 40); do
    mesh_xfer 1 client 198.18.2.2:8080 1048576 >/dev/null || mesh_fail "warm-up transfer"
    [ "$i" -ge 3 ] && [ "$(pooled)" -ge 2 ] && break
done
[ "$(pooled)" -ge 2 ] || mesh_fail "node 1's workers did not both pool a link to node 2 in 40 transfers"
sleep 3
base=$(rss2)
fds=$(($(mesh_fds 2) - $(pooled)))
echo "node2 baseline: RSS $base KiB, $fds fds besides $(pooled) pooled links ($i warm-up transfers)"

for round in 1 2 3; do
    out="$MESH_WORK/flood$round.out"
    zt_in "$(zt_ns_pod 1 plain)" bash -c "ulimit -n 16384 && exec $FLOOD --connect 198.18.2.2:15008 --clients 4000 --hold 3" \
        >"$out" 2>&1 &
    flood=$!
    peak=$(rss2)
    checked=0
    while kill -0 "$flood" 2>/dev/null; do
        r=$(rss2)
        [ "$r" -gt "$peak" ] && peak=$r
        if [ "$checked" = 0 ] && [ "$(refused)" -gt 0 ]; then
            # The cap is hit: the node still serves its pods and its probe.
            code=$(zt_in "$(zt_ns_node 2)" curl -s -o /dev/null -w '%{http_code}' --max-time 3 http://127.0.0.1:15021/healthz/ready || true)
            [ "$code" = 200 ] || mesh_fail "readiness $code during the flood"
            mesh_xfer 1 client 198.18.2.2:8080 65536 >/dev/null || mesh_fail "transfer during the flood"
            checked=1
        fi
        sleep 0.2
    done
    wait "$flood" || mesh_fail "flood $round: $(cat "$out")"
    echo "flood $round: $(cat "$out")"
    after=$(rss2)
    for i in $(seq 100); do
        after=$(rss2)
        [ "$after" -le $((base * 110 / 100)) ] && [ "$(mesh_fds 2)" -le $((fds + $(pooled))) ] && break
        sleep 0.1
    done
    echo "round $round: RSS base $base KiB, peak $peak KiB, after $after KiB; fds $fds -> $(mesh_fds 2) with $(pooled) pooled"
    [ "$after" -le $((base * 110 / 100)) ] || mesh_fail "RSS $after KiB after flood $round, baseline $base KiB"
    [ "$(mesh_fds 2)" -le $((fds + $(pooled))) ] || mesh_fail "fds $(mesh_fds 2) after flood $round, baseline $fds + $(pooled) pooled"
    held=$(sed -n 's/.*"held": \([0-9]*\).*/\1/p' "$out")
    [ "$held" -le 2048 ] || mesh_fail "node2 kept $held stalled handshakes, cap is 2 x 1024"
    [ "$checked" = 1 ] || mesh_fail "the pending-handshake cap was never hit (held $held)"
done
echo "refused at the cap: $(refused)"
mesh_xfer 1 client 198.18.2.2:8080 1048576 >/dev/null || mesh_fail "transfer after the floods"
echo "hostile_handshake_flood: ok"
