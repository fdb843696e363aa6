#!/usr/bin/env bash
# fault_ztunnel_kill.sh: node 1's ztunnel SIGKILLed under load and started again (a crash, an
# OOM kill, `kubectl delete pod --grace-period=0`). While short connections and long transfers
# run from the captured client, the process dies without any cleanup of its own; the new one
# must have every pod listening again within 1 s of its start (15001, 15006 and 15008 in each
# pod's namespace, as many listening sockets as before), new connections must then succeed byte
# for byte, and nothing may be left behind: no process or thread of the old one, no namespace,
# no extra listening socket, and the new process's fds back to the old one's steady state once
# the load is over; node 2 releases the HBONE connections the dead node held.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
mesh_up zkill

LOAD="/usr/bin/python3 $here_mesh/tests/peers/load_peer.py"
listening() { # POD: the TCP listening sockets in node 1's POD namespace, sorted
    zt_in "$(zt_ns_pod 1 "$1")" ss -Hltn | awk '{print $4}' | sort
}
ns_list() { zt_list | sort; }
node_pids() { ip netns pids "$(zt_ns_node "$1")" | sort; }
pooled() { # N: established HBONE connections of node N's pods
    if [ "$1" = 1 ]; then
        zt_in "$(zt_ns_pod 1 client)" ss -Htn state established '( dport = :15008 )' | wc -l
    else
        zt_in "$(zt_ns_pod 2 server)" ss -Htn state established '( sport = :15008 )' | wc -l
    fi
}

# Steady state before the kill, after one load round like the one run at the end.
out=$(zt_in "$(zt_ns_pod 1 client)" timeout 60 $LOAD --connect 198.18.2.2:8080 --tunnels 20 \
    --bytes 1048576 --short 500 --short-bytes 1024 --concurrency 8 --seed 1) || mesh_fail "warm-up: $out"
sleep 0.5
fds1_before=$(( $(mesh_fds 1) - $(pooled 1) ))
fds2_before=$(( $(mesh_fds 2) - $(pooled 2) ))
listen_client=$(listening client)
listen_client2=$(listening client2)
namespaces=$(ns_list)
echo "before: node1 $fds1_before fds (+ pooled), node2 $fds2_before; client listens on $(echo $listen_client)"

# Load: long transfers and a stream of short connections, killed with the proxy under them.
served=$(wc -l <"$MESH_WORK/peers-server.log")
zt_bg "$(zt_ns_pod 1 client)" "$MESH_WORK/load-long.out" timeout 60 $LOAD \
    --connect 198.18.2.2:8080 --tunnels 10 --bytes 1073741824 --short 0 --seed 2
long_pid=$ZT_BG_LAST
zt_bg "$(zt_ns_pod 1 client)" "$MESH_WORK/load-short.out" timeout 60 $LOAD \
    --connect 198.18.2.2:8080 --tunnels 0 --short 200000 --short-bytes 1024 --concurrency 8 --seed 3
short_pid=$ZT_BG_LAST
timeout 20 bash -c "until [ \$(wc -l <'$MESH_WORK/peers-server.log') -ge $((served + 300)) ]; do sleep 0.05; done" ||
    mesh_fail "the load did not start"
sleep 0.5
old=$MESH_ZT1_PID
old_threads=$(ls "/proc/$old/task" | wc -l)
kill -9 "$old"
wait "$old" 2>/dev/null || true
[ ! -e "/proc/$old" ] || mesh_fail "the killed ztunnel is still there"
# The kernel releases a dead process's sockets a moment after it is reaped.
for i in $(seq 100); do
    [ "$(listening client)" = "*:8080" ] && [ "$(listening client2)" = "*:8080" ] && break
    sleep 0.05
done
[ "$(listening client)" = "*:8080" ] || mesh_fail "the killed ztunnel's listeners stay: $(listening client | tr '\n' ' ')"
echo "SIGKILLed ztunnel $old ($old_threads threads) under load"

# Start again and time until every pod listens as before: a watcher inside each pod's namespace
# polls its listening sockets every 5 ms and notes the time they are all back.
watch_listening() { # POD: prints the time (ns) POD's listening sockets equal those before
    local want
    eval "want=\$(echo \"\$listen_$1\" | wc -l)"
    zt_in "$(zt_ns_pod 1 "$1")" bash -c "for i in \$(seq 2000); do
        [ \$(ss -Hltn | wc -l) -ge $want ] && { date +%s%N; exit 0; }; sleep 0.005; done; exit 1" \
        >"$MESH_WORK/listening-$1" &
}
log_lines=$(wc -l <"$MESH_WORK/zt1.log")
watch_listening client
watcher_client=$!
watch_listening client2
watcher_client2=$!
sleep 0.1  # both watchers polling
start_ns=$(date +%s%N)
mesh_zt_start 1
wait "$watcher_client" && wait "$watcher_client2" || mesh_fail "pods not listening as before after 10 s"
ready_ns=$(sort -n "$MESH_WORK/listening-client" "$MESH_WORK/listening-client2" | tail -n 1)
listen_ms=$(( (ready_ns - start_ns) / 1000000 ))
for pod in client client2; do
    eval "want=\$listen_$pod"
    [ "$(listening "$pod")" = "$want" ] ||
        mesh_fail "$pod listens on $(listening "$pod" | tr '\n' ' '), before: $(echo $want)"
done
echo "every pod listening again $listen_ms ms after start"
tail -n +"$((log_lines + 1))" "$MESH_WORK/zt1.log" | grep -E "config applied|listeners up|ztunnel started" | cut -c1-100
# Within 1 s of start. Wall time means something only on a machine that is not overloaded (a
# shared 2-core builder runs at a load of 10 and more): beyond four runnable tasks per core the
# figure is reported, not judged.
load=$(cut -d' ' -f1 /proc/loadavg)
if [ -n "${ZT_SANITIZER_DIR:-}" ]; then
    echo "a sanitizer build (make e2e-asan): the 1 s bound is not judged"
elif awk -v l="$load" -v c="$(nproc)" 'BEGIN {exit !(l > 4 * c)}'; then
    echo "load average $load on $(nproc) cores: the 1 s bound is not judged in this run"
else
    [ "$listen_ms" -le 1000 ] || mesh_fail "pods listening only after $listen_ms ms (want 1 s)"
fi
kill "$long_pid" "$short_pid" 2>/dev/null || true
wait "$long_pid" "$short_pid" 2>/dev/null || true
echo "the server application saw $(( $(wc -l <"$MESH_WORK/peers-server.log") - served )) connections of the load cut by the kill"
mesh_wait_ready 1 || mesh_fail "node1 not ready after the restart"

# New connections succeed, byte for byte.
out=$(zt_in "$(zt_ns_pod 1 client)" timeout 60 $LOAD --connect 198.18.2.2:8080 --tunnels 20 \
    --bytes 1048576 --short 500 --short-bytes 1024 --concurrency 8 --seed 4) ||
    mesh_fail "after the restart: $out"
echo "after the restart: $out"

# Nothing left behind.
[ "$(ns_list)" = "$namespaces" ] || mesh_fail "namespaces changed: $(ns_list | tr '\n' ' ')"
[ "$(listening client)" = "$listen_client" ] || mesh_fail "client listens on $(listening client | tr '\n' ' ')"
[ "$(node_pids 1)" = "$MESH_ZT1_PID" ] || mesh_fail "processes in node1's namespace: $(node_pids 1 | tr '\n' ' ')"
fds1=0
fds2=0
for i in $(seq 100); do
    fds1=$(( $(mesh_fds 1) - $(pooled 1) ))
    fds2=$(( $(mesh_fds 2) - $(pooled 2) ))
    [ "$fds1" -le "$fds1_before" ] && [ "$fds2" -le "$fds2_before" ] && break
    sleep 0.1
done
echo "after: node1 $fds1 fds (+ $(pooled 1) pooled), node2 $fds2 (+ $(pooled 2) pooled)"
[ "$fds1" -le "$fds1_before" ] || mesh_fail "node1: $fds1 fds besides pooled ones, $fds1_before before the kill"
[ "$fds2" -le "$fds2_before" ] || mesh_fail "node2 holds $fds2 fds besides pooled ones, $fds2_before before"
echo "ztunnel killed and restarted under load: ok"
