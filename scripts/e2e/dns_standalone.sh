#!/usr/bin/env bash
# dns_standalone.sh runs one pod's DNS proxy unit (src/dns/, through build/tools/dns_serve, until
# the workers serve DNS in every pod; with shared receive buffers as a worker gives its pods)
# inside a pod's network namespace against a real upstream,
# Debian's dnsmasq in another pod, and asks it with real clients: dig over UDP and TCP and
# glibc's resolver (getent ahosts, through a resolv.conf of the pod's own). Cases: a mesh name
# (FQDN and short, A and AAAA), names only the upstream knows, NXDOMAIN, a big answer truncated
# over UDP and whole over TCP (dig retries over TCP by itself), a big TXT record, malformed and
# oversized packets (dropped or FORMERR; the proxy keeps serving), the upstream down (SERVFAIL
# within the forwarder's deadline), and the metrics the unit counted.
# Root only (exit 77 otherwise). Everything lives in zt-dnsPID-* namespaces, removed by a trap,
# with the pod's resolv.conf under /etc/netns/ (ip-netns(8)), removed too.
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/netns/lib.sh
. scripts/e2e/lib/dns_upstream.sh
zt_require_root
BUILD=${BUILD:-build}
for tool in dnsmasq dig getent "$BUILD/tools/dns_serve"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "skip: $tool is missing (scripts/install-deps.sh; make)"
        exit 77
    fi
done
zt_init "dns$$"
work=$(mktemp -d)
client=$(zt_ns_pod 1 client)
cleanup() {
    zt_cleanup
    rm -rf "$work" "/etc/netns/$client"
}
trap cleanup EXIT
if [ -n "${DNS_DEBUG:-}" ]; then
    # DNS_DEBUG=1: print the upstream's and the proxy's logs on the way out.
    trap 'cat "$work"/*.log; cleanup' EXIT
fi

zt_node_create 1
zt_pod_create 1 client 2
zt_pod_create 1 dnsup 53
upstream=$(zt_ns_pod 1 dnsup)
up_ip=$(zt_pod_ip 1 53)
up_ip6=$(zt_pod_ip6 1 53)
dns_upstream_start "$upstream" "$work/upstream.log" "$up_ip" "$up_ip6"

cat >"$work/mesh.json" <<'JSON'
{
  "workloads": [
    {"uid": "c1//v1/Pod/default/client", "name": "client", "namespace": "default",
     "canonicalName": "client", "canonicalRevision": "v1",
     "workloadIps": ["198.18.1.2", "2001:db8:1::2"], "services": {}}
  ],
  "services": [
    {"name": "server", "namespace": "default", "hostname": "server.default.svc.cluster.local",
     "vips": ["/198.19.0.10", "/2001:db8:ffff::10"], "ports": {"80": 8080}}
  ]
}
JSON
# 15053 as a pod's proxy listens, and 127.0.0.1:53 for glibc, which only asks port 53 (the CNI
# redirect of 53 to 15053 comes with the proxy in every pod).
zt_bg "$client" "$work/serve.log" "$BUILD/tools/dns_serve" --config "$work/mesh.json" \
    --client c1//v1/Pod/default/client --listen 127.0.0.1:15053 --listen '[::1]:15053' \
    --listen 127.0.0.1:53 --upstream "$up_ip,[$up_ip6]" --log-level info,dns=debug \
    --metrics-out "$work/metrics.txt" --shared-buffers 16
serve_pid=$ZT_BG_LAST
zt_wait_line "$work/serve.log" '^dns_serve: serving'

failures=0
fail() {
    echo "  FAIL  $*"
    failures=$((failures + 1))
}
# ask EXPECTED DIG-ARGS...: dig +short through the proxy on 127.0.0.1:15053 must print EXPECTED
# (lines sorted, joined by spaces).
ask() {
    local expected=$1
    shift
    local got
    got=$(zt_in "$client" dig +time=6 +tries=1 +short -p 15053 @127.0.0.1 "$@" | sort | xargs)
    if [ "$got" = "$expected" ]; then
        echo "  ok    dig $* -> $got"
    else
        fail "dig $*: expected '$expected', got '$got'"
    fi
}
# status STATUS DIG-ARGS...: the answer's status line must say STATUS.
status() {
    local expected=$1
    shift
    local got
    got=$(zt_in "$client" dig +time=6 +tries=1 -p 15053 @127.0.0.1 "$@" |
        sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
    if [ "$got" = "$expected" ]; then
        echo "  ok    dig $* -> $got"
    else
        fail "dig $*: expected status $expected, got '$got'"
    fi
}

echo "mesh names are answered by the proxy"
ask 198.19.0.10 server.default.svc.cluster.local
ask 198.19.0.10 server
ask 198.19.0.10 server.default
ask 198.19.0.10 +tcp server.default.svc.cluster.local
ask 2001:db8:ffff::10 server.default.svc.cluster.local AAAA
# Found through a stripped search domain: a CNAME to the stripped name, then its address.
ask "198.19.0.10 server.default." server.default.default.svc.cluster.local
flags=$(zt_in "$client" dig -p 15053 @::1 server.default.svc.cluster.local | grep '^;; flags')
case $flags in
    *" aa "*" ra"*) echo "  ok    authoritative with recursion available, over ::1" ;;
    *) fail "mesh answer flags: $flags" ;;
esac

echo "other names are forwarded to dnsmasq and relayed"
ask 198.19.50.1 www.upstream.test
ask 2001:db8:50::1 +tcp www.upstream.test AAAA
status NXDOMAIN nowhere.upstream.test
status NOERROR v6.upstream.test A

echo "a big answer: truncated over UDP, whole over TCP"
tc=$(zt_in "$client" dig +ignore +time=6 +tries=1 -p 15053 @127.0.0.1 big.upstream.test |
    grep '^;; flags')
case $tc in
    *" tc"*) echo "  ok    UDP answer has TC" ;;
    *) fail "big answer over UDP has no TC: $tc" ;;
esac
count=$(zt_in "$client" dig +time=6 +tries=1 +short -p 15053 @127.0.0.1 big.upstream.test | wc -l)
[ "$count" -eq 100 ] && echo "  ok    dig retried over TCP: 100 records" ||
    fail "big answer after the TCP retry: $count records"
count=$(zt_in "$client" dig +tcp +time=6 +tries=1 +short -p 15053 @127.0.0.1 txt.upstream.test TXT |
    wc -c)
[ "$count" -gt 2000 ] && echo "  ok    2 KB TXT over TCP" || fail "TXT over TCP: $count bytes"

echo "glibc's resolver in the pod (getent ahosts, search list and ndots:5 as in Kubernetes)"
mkdir -p "/etc/netns/$client"
cat >"/etc/netns/$client/resolv.conf" <<'CONF'
nameserver 127.0.0.1
search default.svc.cluster.local svc.cluster.local cluster.local
options ndots:5
CONF
got=$(zt_in "$client" timeout 10 getent ahosts server | awk '{print $1}' | sort -u | xargs)
[ "$got" = "198.19.0.10 2001:db8:ffff::10" ] && echo "  ok    getent ahosts server -> $got" ||
    fail "getent ahosts server: '$got'"
got=$(zt_in "$client" timeout 10 getent ahosts www.upstream.test | awk '{print $1}' | sort -u |
    xargs)
[ "$got" = "198.19.50.1 2001:db8:50::1" ] && echo "  ok    getent ahosts www.upstream.test -> $got" ||
    fail "getent ahosts www.upstream.test: '$got'"
if zt_in "$client" timeout 10 getent ahosts nowhere.upstream.test >/dev/null; then
    fail "getent ahosts nowhere.upstream.test resolved"
else
    echo "  ok    getent ahosts nowhere.upstream.test: not found"
fi

echo "malformed and oversized packets; the proxy keeps serving"
formerr=$(zt_in "$client" /usr/bin/python3 - <<'PY'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect(("127.0.0.1", 15053))
s.send(b"\x01\x02\x03")                       # shorter than a header: dropped
s.send(b"\x00\x01" * 3000)                    # 6 KB: larger than any query, dropped
s.send(b"\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fxyz")  # a header and garbage
reply = s.recv(512)
print("id=%02x%02x rcode=%d" % (reply[0], reply[1], reply[3] & 0x0f))
PY
)
[ "$formerr" = "id=abcd rcode=1" ] && echo "  ok    garbage after a header: FORMERR" ||
    fail "garbage: '$formerr'"
ask 198.19.0.10 server.default.svc.cluster.local

echo "the upstream down: SERVFAIL within the deadline"
kill "$DNS_UPSTREAM_PID"
wait "$DNS_UPSTREAM_PID" 2>/dev/null || true
start=$(date +%s%N)
status SERVFAIL www.upstream.test
took_ms=$((($(date +%s%N) - start) / 1000000))
[ "$took_ms" -lt 6000 ] && echo "  ok    SERVFAIL after ${took_ms} ms" ||
    fail "SERVFAIL took ${took_ms} ms"
ask 198.19.0.10 server.default.svc.cluster.local

echo "the unit's metrics"
kill "$serve_pid"
wait "$serve_pid" 2>/dev/null || true
for line in \
    'istio_dns_requests_total{request_query_type="a",request_protocol="udp",source_canonical_service="client",source_canonical_revision="v1"}' \
    'istio_dns_requests_total{request_query_type="txt",request_protocol="tcp",source_canonical_service="client",source_canonical_revision="v1"}' \
    'istio_dns_upstream_failures_total{request_query_type="a",request_protocol="udp",source_canonical_service="client",source_canonical_revision="v1"}' \
    'ztunnel_dns_requests_refused_total{reason="malformed"}' \
    'ztunnel_dns_requests_refused_total{reason="oversized"}'; do
    if grep -qF "$line " "$work/metrics.txt"; then
        echo "  ok    $line"
    else
        fail "metric missing: $line"
    fi
done
grep -q 'src.workload="client" src.namespace="default" query="A" domain="server.default.svc.cluster.local." result="success" endpoints=1' \
    "$work/serve.log" && echo "  ok    dns log record" || fail "no dns log record in serve.log"

if [ "$failures" -gt 0 ]; then
    echo "--- dns_serve log (tail)"
    tail -n 30 "$work/serve.log"
    echo "FAIL: $failures case(s)"
    exit 1
fi
echo "PASS"
