#!/usr/bin/env bash
# ops_servers.sh drives build/tools/ops_server (the operations components wired as `ztunnel run`
# will wire them) over loopback with curl: readiness before and after "config load", metric lines
# with exact values and labels after scripted traffic, promtool on the live scrape, OpenMetrics
# and gzip negotiation, /config_dump through `python3 -m json.tool`, /logging, 404/405, access-log
# tokens on stdout, and the drain: SIGTERM turns readiness 500 at once and the process exits 0
# within the drain deadline plus one second; POST /quitquitquit does the same.
# timeout: 120
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
command -v curl >/dev/null || { echo "curl missing"; exit 77; }
tool="$BUILD/tools/ops_server"
work=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

c() { curl --noproxy '*' -s --max-time 5 "$@"; }
fail() { echo "FAIL: $*" >&2; [ -f "$work/out.log" ] && tail -n 20 "$work/out.log" >&2; exit 1; }

start() {  # start DRAIN_MS [INFLIGHT_MS]: the transfer in flight ends INFLIGHT_MS into the drain
    rm -f "$work/ports" "$work/ready"
    ISTIO_META_ISTIO_VERSION=1.24.0-zt RUST_LOG=info "$tool" --port-file "$work/ports" \
        --ready-file "$work/ready" --drain-ms "$1" --inflight-ms "${2:--1}" >"$work/out.log" 2>&1 &
    pid=$!
    timeout 10 bash -c "until [ -s '$work/ports' ]; do sleep 0.05; done" || fail "no port file"
    read -r admin metrics readiness <"$work/ports"
}

start 1500

# Readiness before and after the config is applied.
code=$(c -o "$work/body" -w '%{http_code}' "127.0.0.1:$readiness/healthz/ready")
[ "$code $(cat "$work/body")" = "500 not ready, pending: state manager" ] ||
    fail "readiness before load: $code $(cat "$work/body")"
touch "$work/ready"
timeout 5 bash -c "until [ \"\$(curl --noproxy '*' -s 127.0.0.1:$readiness/healthz/ready)\" = ready ]; do sleep 0.05; done" \
    || fail "never ready"
[ "$(c -o /dev/null -w '%{http_code}' -X POST "127.0.0.1:$readiness/healthz/ready")" = 405 ] || fail "readiness POST"

# Metrics after the scripted traffic: 3 good connections and 1 denied, exact lines.
c "127.0.0.1:$metrics/metrics" >"$work/metrics.txt"
labels='reporter="source",source_workload="curl",source_canonical_service="unknown",source_canonical_revision="unknown",source_workload_namespace="default",source_principal="spiffe://cluster.local/ns/default/sa/curl",source_app="unknown",source_version="unknown",source_cluster="unknown",destination_service="echo.default.svc.cluster.local",destination_service_namespace="unknown",destination_service_name="unknown",destination_workload="echo",destination_canonical_service="unknown",destination_canonical_revision="unknown",destination_workload_namespace="default",destination_principal="spiffe://cluster.local/ns/default/sa/echo",destination_app="unknown",destination_version="unknown",destination_cluster="unknown",request_protocol="tcp"'
for want in \
    "istio_tcp_connections_opened_total{$labels,response_flags=\"-\",connection_security_policy=\"mutual_tls\"} 4" \
    "istio_tcp_connections_closed_total{$labels,response_flags=\"-\",connection_security_policy=\"mutual_tls\"} 3" \
    "istio_tcp_connections_closed_total{$labels,response_flags=\"DENY\",connection_security_policy=\"mutual_tls\"} 1" \
    "istio_tcp_connections_failed_total{$labels,response_flags=\"DENY\",connection_security_policy=\"mutual_tls\"} 1" \
    "istio_tcp_received_bytes_total{$labels,response_flags=\"-\",connection_security_policy=\"mutual_tls\"} 3000" \
    "istio_tcp_sent_bytes_total{$labels,response_flags=\"-\",connection_security_policy=\"mutual_tls\"} 6000" \
    'istio_build{component="ztunnel",tag="1.24.0-zt"} 1' \
    'ztunnel_config_reloads_total{result="success"} 1' \
    'ztunnel_pods{state="up"} 2' \
    'ztunnel_log_lines_dropped_total 0'; do
    grep -qxF "$want" "$work/metrics.txt" || fail "missing metric line: $want"
done
[ "$(grep -c '^istio_tcp_connections_opened_total{' "$work/metrics.txt")" = 1 ] || fail "extra opened series"
grep -q '^process_open_fds [0-9]' "$work/metrics.txt" || fail "process_open_fds"
if command -v promtool >/dev/null; then
    timeout 20 promtool check metrics <"$work/metrics.txt" || fail "promtool on the live scrape"
fi
[ "$(c -o /dev/null -w '%{http_code}' "127.0.0.1:$metrics/stats/prometheus")" = 200 ] || fail "/stats/prometheus"
[ "$(c -o /dev/null -w '%{http_code}' "127.0.0.1:$metrics/other")" = 404 ] || fail "metrics 404"
ctype=$(c -o "$work/om.txt" -w '%{content_type}' -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5' "127.0.0.1:$metrics/metrics")
case "$ctype" in application/openmetrics-text*) ;; *) fail "openmetrics content type: $ctype" ;; esac
[ "$(tail -n 1 "$work/om.txt")" = "# EOF" ] || fail "openmetrics # EOF"
enc=$(c -o "$work/gz" -w '%{header_json}' -H 'Accept-Encoding: gzip' "127.0.0.1:$metrics/metrics" | tr -d ' \n')
echo "$enc" | grep >/dev/null '"content-encoding":\["gzip"\]' || fail "no gzip content-encoding"
gunzip -c "$work/gz" | grep >/dev/null '^istio_build{' || fail "gzip body"

# Admin.
c "127.0.0.1:$admin/config_dump" | /usr/bin/python3 -m json.tool >/dev/null || fail "config_dump json"
c "127.0.0.1:$admin/config_dump" | /usr/bin/python3 tests/scripts/check_config_dump.py ||
    fail "config_dump shape"
c "127.0.0.1:$admin/" | grep >/dev/null config_dump || fail "admin index"
# ztunnel's admin also answers on [::1] when loopback has IPv6.
if ip -6 addr show dev lo 2>/dev/null | grep >/dev/null '::1/128'; then
    c -g "http://[::1]:$admin/" | grep >/dev/null config_dump || fail "admin on [::1]"
fi
[ "$(c -o /dev/null -w '%{http_code}' "127.0.0.1:$admin/nope")" = 404 ] || fail "admin 404"
[ "$(c -o /dev/null -w '%{http_code}' "127.0.0.1:$admin/quitquitquit")" = 405 ] || fail "quitquitquit GET"
[ "$(c -o /dev/null -w '%{http_code}' "127.0.0.1:$admin/logging")" = 405 ] || fail "logging GET"
out=$(c -X POST "127.0.0.1:$admin/logging?level=access:debug")
[ "$out" = "current log level is info,access=debug" ] || fail "logging: $out"
out=$(c -X POST "127.0.0.1:$admin/logging?level=info&reset")
[ "$out" = "current log level is info" ] || fail "logging reset: $out"
[ "$(c -o /dev/null -w '%{http_code}' -X POST "127.0.0.1:$admin/logging?level=loud")" = 400 ] || fail "logging 400"

# Drain on SIGTERM: readiness 500 at once, exit 0 within deadline + 1 s.
start_ns=$(date +%s%N)
kill -TERM "$pid"
timeout 2 bash -c "until [ \"\$(curl --noproxy '*' -s 127.0.0.1:$readiness/healthz/ready)\" = 'not ready, pending: draining' ]; do sleep 0.02; done" \
    || fail "readiness did not fail at drain"
rc=0
wait "$pid" || rc=$?
pid=
took_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
[ "$rc" = 0 ] || fail "exit status $rc after SIGTERM"
[ "$took_ms" -ge 1400 ] && [ "$took_ms" -le 2500 ] || fail "drain took ${took_ms}ms, want 1500ms..2500ms"
echo "SIGTERM drain: exit 0 after ${took_ms}ms (deadline 1500ms)"
grep -q 'drain deadline reached' "$work/out.log" || fail "deadline path not logged"

# Access-log tokens on stdout (plain format, as Kiali greps them).
grep -P '^\S+Z\tinfo\taccess\tconnection complete\tsrc\.addr=198\.18\.1\.2:40000 src\.workload="curl-1" src\.namespace="default" src\.identity="spiffe://cluster\.local/ns/default/sa/curl" dst\.addr=198\.18\.2\.3:15008 dst\.hbone_addr=198\.18\.2\.3:8080 dst\.service="echo\.default\.svc\.cluster\.local" dst\.workload="echo-1" dst\.namespace="default" dst\.identity="spiffe://cluster\.local/ns/default/sa/echo" direction="outbound" bytes_sent=1000 bytes_recv=2000 duration="3ms"$' \
    "$work/out.log" >/dev/null || fail "access log line"
[ "$(grep -c $'\tinfo\taccess\tconnection complete\t' "$work/out.log")" = 3 ] || fail "three completes"
grep -q $'\terror\taccess\tconnection complete\t.* error="connection closed due to policy rejection' "$work/out.log" || fail "error complete"
grep -q $'\tdebug\taccess\t' "$work/out.log" && fail "debug access lines at info"
grep -q 'shutdown complete' "$work/out.log" || fail "no shutdown line (log queue not flushed at exit)"

# POST /quitquitquit drains the same way; the process leaves as soon as the transfer in flight
# ends (300 ms), long before the 5 s deadline.
start 5000 300
touch "$work/ready"
start_ns=$(date +%s%N)
out=$(c -X POST "127.0.0.1:$admin/quitquitquit")
[ "$out" = "shutdown now" ] || fail "quitquitquit: $out"
rc=0
timeout 5 tail -s 0.05 --pid="$pid" -f /dev/null || fail "no exit after quitquitquit"
wait "$pid" || rc=$?
pid=
took_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
[ "$rc" = 0 ] || fail "exit status $rc after quitquitquit"
[ "$took_ms" -ge 250 ] && [ "$took_ms" -le 1500 ] || fail "quitquitquit drain took ${took_ms}ms"
grep -q 'drain complete' "$work/out.log" || fail "drained path not logged"
echo "quitquitquit drain: exit 0 after ${took_ms}ms (transfer ended at 300ms, deadline 5000ms)"

# A second SIGINT exits at once, even with a long drain.
start 60000
kill -INT "$pid"
sleep 0.2
kill -INT "$pid"
rc=0
timeout 3 tail -s 0.05 --pid="$pid" -f /dev/null || fail "second SIGINT did not exit at once"
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "exit status $rc after second SIGINT"
echo ok
