#!/usr/bin/env bash
# fault_memory_limit.sh: docs/reliability.md F15, a memory limit on ztunnel's cgroup: new work is
# shed before the OOM killer acts. Node 1's ztunnel is restarted inside a fresh memory cgroup
# zt-<tag> (cgroup v1: under the memory controller's mount; v2: under the cgroup2 root when it
# delegates the memory controller) with --memory-shed-ratio 0.5 --memory-resume-ratio 0.45, and
# warmed up. Its limit is then set so that it sheds SHED_ABOVE_MIB (22) above its warm working
# set (usage minus inactive page cache, what ztunnel itself reads): the limit is twice that.
# Marks lower than the defaults leave room, between the mark and the limit, for what the
# connections already open may still buffer (they are never refused; here up to the HTTP/2
# connection window, 16 MiB, per HBONE connection and worker), so the OOM killer has nothing to do.
#   1. SLOW (16) slow readers in the client pod (tests/peers/load_peer.py --slow) leave their
#      echoes in node 1, which holds what the HTTP/2 windows let in (about 34 MiB): the working
#      set passes the mark and node 1 reports ztunnel_memory_pressure 1, with one "memory
#      pressure" log line.
#   2. Under pressure, new connections are shed at once, nothing hangs: the client pod's
#      (outbound, closed at node 1's accept) and the server pod's towards the client pod
#      (inbound: node 1 closes the new HBONE connection before TLS, or answers 503 on a pooled
#      one); each is counted in ztunnel_connections_refused_total{reason="memory_pressure"}.
#   3. The slow readers are let go: every byte of every stream, slow and fast, arrives exactly.
#   4. Their memory is freed and handed back to the kernel: the working set falls below the
#      resume mark (18 MiB above the warm working set; about 12 MiB above it stays, measured),
#      the episode's end is logged once, and new connections both ways succeed again.
# Throughout, ztunnel is never OOM-killed: the cgroup's oom_kill count stays 0 and the process
# lives. Skipped (77) without root or without a writable memory cgroup.
# timeout: 150
set -euo pipefail
. "$(dirname "$0")/lib/mesh.sh"
zt_require_root

SHED_ABOVE_MIB=${SHED_ABOVE_MIB:-22}
SLOW=${SLOW:-16}

# The memory controller: v1's own hierarchy, or v2's root when it hands memory to children.
cg_version=
cg_root=$(awk '$3 == "cgroup" && $4 ~ /(^|,)memory(,|$)/ {print $2; exit}' /proc/mounts)
if [ -n "$cg_root" ]; then
    cg_version=1
else
    cg_root=$(awk '$3 == "cgroup2" {print $2; exit}' /proc/mounts)
    if [ -n "$cg_root" ] && grep -qw memory "$cg_root/cgroup.subtree_control" 2>/dev/null; then
        cg_version=2
    fi
fi
if [ -z "$cg_version" ]; then
    echo "skip: no memory cgroup controller mounted"
    exit 77
fi
CG="$cg_root/zt-memlim$$"
if ! mkdir "$CG" 2>/dev/null; then
    echo "skip: cannot create a cgroup under $cg_root"
    exit 77
fi
if [ "$cg_version" = 1 ]; then
    cg_limit_file=memory.limit_in_bytes
    cg_usage_file=memory.usage_in_bytes
    cg_inactive_key=total_inactive_file
    cg_oom_file=memory.oom_control
else
    cg_limit_file=memory.max
    cg_usage_file=memory.current
    cg_inactive_key=inactive_file
    cg_oom_file=memory.events
fi
# cg_remove: moves what is left in the cgroup to the root (the trap runs after mesh_down has
# stopped ztunnel, so normally nothing), then removes it.
cg_remove() {
    local pid
    if [ -d "$CG" ]; then
        for pid in $(cat "$CG/cgroup.procs" 2>/dev/null); do
            echo "$pid" >"$cg_root/cgroup.procs" 2>/dev/null || true
        done
        rmdir "$CG" 2>/dev/null || { sleep 0.5 && rmdir "$CG" 2>/dev/null; } || true
    fi
}
trap cg_remove EXIT
cg_working_set() { # usage minus inactive page cache, in bytes
    local usage inactive
    usage=$(cat "$CG/$cg_usage_file")
    inactive=$(awk -v k="$cg_inactive_key" '$1 == k {print $2}' "$CG/memory.stat")
    echo $((usage > ${inactive:-0} ? usage - ${inactive:-0} : 0))
}
cg_oom_kills() { awk '$1 == "oom_kill" {print $2}' "$CG/$cg_oom_file"; }

mesh_up memlim
trap 'mesh_down; cg_remove' EXIT
LOAD="/usr/bin/python3 $here_mesh/tests/peers/load_peer.py"

# Node 1's ztunnel again, this time inside the cgroup from its first instruction. `ip netns exec`
# gives it a mount namespace with a fresh /sys and no cgroup file system, so the shell it runs
# first mounts the memory hierarchy on /sys/fs/cgroup (as a container runtime does for a pod;
# private to that namespace), writes its own pid into the new cgroup, then becomes ztunnel.
if [ "$cg_version" = 1 ]; then cg_mount="cgroup memory"; else cg_mount="cgroup2 rw"; fi
MESH_ZT_ARGS="--memory-shed-ratio 0.5 --memory-resume-ratio 0.45"
# shellcheck disable=SC2016,SC2086
mesh_zt_restart 1 sh -c 'mount -t "$0" -o "$1" zt-memcg /sys/fs/cgroup &&
    echo $$ >"/sys/fs/cgroup/$2/cgroup.procs" && shift 2 && exec "$@"' \
    $cg_mount "$(basename "$CG")" || mesh_fail "node1 did not restart in the cgroup"
grep -qx "$MESH_ZT1_PID" "$CG/cgroup.procs" || mesh_fail "node1's ztunnel is not in $CG"
mesh_wait_log 1 'memory cgroup.*zt-memlim' || mesh_fail "node1 did not find its cgroup"

pressure() { mesh_metrics 1 | awk '/^ztunnel_memory_pressure / {print $2}'; }
shed() { mesh_metrics 1 | awk '/^ztunnel_connections_refused_total\{/ && /reason="memory_pressure"/ {s+=$NF} END {print s+0}'; }
# probe NODE POD TARGET COUNT: COUNT connections from POD to TARGET, each sending a few bytes and
# waiting up to 5 s for an answer; prints their outcomes, counted ("closed", "data", "open"...).
probe() {
    local args=() i
    for i in $(seq "$4"); do args+=(--target "$3"); done
    zt_in "$(zt_ns_pod "$1" "$2")" $PEER probe --wait 5 "${args[@]}" |
        jq -r .outcome | sort | uniq -c | awk '{printf "%s%s=%s", (NR > 1 ? " " : ""), $2, $1}'
}

# Warm-up: both directions once, then the baseline.
mesh_xfer 1 client 198.18.2.2:8080 $((4 << 20)) >/dev/null || mesh_fail "warm-up outbound"
mesh_xfer 2 server 198.18.1.2:8080 65536 >/dev/null || mesh_fail "warm-up inbound"
sleep 1
warm=$(cg_working_set)
limit=$((2 * (warm + (SHED_ABOVE_MIB << 20))))
echo "$limit" >"$CG/$cg_limit_file" || mesh_fail "cannot set the memory limit"
echo "node1: cgroup v$cg_version, warm working set $((warm >> 10)) KiB, limit $((limit >> 10)) KiB" \
    "(sheds from $((limit / 2 >> 10)) KiB, accepts again below $((limit * 9 / 20 >> 10)) KiB)"
[ "$(pressure)" = 0 ] || mesh_fail "node1 under pressure before any load"

# 1. Slow readers: node 1 holds their echoes.
marker=$MESH_WORK/slow.marker
zt_in "$(zt_ns_pod 1 client)" timeout 120 $LOAD --connect 198.18.2.2:8080 --tunnels 4 \
    --bytes 65536 --short 0 --slow "$SLOW" --slow-rate 1024 --slow-bytes $((8 << 20)) \
    --marker "$marker" --timeout 60 --seed "$RANDOM" >"$MESH_WORK/load.out" 2>&1 &
load=$!
for i in $(seq 300); do
    [ "$(pressure)" = 1 ] && break
    kill -0 "$load" 2>/dev/null || break
    sleep 0.1
done
echo "node1 working set $(($(cg_working_set) >> 10)) KiB, pressure $(pressure)"
[ "$(pressure)" = 1 ] || mesh_fail "node1 never reported memory pressure: $(cat "$MESH_WORK/load.out")"
[ "$(grep -c 'memory pressure: shedding new connections' "$MESH_WORK/zt1.log")" = 1 ] ||
    mesh_fail "the episode's start is not logged exactly once"
# The gauges show where the cgroup stands: its limit as the kernel keeps it, a working set.
m=$(mesh_metrics 1)
gauge_limit=$(echo "$m" | awk '/^ztunnel_memory_limit_bytes / {print $2}')
gauge_ws=$(echo "$m" | awk '/^ztunnel_memory_working_set_bytes / {print $2}')
[ "$gauge_limit" = "$(cat "$CG/$cg_limit_file")" ] ||
    mesh_fail "ztunnel_memory_limit_bytes '$gauge_limit', cgroup limit $(cat "$CG/$cg_limit_file")"
[ "${gauge_ws:-0}" -gt 0 ] 2>/dev/null || mesh_fail "ztunnel_memory_working_set_bytes '$gauge_ws'"

# 2. New work is shed both ways, at once.
out=$(probe 1 client 198.18.2.2:8080 5)
echo "outbound under pressure: $out"
[ "$out" = "closed=5" ] || mesh_fail "outbound connections under pressure: $out, want closed=5"
in=$(probe 2 server 198.18.1.2:8080 5)
echo "inbound under pressure: $in"
[ "$in" = "closed=5" ] || mesh_fail "inbound connections under pressure: $in, want closed=5"
n=$(shed)
echo "node1 shed $n connections"
[ "$n" -ge 10 ] || mesh_fail "node1 counted $n connections shed, want >= 10"
[ -e "$marker" ] || mesh_fail "the fast tunnels did not finish beside the slow readers"

# 3. The held transfers finish byte-exact.
touch "$marker.go"
wait "$load" || mesh_fail "slow readers: $(cat "$MESH_WORK/load.out")"
echo "load: $(cat "$MESH_WORK/load.out")"

# 4. Memory back, new connections carried again.
for i in $(seq 150); do
    [ "$(pressure)" = 0 ] && break
    sleep 0.1
done
echo "node1 working set $(($(cg_working_set) >> 10)) KiB, pressure $(pressure)"
[ "$(pressure)" = 0 ] || mesh_fail "node1 still sheds after the load ended"
mesh_wait_log 1 'memory pressure over: accepting new connections' 1 ||
    mesh_fail "the episode's end is not logged"
[ "$(grep -c 'memory pressure over' "$MESH_WORK/zt1.log")" = 1 ] ||
    mesh_fail "the episode's end is logged more than once"
mesh_xfer 1 client 198.18.2.2:8080 $((1 << 20)) >/dev/null || mesh_fail "outbound after the pressure"
mesh_xfer 2 server 198.18.1.2:8080 $((1 << 20)) >/dev/null || mesh_fail "inbound after the pressure"

kills=$(cg_oom_kills)
echo "node1: oom_kill ${kills:-?}, failcnt $(cat "$CG/memory.failcnt" 2>/dev/null || echo -)"
[ "${kills:-0}" = 0 ] || mesh_fail "the OOM killer acted in node1's cgroup: $kills"
kill -0 "$MESH_ZT1_PID" || mesh_fail "node1's ztunnel died"
echo "fault_memory_limit: ok"
