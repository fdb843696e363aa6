#!/usr/bin/env bash
# relay-standin.sh: socat behind zt_relay's command line, so the netns tests and the benchmark can
# be developed and checked before build/tools/zt_relay exists (ZT_RELAY=scripts/netns/relay-standin.sh).
# Accepts `--listen IP:PORT --target IP:PORT` and ignores zt_relay's tuning options; prints
# "zt_relay: listening on IP:PORT" once socat listens. Never used when the real tool is built.
set -euo pipefail
listen= target=
while [ $# -gt 0 ]; do
    case $1 in
        --listen) listen=$2; shift 2 ;;
        --target) target=$2; shift 2 ;;
        --workers|--max-conns|--idle-timeout) shift 2 ;;
        *) echo "relay-standin: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$listen" ] && [ -n "$target" ] || { echo "usage: $0 --listen IP:PORT --target IP:PORT" >&2; exit 2; }
# socat wants "TCP6-LISTEN:port,bind=[addr]" / "TCP:[addr]:port" for IPv6.
lhost=${listen%:*} lport=${listen##*:}
case $lhost in
    \[*) laddr="TCP6-LISTEN:$lport,bind=$lhost" ;;
    *) laddr="TCP4-LISTEN:$lport,bind=$lhost" ;;
esac
socat "$laddr,fork,reuseaddr,backlog=4096" "TCP:$target" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; exit 0' TERM INT
for _ in $(seq 100); do
    if ss -Hltn "sport = :$lport" | grep >/dev/null .; then
        echo "zt_relay: listening on $listen"
        break
    fi
    sleep 0.05
done
wait $pid
