#!/usr/bin/env bash
# run.sh [SECTION]: `make bench`. Runs a benchmark section inside a fresh network namespace
# (loopback only, zt-bench<PID>-lo, removed by a trap) so nothing leaves the machine and nothing
# else on it shares the sockets. Sections: `relay` (the default; scripts/bench/relay.py writes
# docs/bench/relay.md and relay.png). An `hbone` section is added by issue 9.
# Environment: RUNS (3), DURATION (5 s), and the knobs listed in scripts/bench/relay.py.
# Needs root (it makes a namespace); exits 77 when not root.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns/lib.sh
section=${1:-relay}
BUILD=${BUILD:-build}
export BUILD

case $section in
    relay) ;;
    *) echo "run.sh: unknown section '$section' (known: relay)" >&2; exit 2 ;;
esac
zt_require_root
for tool in iperf3 haproxy socat gnuplot /usr/bin/python3 "$BUILD/tools/echo_server" \
    "$BUILD/tools/pingpong" "$BUILD/tools/connrate" "$BUILD/tools/idle_conns"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run.sh: $tool is missing (scripts/install-deps.sh; make)" >&2
        exit 1
    fi
done

zt_init "bench$$"
ns="zt-$ZT_TAG-lo"
trap 'zt_cleanup' EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
# The connection-rate test opens and closes tens of thousands of connections per run; loopback
# TIME_WAIT reuse (tcp_tw_reuse=2, the default) plus the wide port range keep connect() from
# running out of ports. These sysctls are per network namespace.
zt_in "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.core.somaxconn=4096 \
    net.ipv4.tcp_max_syn_backlog=8192 >/dev/null
# 10,000 idle relayed connections need about 20,000 fds in the relay: take the hard limit (root
# without CAP_SYS_RESOURCE, as in this sandbox, cannot go beyond it; relay.py scales down).
ulimit -n "$(ulimit -Hn)"

echo "bench: section $section in netns $ns ($(nproc) cores, kernel $(uname -r), RUNS=${RUNS:-3} DURATION=${DURATION:-5})"
zt_in "$ns" /usr/bin/python3 scripts/bench/relay.py
