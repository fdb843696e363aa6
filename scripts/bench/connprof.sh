#!/usr/bin/env bash
# connprof.sh: a deterministic cost of one new pooled connection. It brings up the two-node mesh
# of TREE (a checkout with a built build/ztunnel; default this one, so an older checkout can be
# measured with its own mesh and config format) with both ztunnels under
# `valgrind --tool=callgrind`, warms the pool with WARM connections, zeroes both profiles, makes
# N connections from the client pod to the server pod's echo server (198.18.2.2:7000: connect,
# 1 byte each way, close; one at a time) and dumps both profiles into OUT (zt1.* client side,
# zt2.* server side). scripts/bench/connprof.py turns the dumps into instructions and allocations
# per connection. Instruction counts do not depend on the machine's load, unlike the CPU
# seconds of `make bench T=hbone PARTS=connrate`. Needs root; exits 77 when not root.
# Usage: scripts/bench/connprof.sh OUT [TREE] (environment: N=1000 WARM=100)
set -euo pipefail
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
TREE=$(cd "${2:-$(dirname "$0")/../..}" && pwd)
HERE=$(cd "$(dirname "$0")/../.." && pwd)
N=${N:-1000}
WARM=${WARM:-100}
MESH_LOG_LEVEL=${MESH_LOG_LEVEL:-warn}
export BUILD=build
cd "$TREE"
. "$TREE/scripts/e2e/lib/mesh.sh"
REAL_ZT="$ZT_BIN"
SHIM=$(mktemp /tmp/connprof-shim.XXXXXX.so)
gcc -O2 -shared -fPIC -o "$SHIM" "$HERE/scripts/bench/connprof_shim.c" -ldl -luring
IDLE=${IDLE:-20}
# Only `ztunnel run` goes under callgrind; `ca init`/`ca issue` run as they are.
WRAP=$(mktemp /tmp/connprof-zt.XXXXXX)
cat >"$WRAP" <<WRAPEOF
#!/bin/sh
if [ "\$1" = run ]; then
    LD_PRELOAD=$SHIM exec valgrind --tool=callgrind --collect-atstart=yes --callgrind-out-file=$OUT/zt.%p \
        --vgdb=yes "$REAL_ZT" "\$@"
fi
exec "$REAL_ZT" "\$@"
WRAPEOF
chmod +x "$WRAP"
ZT_BIN=$WRAP
# Under callgrind the ztunnels start some 50 times slower than the mesh's 10 s allow.
mesh_wait_ready() {
    for _ in $(seq "${READY_TRIES:-240}"); do
        zt_in "$(zt_ns_node "$1")" curl -sf -o /dev/null "http://127.0.0.1:15021/healthz/ready" &&
            return 0
        sleep 0.5
    done
    return 1
}
mesh_up cprof
rm -f "$WRAP"
for ns in "$(zt_ns_pod 1 client)" "$(zt_ns_pod 2 server)" "$(zt_ns_node 1)" "$(zt_ns_node 2)"; do
    zt_in "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1 >/dev/null
done
zt_bg "$(zt_ns_pod 2 server)" "$MESH_WORK/echo.log" "$HERE/build/tools/echo_server" 0.0.0.0:7000
zt_wait_listen "$(zt_ns_pod 2 server)" 7000 10 || mesh_fail "echo_server"
conns() {
    zt_in "$(zt_ns_pod 1 client)" timeout 1200 /usr/bin/python3 -c '
import socket, sys
n, bad = int(sys.argv[1]), 0
for _ in range(n):
    try:
        s = socket.create_connection(("198.18.2.2", 7000), timeout=30)
        s.sendall(b"x")
        if s.recv(1) != b"x":
            bad += 1
        s.close()
    except OSError:
        bad += 1
print(f"conns={n} errors={bad}")
' "$1"
}
echo "connprof: warm-up $WARM"
conns "$WARM"
sleep 1
# The shim's capped waits cost instructions per second of wall time: an idle interval measures
# that rate (dump 1) so connprof.py can subtract it from the connections' interval (dump 2).
zero() { for pid in $MESH_ZT1_PID $MESH_ZT2_PID; do callgrind_control -z "$pid" >/dev/null; done; }
dump() { for pid in $MESH_ZT1_PID $MESH_ZT2_PID; do callgrind_control -d "$pid" >/dev/null; done; }
zero
t0=$(date +%s.%N)
sleep "$IDLE"
dump
t1=$(date +%s.%N)
zero
t2=$(date +%s.%N)
echo "connprof: measured $N"
conns "$N" | tee "$OUT/conns.txt"
dump
t4=$(date +%s.%N)
echo "idle_s=$(echo "$t1 - $t0" | bc) conns_s=$(echo "$t4 - $t2" | bc)" >"$OUT/times.txt"
cat "$OUT/times.txt"
mv "$OUT/zt.$MESH_ZT1_PID.1" "$OUT/zt1.idle.callgrind"
mv "$OUT/zt.$MESH_ZT2_PID.1" "$OUT/zt2.idle.callgrind"
mv "$OUT/zt.$MESH_ZT1_PID.2" "$OUT/zt1.callgrind"
mv "$OUT/zt.$MESH_ZT2_PID.2" "$OUT/zt2.callgrind"
rm -f "$SHIM"
echo "$N" >"$OUT/n.txt"
echo "connprof: dumps in $OUT"
