#!/usr/bin/env bash
# operator_starvation.sh: a pod that opens idle sockets to ztunnel's readiness (:15021) and
# metrics (:15020) ports must not make the kubelet's probe or a Prometheus scrape fail (issue 14:
# 40 idle sockets used to turn readiness into 503 and break scrapes). A real `ztunnel run`; the
# "pod" holds 40, then 1,000 idle connections to each port from 127.0.0.2 while the probe and
# the scrape come from 127.0.0.1. Refusals are counted in ztunnel_http_requests_refused_total,
# and the idle sockets are dropped at the 2 s request deadline.
# timeout: 90
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BUILD:-build}/ztunnel
[ -x "$BIN" ] || { echo "missing $BIN (run make)"; exit 1; }
command -v curl >/dev/null || { echo "skip: curl missing"; exit 77; }
WORK=$(mktemp -d /tmp/zt-starve-XXXXXX)
. tests/scripts/lib/local_ztunnel.sh
holder=
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null || true
    lz_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; tail -n 20 "$WORK/zt.log" >&2; exit 1; }

lz_start || fail "start"

hold() { # COUNT: hold COUNT idle sockets from 127.0.0.2 to each port until killed
    rm -f "$WORK/held"
    /usr/bin/python3 - "$1" "$LZ_READY" "$LZ_METRICS" "$WORK/held" <<'PY' &
import resource, socket, sys, time
count, ports, marker = int(sys.argv[1]), [int(p) for p in sys.argv[2:4]], sys.argv[4]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * count + 64)), hard))
held = []
for _ in range(count):
    for port in ports:
        s = socket.socket()
        s.setblocking(False)
        s.bind(("127.0.0.2", 0))
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        held.append(s)
open(marker, "w").write(str(len(held)))
time.sleep(60)
PY
    holder=$!
    timeout 20 bash -c "until [ -s '$WORK/held' ]; do sleep 0.05; done" || fail "the idle sockets were not opened"
    sleep 0.3
}
probe() { curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$LZ_READY/healthz/ready" || true; }
scrape() { curl --noproxy '*' -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$LZ_METRICS/metrics" || true; }

for count in 40 1000; do
    hold "$count"
    p=$(probe)
    m=$(scrape)
    [ "$p" = 200 ] || fail "$count idle sockets: the probe got $p"
    [ "$m" = 200 ] || fail "$count idle sockets: the scrape got $m"
    echo "$count idle sockets per port from one pod: probe $p, scrape $m"
    kill "$holder" 2>/dev/null || true
    wait "$holder" 2>/dev/null || true
    holder=
done

metrics=$(curl --noproxy '*' -s "http://127.0.0.1:$LZ_METRICS/metrics")
for server in readiness metrics; do
    n=$(echo "$metrics" | grep "^ztunnel_http_requests_refused_total{server=\"$server\"" |
        awk '{s+=$NF} END {print s+0}')
    [ "$n" -gt 0 ] || fail "no refusal counted for $server"
    echo "$server: $n refusals counted ($(echo "$metrics" | grep "server=\"$server\"" | sed 's/.*reason=//' | tr '\n' ' '))"
done
echo ok
