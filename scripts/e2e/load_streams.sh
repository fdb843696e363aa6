#!/usr/bin/env bash
# load_streams.sh: loads L3 and L5 of the test plan (issue 14 item 3) between the captured client
# on node 1 and the captured server's echo application on node 2, over HBONE.
#
#   L3: 100 concurrent tunnels of LOAD_STREAM_MIB (16) MiB each way, written and read in random
#       chunk sizes with a half-close at the end, all carried by ONE HBONE connection (node 1's
#       pool puts 100 streams on a link): every tunnel's echo is checked byte for byte against its
#       own payload (tests/peers/load_peer.py), so bytes crossing between streams are caught.
#   L5: 90 fast tunnels as above beside 10 slow readers that read their 16 MiB echo at 10 KiB/s,
#       all on one new HBONE connection. The fast tunnels must all finish while every slow reader
#       still has most of its echo unread (so a slow stream does not hold the shared connection
#       back), and while that backlog is pending, neither ztunnel may hold more than half of it in
#       memory (flow control, not buffering, holds it back). Then the slow readers read the rest
#       and are checked like the others.
# Afterwards, nothing is lost: each ztunnel counted every connection opened and closed and none
# failed, the fds are back to the baseline, and RSS after L5 is within 10 % (plus 8 MiB) of the
# warm baseline taken after L3.
# timeout: 300
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
# One worker per node: each worker has its own pool, so one worker puts all 100 streams on one link.
MESH_ZT_ARGS="--workers 1"
mesh_up streams

mib=${LOAD_STREAM_MIB:-4}
# How long one read may wait: a sanitizer build (RUN_TIMEOUT_SCALE) is slower.
op_timeout=$((60 * ${RUN_TIMEOUT_SCALE:-1}))
rss_kib() {
    local pid
    eval "pid=\$MESH_ZT${1}_PID"
    awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"
}
links() { # established HBONE connections out of the client pod
    zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l
}
fds1=$(mesh_fds 1)
fds2=$(mesh_fds 2)

# --- L3 ---------------------------------------------------------------------------------------
started=$SECONDS
zt_in "$(zt_ns_pod 1 client)" timeout $((200 * ${RUN_TIMEOUT_SCALE:-1})) /usr/bin/python3 "$here_mesh/tests/peers/load_peer.py" \
    --connect 198.18.2.2:8080 --tunnels 100 --bytes $((mib << 20)) --short 0 --random-chunks \
    --timeout "$op_timeout" --seed "$RANDOM" >"$MESH_WORK/l3.out" 2>&1 &
peer=$!
most_links=0
while kill -0 "$peer" 2>/dev/null; do
    n=$(links)
    [ "$n" -gt "$most_links" ] && most_links=$n
    sleep 0.5
done
wait "$peer" || mesh_fail "L3: $(cat "$MESH_WORK/l3.out")"
echo "L3: $(cat "$MESH_WORK/l3.out") ($((SECONDS - started)) s, at most $most_links HBONE connection(s))"
[ "$most_links" = 1 ] || mesh_fail "L3: 100 streams used $most_links HBONE connections, want 1"
mesh_expect_counted 100
warm1=$(rss_kib 1)
warm2=$(rss_kib 2)
echo "L3: warm RSS node1 $warm1 KiB, node2 $warm2 KiB"

# --- L5 ---------------------------------------------------------------------------------------
started=$SECONDS
marker=$MESH_WORK/l5.marker
zt_in "$(zt_ns_pod 1 client)" timeout $((200 * ${RUN_TIMEOUT_SCALE:-1})) /usr/bin/python3 "$here_mesh/tests/peers/load_peer.py" \
    --connect 198.18.2.2:8080 --tunnels 90 --bytes $((mib << 20)) --short 0 --random-chunks \
    --slow 10 --slow-rate 10240 --slow-bytes $((16 << 20)) --marker "$marker" \
    --timeout "$op_timeout" --seed "$RANDOM" >"$MESH_WORK/l5.out" 2>&1 &
peer=$!
for i in $(seq $((1800 * ${RUN_TIMEOUT_SCALE:-1}))); do
    [ -e "$marker" ] && break
    kill -0 "$peer" 2>/dev/null || break
    sleep 0.1
done
[ -e "$marker" ] || mesh_fail "L5: the fast tunnels did not finish: $(cat "$MESH_WORK/l5.out")"
# The fast tunnels are done; the slow readers' backlog is pending. Where is it?
held1=$(($(rss_kib 1) - warm1))
held2=$(($(rss_kib 2) - warm2))
l5_links=$(links)
pending=$(jq '[.slow_pending[]] | add' "$marker")
min_pending=$(jq '.slow_pending | min' "$marker")
touch "$marker.go"
wait "$peer" || mesh_fail "L5: $(cat "$MESH_WORK/l5.out")"
echo "L5: $(cat "$MESH_WORK/l5.out") ($((SECONDS - started)) s)"
echo "L5: when the fast tunnels finished: slow readers' unread echo $pending bytes (least $min_pending)," \
    "RSS above warm: node1 $held1 KiB, node2 $held2 KiB; $l5_links HBONE connection(s)"
[ "$l5_links" = 1 ] || mesh_fail "L5: the tunnels used $l5_links HBONE connections, want 1"
# Each slow reader had read at most a few seconds' worth (10 KiB/s) of its 16 MiB when the fast
# ones finished: they were not waited for.
[ "$min_pending" -ge $((8 << 20)) ] ||
    mesh_fail "L5: a slow reader had only $min_pending bytes unread when the fast tunnels finished"
for n in 1 2; do
    eval "held=\$held$n"
    [ "$held" -le $((pending / 2048)) ] ||
        mesh_fail "L5: node$n holds $held KiB more than warm while $pending bytes wait for slow readers"
done
mesh_expect_counted 200

# --- nothing lost ------------------------------------------------------------------------------
for n in 1 2; do
    failed=$(mesh_metrics $n | awk '/^istio_tcp_connections_failed_total\{/ {s+=$NF} END {print s+0}')
    [ "$failed" = 0 ] || mesh_fail "node$n counted $failed failed connections"
done
pooled1=$(links)
pooled2=$(zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l)
for i in $(seq 50); do
    after1=$(mesh_fds 1)
    after2=$(mesh_fds 2)
    [ "$after1" -le $((fds1 + pooled1)) ] && [ "$after2" -le $((fds2 + pooled2)) ] && break
    sleep 0.1
done
echo "fds: node1 $fds1 -> $after1 ($pooled1 pooled), node2 $fds2 -> $after2 ($pooled2 pooled)"
[ "$after1" -le $((fds1 + pooled1)) ] || mesh_fail "node1 leaked fds: $fds1 -> $after1"
[ "$after2" -le $((fds2 + pooled2)) ] || mesh_fail "node2 leaked fds: $fds2 -> $after2"
# The memory the slow readers' backlog took is freed as their tunnels close and handed back to
# the kernel on a worker's next tick (once the heap holds 4 MiB more free memory): give it 3 s.
for n in 1 2; do
    eval "warm=\$warm$n"
    for i in $(seq 30); do
        now=$(rss_kib $n)
        [ "$now" -le $((warm * 11 / 10 + 8192)) ] && break
        sleep 0.1
    done
    echo "RSS node$n: warm $warm KiB, after L5 $now KiB"
    [ "$now" -le $((warm * 11 / 10 + 8192)) ] || mesh_fail "node$n RSS $now KiB, warm baseline $warm KiB"
done
echo "load streams: ok"
